"""Typed evidence: values round-trip through JSON, render only in tables, and the matrix answers questions with them."""

import json

import numpy as np
import pytest
from test_audit import COLUMNS, _matrix

from companion.checks import evidence, questions
from companion.checks.evidence import (
    Count,
    Failed,
    FineTuneCounts,
    Recompile,
    Statistics,
    Training,
    Updates,
)
from companion.versions import matrix

EXAMPLES = [True, False, 0, 18, None, Statistics.MOVING, Training.NONE, Training.SYMBOLIC,
            Updates(statistics=False, affine=False, kernels=True),
            Recompile(without_recompile=Failed("ValueError: Argument `optimizer_variables` must be a list"),
                      after_recompile=False),
            FineTuneCounts(Count(18, 52), Count(18, 18)), Failed("ImportError: bogus keras"),
            *COLUMNS["keras"].values()]


@pytest.mark.parametrize("value", EXAMPLES, ids=repr)
def test_typed_values_round_trip_through_json_with_their_types(value):
    back = evidence.from_json(json.loads(json.dumps(evidence.to_json(value))))
    assert back == value and type(back) is type(value)


def test_a_column_round_trips_and_bools_stay_bools():
    data = json.loads(json.dumps(evidence.values_to_json(COLUMNS["keras-nightly"])))
    assert evidence.values_from_json(data) == COLUMNS["keras-nightly"]
    assert data["nested_override"] is False and data["frozen_weights"] == {"type": "TrainableWeights", "base": 0,
                                                                            "model": 2}


def test_only_typed_values_are_written():
    with pytest.raises(TypeError, match="not a typed evidence value"):
        evidence.to_json(np.bool_(True))  # a numpy bool would come back as a plain bool: refuse it


@pytest.mark.parametrize("value, text", [
    (True, "yes"), (False, "no"), (Statistics.BATCH, "batch statistics"), (Training.NONE, "None"),
    (Updates(False, False, True), "no / no / yes"), (Recompile(True, False), "yes / no"),
    (Recompile(Failed("ValueError: Argument `optimizer_variables` must be"), False), "raised ValueError / no"),
    (FineTuneCounts(Count(0, 40), Count(74, 74)), "0 of 40 BN moved, 74 of 74 kernels updated"),
    (Failed("no message here"), "failed"),
])
def test_values_are_shown_as_the_tables_print_them(value, text):
    assert evidence.show(value) == text


def test_counts_answer_none_and_all():
    assert Count(0, 52).none and not Count(1, 52).none
    assert Count(18, 18).all and not Count(17, 18).all and not Count(0, 0).all


def test_training_values_are_typed_from_what_a_call_received():
    assert [Training.of(v) for v in (True, False, None, object())] == [
        Training.TRUE, Training.FALSE, Training.NONE, Training.SYMBOLIC]


def test_first_line_of_an_error_names_its_type():
    assert evidence.first_line(ImportError("bogus keras\nsecond line")) == "ImportError: bogus keras"
    assert evidence.first_line("\n  RuntimeError: x\nmore") == "RuntimeError: x"


def test_the_matrix_rows_that_are_decisive_checks_come_from_their_one_definition():
    rows = {row.id: row for row in matrix.ROWS}
    shared = [check for check in questions.CHECKS if check.id in rows]
    assert [c.id for c in shared] == ["nested_override", "dropout_leak_fit", "remedy", "remedy_dropout",
                                      "remedy_alone", "remedy_alone_dropout", "recompile", "none_override",
                                      "none_dropout", "remedy_inside_dropout", "remedy_alone_inside_dropout",
                                      "trainable_setter", "false_then_true", "staged_unfreezing", "augmented_call"]
    assert all(rows[c.id].question == c.question for c in shared)


def test_where_lists_the_variants_by_value():
    m = _matrix()
    assert m.where(nested_override=True) == ["keras"]
    assert m.where(remedy_alone=matrix.REMEDY_WORKS, remedy_alone_dropout=True) == list(COLUMNS)
    assert m.where(dropout_leak_fit=False, nested_override=True) == []
    assert m.where(nested_override=False) == ["keras-nightly", "tf-keras"]


def test_training_none_is_a_row_per_variant():
    """On keras-nightly a nested base(x, training=None) passes None down: its BN statistics stay put and the Dropout
    after it does not drop; the other variants follow fit."""
    m = _matrix()
    assert m.where(none_override=False, none_dropout=False) == ["keras-nightly"]
    assert m.where(none_override=True, none_dropout=True) == ["keras", "tf-keras"]
