"""The one matrix (``companion.versions.matrix``): its columns (``companion.core.columns``) and how each is installed
(``companion.versions.install``), one child process per column, failures kept in their column, the kept columns, the
typed values and how they are written and shown, the views of the matrix; and the kept matrix itself, against
expectations derived by hand."""

import json

import numpy as np
import pytest

from companion.checks import evidence, registry
from companion.checks.check import Check
from companion.checks.evidence import (
    AutoScale,
    BatchNormCall,
    Count,
    Failed,
    FineTuned,
    NotApplicable,
    NotInstalled,
    NotRun,
    OptimizerReuse,
    Phase,
    Serving,
    Statistics,
    TrainableTiming,
    Training,
)
from companion.checks.fine_tuning import EFFICIENTNET, FLAT, MOBILENET, XCEPTION, check
from companion.checks.ways import REMEDY, TRAINING_FALSE, WAYS
from companion.core import variants
from companion.core.columns import (
    KERAS_RELEASES,
    PINNED,
    REAL_MODELS,
    Column,
    columns,
    latest_patches,
    variant_column,
)
from companion.core.profiles import GPU, OFFLINE, SMOKE
from companion.core.tables import show
from companion.versions import advice, install, matrix
from companion.versions.matrix import Matrix, Measured

NIGHTLY = variant_column("keras-nightly").version

# --- Typed values ---------------------------------------------------------------------------------------------------

PHASE = Phase(Count(18, 52), True, Count(54, 54), Training.TRUE, NotApplicable("no Dropout in the base"), True)
EXAMPLES = [True, False, 0, 18, None, Statistics.MOVING, Training.NONE, Training.SYMBOLIC, Count(18, 52),
            BatchNormCall(Statistics.BATCH, True), AutoScale(1, True, True, True), Serving(True, True, False),
            TrainableTiming(True, Failed("ValueError: x"), True, True),
            OptimizerReuse(Failed("ValueError: Unknown variable"), Failed("ValueError: Unknown variable"), True),
            PHASE, FineTuned(PHASE, PHASE, 0), Failed("ImportError: bogus keras"), NotApplicable("old"),
            NotRun("runs in tf-keras"), NotInstalled("keras 3.0.5 is not installed")]


@pytest.mark.parametrize("value", EXAMPLES, ids=repr)
def test_typed_values_round_trip_through_json_with_their_types(value):
    back = evidence.from_json(json.loads(json.dumps(evidence.to_json(value))))
    assert back == value and type(back) is type(value)


def test_only_typed_values_are_written():
    with pytest.raises(TypeError, match="not a typed evidence value"):
        evidence.to_json(np.bool_(True))  # a numpy bool would come back as a plain bool: refuse it


@pytest.mark.parametrize("value, text", [
    (True, "yes"), (False, "no"), (Statistics.BATCH, "batch statistics"), (Training.NONE, "None"),
    (Count(18, 52), "18 of 52"), (BatchNormCall(Statistics.MOVING, False), "moving statistics / no"),
    (OptimizerReuse(Failed("ValueError: Unknown variable"), Failed("ValueError: x"), True),
     "raised ValueError / raised ValueError / yes"),
    (PHASE, "BN 18 of 52 moved, gamma/beta yes, kernels 54 of 54 trained; after on"),
    (FineTuned(PHASE, PHASE, 3), f"frozen: {PHASE}. Fine-tuned: {PHASE} (remedy froze 3)"),
    (Failed("no message here"), "failed"), (NotApplicable("old"), "not applicable"), (NotRun("x"), "not run"),
    (NotInstalled("x"), "not installed"),
])
def test_values_are_shown_as_the_tables_print_them(value, text):
    assert show(value) == text


def test_counts_answer_none_and_all():
    assert Count(0, 52).none and not Count(1, 52).none
    assert Count(18, 18).all and not Count(17, 18).all and not Count(0, 0).all


def test_training_values_are_typed_from_what_a_call_received():
    assert [Training.of(v) for v in (True, False, None, object())] == [
        Training.TRUE, Training.FALSE, Training.NONE, Training.SYMBOLIC]


def test_first_line_of_an_error_names_its_type():
    assert evidence.first_line(ImportError("bogus keras\nsecond line")) == "ImportError: bogus keras"
    assert evidence.first_line("\n  RuntimeError: x\nmore") == "RuntimeError: x"


