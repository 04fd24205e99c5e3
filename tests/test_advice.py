"""The advice (``companion.versions.advice``): per kind of model and column, the ways of fine-tuning that behaved as
the tutorials intend, and the one to use; on values typed by hand, and with a way and a column added, each in the one
place that defines them."""

from companion.checks import fine_tuning, ways
from companion.checks.evidence import Count, FineTuned, NotApplicable, NotInstalled, NotRun, Phase, Training
from companion.checks.fine_tuning import FLAT, LAYER_NORM
from companion.checks.ways import (
    PLAIN,
    REMEDY,
    REMEDY_TRAINING_FALSE,
    REMEDY_WRAPPED,
    TRAINING_FALSE,
    TRAINING_NONE,
    WRAPPED,
    Call,
)
from companion.core import columns as columns_module
from companion.core.columns import PINNED, Column
from companion.versions import advice, matrix
from companion.versions.matrix import Matrix, Measured

NO_DROPOUT_INSIDE = NotApplicable("no Dropout in the base")


def _phase(moved: int = 0, trained: int = 0) -> Phase:
    return Phase(Count(moved, 1), False, Count(trained, 2), Training.TRUE, NO_DROPOUT_INSIDE, True)


INTENDED = FineTuned(_phase(), _phase(trained=2), 1)  # as the tutorials intend, with or without the remedy
MOVED = FineTuned(_phase(), _phase(moved=1, trained=2), 0)  # fine-tuning moved the one BN's statistics
COLUMN = Column("keras", PINNED)


def _values(kind, **by_key) -> dict:
    """The kind's checks' values, by way key; the ways not named were not in the matrix."""
    return {fine_tuning.check(kind, way): by_key[way.key] for way in kind.ways if way.key in by_key}


def test_the_remedy_is_preferred_then_the_plainest_call():
    # LAYER_NORM is fine-tuned three ways: base(x), base(x, training=False), the remedy with base(x); the other four
    # are not measured on it.
    found = advice.advise(_values(LAYER_NORM, plain=INTENDED, training_false=INTENDED, remedy_plain=INTENDED),
                          LAYER_NORM, COLUMN)
    assert (found.intended, found.not_intended) == ((PLAIN, TRAINING_FALSE, REMEDY), ())
    assert found.not_measured == (TRAINING_NONE, WRAPPED, REMEDY_TRAINING_FALSE, REMEDY_WRAPPED)
    assert found.recommended is REMEDY and found.answer == "remedy + base(x)"
    assert ways.preferred([TRAINING_FALSE, PLAIN, REMEDY_WRAPPED, REMEDY_TRAINING_FALSE, REMEDY, WRAPPED]) == [
        REMEDY, REMEDY_WRAPPED, REMEDY_TRAINING_FALSE, PLAIN, WRAPPED, TRAINING_FALSE]


def test_the_answer_says_none_only_where_every_way_ran_and_none_behaved_as_intended():
    none = advice.advise(_values(FLAT, **{way.key: MOVED for way in ways.WAYS}), FLAT, COLUMN)
    assert none.recommended is None and none.not_intended == ways.WAYS and none.answer == advice.NONE
    # Every way LAYER_NORM is fine-tuned ran, not as intended; the four others are never tried on it.
    tried = advice.advise(_values(LAYER_NORM, plain=MOVED, training_false=MOVED, remedy_plain=MOVED), LAYER_NORM,
                          COLUMN)
    assert tried.answer == "none of the 3 run; 4 not measured"
    # One way ran, not as intended; the other two it is tried were not in the matrix.
    partly = advice.advise(_values(LAYER_NORM, plain=MOVED), LAYER_NORM, COLUMN)
    assert partly.answer == "none of the 1 run; 6 not measured"
    # Measured nowhere: not installed, or outside the check's scope.
    unmeasured = advice.advise(_values(LAYER_NORM, plain=NotRun("x"), training_false=NotInstalled("x"),
                                       remedy_plain=NotRun("x")), LAYER_NORM, COLUMN)
    assert unmeasured.answer == "not measured" and unmeasured.applies