def test_failures_are_found_at_any_depth_of_a_value():
    inner = Failed("ValueError: x")
    assert matrix.failures(TrainableTiming(True, inner, True, inner)) == [inner, inner]
    assert matrix.failures(inner) == [inner] and matrix.failures(Count(0, 1)) == [] and matrix.failures(True) == []


# --- The checks and the columns -------------------------------------------------------------------------------------


def test_every_row_has_its_own_id_and_two_checks_with_one_id_are_refused():
    assert len(matrix.BY_ID) == len(matrix.ROWS) and set(registry.CHECKS) <= set(matrix.ROWS)
    with pytest.raises(ValueError, match="two checks have the id 'dropout_inverted'"):
        registry.by_id([registry.DROPOUT_INVERTED, Check("dropout_inverted", "again", lambda keras: None)])


# `pip index versions keras` on 2026-11-25 (its "Available versions" line, 3.x part).
PIP_INDEX = ("3.15.1, 3.15.0, 3.14.1, 3.14.0, 3.13.2, 3.13.1, 3.13.0, 3.12.4, 3.12.3, 3.12.2, 3.12.1, 3.12.0, 3.11.3, "
             "3.11.2, 3.11.1, 3.11.0, 3.10.0, 3.9.2, 3.9.1, 3.9.0, 3.8.0, 3.7.0, 3.6.0, 3.5.0, 3.4.1, 3.4.0, 3.3.3, "
             "3.3.2, 3.3.1, 3.3.0, 3.2.1, 3.2.0, 3.1.1, 3.1.0, 3.0.5, 3.0.4, 3.0.3, 3.0.2, 3.0.1, 3.0.0, 2.15.0")


def test_the_releases_are_the_latest_patch_of_every_minor_release_up_to_the_pinned_one():
    assert PINNED == "3.15.1"
    assert list(KERAS_RELEASES) == latest_patches(PIP_INDEX.split(", "))
    assert latest_patches(["3.1.0", "3.1.10", "3.1.9", "3.2.0rc1", "3.16.0"], up_to="3.15.1") == ["3.1.10"]


def test_columns_are_every_release_on_tensorflow_then_the_variants_then_jax_then_pytorch():
    labels = [c.label for c in columns()]
    assert labels[:16] == [f"keras {v}" for v in KERAS_RELEASES]
    assert labels[16:] == [f"keras-nightly {NIGHTLY}", "tf-keras 2.21.0", "keras 3.15.1 (JAX)",
                           f"keras-nightly {NIGHTLY} (JAX)", "keras 3.15.1 (PyTorch)",
                           f"keras-nightly {NIGHTLY} (PyTorch)"]
    assert [c.short_label for c in columns()[-3:]] == ["nightly JAX", "3.15.1 PyTorch", "nightly PyTorch"]
    assert [c for c in columns() if c.pinned] == [Column("keras", PINNED), Column("keras", PINNED, "jax"),
                                                  Column("keras", PINNED, "torch")]


def test_the_real_architectures_run_under_the_pinned_release_and_the_side_variants_but_not_on_jax():
    assert [c.label for c in columns() if REAL_MODELS(c)] == [
        "keras 3.15.1", f"keras-nightly {NIGHTLY}", "tf-keras 2.21.0", "keras 3.15.1 (PyTorch)",
        f"keras-nightly {NIGHTLY} (PyTorch)"]


def test_each_column_has_its_own_folder_and_the_pinned_one_none(monkeypatch, tmp_path):
    monkeypatch.setenv(variants.VARIANTS_DIR_ENV, str(tmp_path))
    assert install.folder(Column("keras", "3.0.5")) == tmp_path / "releases" / "keras-3.0.5"
    assert install.folder(Column("keras", PINNED)) is None
    assert install.folder(variant_column("tf-keras")) == tmp_path / "tf-keras"
    with pytest.raises(variants.VariantNotInstalledError, match="companion variants install --releases"):
        install.environment(Column("keras", "3.0.5"))
    env = install.environment(Column("keras", PINNED))
    assert env["KERAS_BACKEND"] == "tensorflow" and variants.LEGACY_ENV not in env


def test_a_backend_column_needs_its_backend_folder_and_a_local_build_counts_as_installed(monkeypatch, tmp_path):
    monkeypatch.setenv(variants.VARIANTS_DIR_ENV, str(tmp_path))
    torch = Column("keras", PINNED, "torch")
    assert install._needs(torch) == [(tmp_path / "torch", list(install.TORCH_REQUIREMENTS))]
    assert not install.is_installed(torch)
    for requirement in install.TORCH_REQUIREMENTS:  # what pip --target leaves: torch as its CPU build
        name, version = requirement.split("==")
        (tmp_path / "torch" / f"{name}-{version}{'+cpu' if name == 'torch' else ''}.dist-info").mkdir(parents=True)
    assert install.is_installed(torch)
    assert not variants.installed_in(tmp_path / "torch", "torch==2.13.1")


def test_installing_names_each_folder_once_and_starts_with_the_one_with_most_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPANION_VARIANTS_DIR", str(tmp_path))
    calls = []
    monkeypatch.setattr(variants, "pip_install", lambda folder, requirements: calls.append((folder, requirements)))
    nightly = variant_column("keras-nightly", "jax")
    install.install([Column("keras", PINNED, "jax"), nightly, Column("keras", "3.0.5")])
    # The pinned release on JAX needs only the JAX folder, the nightly on JAX its own folder and the JAX folder
    # again: JAX's three requirements once, and each Keras folder (installed at the same time: in any order).
    assert sorted(calls) == [(tmp_path / "jax", list(install.JAX_REQUIREMENTS)),
                             (tmp_path / "keras-nightly", [nightly.requirement]),
                             (tmp_path / "releases" / "keras-3.0.5", ["keras==3.0.5"])]
    calls.clear()
    variants.pip_install_all([(tmp_path / "a", ["x==1"]), (tmp_path / "b", ["y==1", "z==1", "v==1"]),
                              (tmp_path / "a", ["x==1", "w==2"])], jobs=1)
    # One at a time, the order is seen: b (three to install) before a (two: x, named twice, and w).
    assert calls == [(tmp_path / "b", ["y==1", "z==1", "v==1"]), (tmp_path / "a", ["x==1", "w==2"])]


# --- One column in its child process --------------------------------------------------------------------------------


def test_the_child_measures_the_checks_it_is_given_under_its_keras():
    # Dropout(0.5), training=False: the identity; in the child's own process, this one.
    found = matrix.measured(["dropout_inference"])
    assert found["values"] == {"dropout_inference": True}
    assert (found["versions"]["keras"], found["versions"]["backend"]) == (PINNED, "tensorflow")


def _bogus_column(tmp_path, monkeypatch, module_source: str, version: str = "3.99.0") -> Column:
    """A release folder whose `keras` package runs ``module_source`` on import (and a dist-info, so that it counts
    as installed)."""
    monkeypatch.setenv(variants.VARIANTS_DIR_ENV, str(tmp_path))
    column = Column("keras", version)
    where = install.folder(column)
    (where / "keras").mkdir(parents=True)
    (where / "keras" / "__init__.py").write_text(module_source)
    (where / f"keras-{version}.dist-info").mkdir()
    return column


def test_a_release_that_does_not_import_gets_a_column_with_the_first_line_of_its_error(tmp_path, monkeypatch):
    column = _bogus_column(tmp_path, monkeypatch, 'raise ImportError("bogus keras\\nsecond line")\n')
    rows = (registry.DROPOUT_INFERENCE, check(FLAT, REMEDY))
    measured = matrix.run_column(column, rows)
    assert not measured.ran and measured.error == "ImportError: bogus keras"
    assert measured.values == {row: NotRun("runs in every column") for row in rows}
    table = Matrix([measured], rows).table()
    assert table.header == ["check", "3.99.0"]
    assert table.column("3.99.0") == ["did not run: ImportError: bogus keras"] * 2
    assert Matrix([measured], rows).errors() == [("keras 3.99.0", "-", "ImportError: bogus keras")]


def test_a_child_that_dies_without_a_result_reports_its_last_error_line(tmp_path, monkeypatch):
    source = 'import sys\nsys.stderr.write("Traceback (most recent call last):\\nSystemError: broken build\\n")\n' \
             'sys.stderr.flush()\nimport os\nos._exit(3)\n'
    measured = matrix.run_column(_bogus_column(tmp_path, monkeypatch, source), (registry.DROPOUT_INFERENCE,))
    assert measured.error == "SystemError: broken build"


def test_a_column_not_installed_is_not_installed_in_every_row(tmp_path, monkeypatch):
    monkeypatch.setenv(variants.VARIANTS_DIR_ENV, str(tmp_path))
    measured = matrix.run_column(Column("keras", "3.0.5"), matrix.ROWS)
    assert measured.error == "not installed" and not measured.ran
    assert {type(value) for value in measured.values.values()} == {NotInstalled}
    assert set(measured.values) == set(matrix.ROWS)