def test_a_kind_that_does_not_apply_in_a_column_is_left_out():
    missing = NotApplicable("keras-hub needs keras>=3.15")
    values = _values(LAYER_NORM, plain=missing, training_false=missing, remedy_plain=missing)
    assert not advice.advise(values, LAYER_NORM, COLUMN).applies
    found = Matrix([Measured(COLUMN, {}, values),
                    Measured(Column("keras", PINNED, "jax"), {}, _values(LAYER_NORM, plain=INTENDED, remedy_plain=MOVED,
                                                                         training_false=MOVED))])
    assert [(a.column.label, a.answer) for a in advice.advice(found, [LAYER_NORM])] == [
        ("keras 3.15.1 (JAX)", "base(x)")]
    assert advice.table(found, [LAYER_NORM]).rows == [["LayerNorm-only base", "base(x)", "3.15.1 JAX"]]


def test_a_way_and_a_column_added_in_one_place_each_reach_the_matrix_and_the_advice(monkeypatch):
    """A way added to ``WAYS`` is tried on every kind that tries every way, and weighed by the advice; a column added
    to ``columns()`` is computed like the others, and says it is not installed."""
    added_way = ways.Way(Call.TRAINING_NONE, remedy=True, color="C7", linestyle=(0, (2, 2)))
    monkeypatch.setattr(ways, "WAYS", (*ways.WAYS, added_way))
    every_column = columns_module.columns
    monkeypatch.setattr(columns_module, "columns", lambda: [*every_column(), Column("keras", "3.14.0")])
    added_column = columns_module.columns()[-1]  # a patch release the matrix does not install (3.14.1 is its)
    # The checks of the flat base, made again as importing the registry would make them after the edit.
    rebuilt = fine_tuning.checks_for([FLAT])
    monkeypatch.setattr(fine_tuning, "CHECKS", {**fine_tuning.CHECKS, **rebuilt})
    assert FLAT.ways[-1] is added_way and ways.with_remedy(TRAINING_NONE) is added_way
    assert ways.by_key("remedy_training_none") is added_way
    added_check = rebuilt[FLAT, added_way]
    assert added_check.id == "flat.remedy_training_none" and fine_tuning.check(FLAT, added_way) is added_check

    rows = tuple(rebuilt.values())
    found = Matrix([matrix.this_install(rows), matrix.run_column(added_column, rows)], rows)
    pinned = found.columns[0]
    assert pinned == COLUMN and found.at(added_column).error == "not installed"
    table = found.table()
    assert table.header == ["check", "3.15.1", "3.14.0"]
    assert dict((row[0], row[1:]) for row in table.rows)[added_check.question] == [
        "as intended", "did not run: not installed"]

    # Under the pinned Keras, the functional model passes fit's training=True over the recorded False or None: the
    # base's one BN moves when called plainly, with training=False or with training=None. Called through
    # InferenceMode, whose own call passes False at run time, it does not; frozen by the remedy, it moves under no
    # call, and its gamma/beta stay fixed. The head's Dropout drops in every way (fit's True reaches it).
    here = advice.advise(found.at(pinned).values, FLAT, pinned)
    assert here.intended == (WRAPPED, REMEDY_TRAINING_FALSE, REMEDY, REMEDY_WRAPPED, added_way)
    assert here.not_intended == (PLAIN, TRAINING_FALSE, TRAINING_NONE) and here.not_measured == ()
    assert here.recommended is REMEDY  # the remedy with the plainest call, before the added remedy + training=None
    there = advice.advise(found.at(added_column).values, FLAT, added_column)
    assert there.applies and there.not_measured == FLAT.ways and there.answer == "not measured"
    rows_by_way = {row[0]: row[1:] for row in advice.ways_table(found, FLAT).rows}
    assert rows_by_way["remedy + base(x, training=None)"] == ["3.15.1", "none", "3.14.0"]