def test_a_kept_column_is_reused_until_the_checks_change(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(install, "is_installed", lambda column: True)
    column = Column("keras", "3.0.5")
    computed = []
    timing = TrainableTiming(True, Failed("ValueError: x"), True, True)

    def run_column(chosen, narrow):
        computed.append((chosen, narrow))
        values = {row: True for row in matrix.ROWS} | {registry.TRAINABLE_TIMING: timing}
        return Measured(chosen, {"keras": chosen.version}, values, seconds=4.5)

    monkeypatch.setattr(matrix, "run_column", run_column)
    first = matrix.kept_column(column)
    again = matrix.kept_column(column)
    assert computed == [(column, True)] and not first.kept and again.kept
    assert again.values == first.values and again.seconds == 4.5
    assert type(again.values[registry.TRAINABLE_TIMING].after_fit) is Failed
    # The column of a profile that does not narrow the matrix is kept apart: it holds more checks.
    matrix.kept_column(column, narrow=False)
    assert computed == [(column, True), (column, False)] and matrix.kept_column(column, narrow=False).kept
    monkeypatch.setattr(matrix, "fingerprint", lambda: "another-version-of-the-checks")
    matrix.kept_column(column)
    assert computed == [(column, True), (column, False), (column, True)]


# --- The views of the matrix, on columns typed by hand ------------------------------------------------------------

OVERRIDE = Check("override", "base(x, training=False): statistics moved", lambda keras: None, documented=False)
SETTER = Check("setter", "base.trainable = True unfreezes", lambda keras: None, documented=True)
ROWS = (OVERRIDE, SETTER)


def _measured(version: str, package: str = "keras", backend: str = "tensorflow", override=True, setter=True):
    return Measured(Column(package, version, backend), {"keras": version}, {OVERRIDE: override, SETTER: setter})


def test_columns_in_words_name_the_runs_of_releases_with_a_value():
    found = Matrix([
        _measured("3.0.5"), _measured("3.1.1"), _measured("3.2.1", override=False), _measured("3.3.3"),
        Measured(Column("keras", "3.4.1"), {}, {}, error="ImportError: x"),
        _measured("3.16.0.dev1", package="keras-nightly", override=False), _measured(PINNED, backend="jax")], ROWS)
    moved = lambda values: values[OVERRIDE] is True  # noqa: E731
    assert found.in_words(found.where(moved)) == "keras 3.0.5 to 3.1.1, 3.3.3; keras 3.15.1 (JAX)"
    assert found.in_words(found.where(lambda values: not moved(values))) == "keras 3.2.1; keras-nightly 3.16.0.dev1"
    assert found.in_words(found.where(lambda values: False)) == "none"
    assert found.in_words(found.where(moved, scope=REAL_MODELS)) == "none"
    assert len(found.ran()) == 6 and found.errors() == [("keras 3.4.1", "-", "ImportError: x")]


def test_columns_that_agree_on_every_row_share_a_column_of_the_table():
    """3.0.5 and 3.1.1 answer alike; 3.2.1 differs in one check; the JAX column answers as the first two. Derived:
    two columns, "keras 3.0.5 to 3.1.1; keras 3.15.1 (JAX)" and "keras 3.2.1", and the one differing row."""
    found = Matrix([_measured("3.0.5"), _measured("3.1.1"), _measured("3.2.1", override=False),
                    _measured(PINNED, backend="jax")], ROWS)
    table = found.table(anchors=True)
    assert table.header == ["check", "3.0.5 to 3.1.1; 3.15.1 JAX", "3.2.1"]
    assert found.in_words(found.columns[:2] + found.columns[3:]) == "keras 3.0.5 to 3.1.1; keras 3.15.1 (JAX)"
    assert table.rows == [[OVERRIDE.question, "yes", "no"], [SETTER.question, "yes", "yes"]]
    assert table.caption.startswith("4 columns") and table.row_ids == ["check-override", "check-setter"]


def test_a_failed_step_inside_a_value_is_listed_once_with_the_columns_where_it_failed():
    timing = Check("timing", "trainable changed after a fit, and after a new train step: honoured", lambda keras: None)
    refused = Failed("ValueError: changed model")
    values = {timing: TrainableTiming(True, refused, refused, True)}  # the same error twice in one value
    found = Matrix([Measured(Column("keras", PINNED, "jax"), {}, values),
                    Measured(variant_column("keras-nightly", "jax"), {}, values),
                    Measured(Column("keras", PINNED), {}, {timing: TrainableTiming(True, False, True, True)})],
                   (timing,))
    assert found.errors() == [(f"keras 3.15.1 (JAX); keras-nightly {NIGHTLY} (JAX)", "timing",
                               "ValueError: changed model")]


def test_outside_the_smoke_profile_a_real_architectures_recommended_way_runs_in_every_column():
    """The advice for MobileNetV2 on a release where its other ways do not run: measured from the one way that ran,
    the remedy (every BatchNormalization layer frozen: no statistic moves; no Dropout inside the base; the head's
    Dropout drops under a plain call), the others not measured."""
    release = Column("keras", "3.10.0")
    recommended, other = check(MOBILENET, MOBILENET.recommended), check(MOBILENET, TRAINING_FALSE)
    assert SMOKE.narrow_matrix and not OFFLINE.narrow_matrix and not GPU.narrow_matrix
    assert not REAL_MODELS(release) and recommended.scope.under(False)(release)
    assert recommended.scope.under(True) is REAL_MODELS and other.scope.under(False) is REAL_MODELS
    if not install.is_installed(release):
        pytest.skip("keras 3.10.0 is not installed (companion variants install --releases)")
    wide = matrix.run_column(release, (recommended, other), narrow=False)
    assert wide.values[other] == NotRun(f"runs in {REAL_MODELS.name}")
    found = advice.advise(wide.values, MOBILENET, release)
    assert found.intended == (REMEDY,) and found.not_intended == () and found.answer == REMEDY.label
    assert len(found.not_measured) == len(WAYS) - 1


# --- The kept matrix ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kept():
    """The whole matrix, computed once (kept in the cache folder: the chapters and the other tests read the same)."""
    return matrix.compute(progress=False)


def test_the_matrix_has_every_column_and_the_pinned_one_ran(kept):
    assert kept.columns == columns()
    pinned = kept.at(Column("keras", PINNED))
    assert pinned.ran and pinned.versions["keras"] == PINNED and pinned.versions["backend"] == "tensorflow"
    # A check outside a column's scope did not run there: the real architectures on JAX.
    assert kept.value(Column("keras", PINNED, "jax"), check(MOBILENET, TRAINING_FALSE)) == NotRun(
        f"runs in {REAL_MODELS.name}")


def test_each_real_architectures_recommended_way_is_the_advices_where_all_its_ways_ran(kept):
    """What runs in every column outside the smoke profile is declared (ModelKind.recommended); it must be the way
    the advice computes wherever every way of the kind ran and one behaved as intended (on keras-nightly none of
    EfficientNetB0's does), or the advice elsewhere would rest on the wrong way."""
    for kind in (EFFICIENTNET, MOBILENET, XCEPTION):
        found = {a.column.label: a.recommended for a in advice.advice(kept, [kind])
                 if kind.scope(a.column) and a.recommended is not None}
        assert found, f"no way of {kind.name} behaved as intended in any column"
        assert found == {label: kind.recommended for label in found}, kind.name


def test_the_remedys_walk_reaches_the_layers_a_custom_block_holds_in_every_column(kept):
    """The remedy walks the private ``_flatten_layers(include_self=True, recursive=True)``: the first Keras where it
    changes fails here."""
    ran = kept.ran()
    assert ran, "no column ran"
    assert {m.column.label: m.values[registry.FLATTEN_LAYERS] for m in ran} == {m.column.label: True for m in ran}


def test_keras_3_releases_override_training_false_and_keras_nightly_and_tf_keras_do_not(kept):
    """A flat base called as ``base(x, training=False)``, unfrozen: Keras 3's functional model passes fit's True
    over the recorded False (NOTES.md section 2), so its one BN moves; keras-nightly (after PR #23364) and tf-keras
    keep the recorded value. With the remedy, nowhere."""
    as_written, remedy = check(FLAT, TRAINING_FALSE), check(FLAT, REMEDY)
    expected = {Column("keras", "3.0.5"): Count(1, 1), Column("keras", PINNED): Count(1, 1),
                variant_column("keras-nightly"): Count(0, 1), variant_column("tf-keras"): Count(0, 1)}
    found = {c: kept.at(c) for c in expected}
    missing = [c.label for c, m in found.items() if m.error == "not installed"]
    if missing:
        pytest.skip(f"not installed (companion variants install --releases): {', '.join(missing)}")
    assert {c: m.values[as_written].fine_tuning.statistics for c, m in found.items()} == expected
    assert all(m.values[remedy].fine_tuning.statistics == Count(0, 1) and remedy.as_documented(m.values[remedy])
               for m in found.values())
