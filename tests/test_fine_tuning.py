"""The fine-tuning checks (``companion.checks.fine_tuning``): each kind of model fine-tuned each way, as the tutorials
do it in two phases, under the pinned Keras (3.15.1, TensorFlow: this process).

The expected values are derived by hand from how each model is built and from how Keras 3.15.1 resolves
``training`` (``keras/src/layers/layer.py``, ``Layer._resolve_and_populate_arg``: an explicit value wins, else the
value an outer call left in the shared call context, else the call signature's default; the value a layer resolved
is stashed in that context for the layers after it), and how a functional model calls its layers
(``keras/src/models/functional.py``, ``operation_fn``: the model's own ``training``, where it has one, over the value
recorded when the model was built: fit's ``True`` reaches a base called with ``training=False``).
"""

import dataclasses

import pytest

from companion.checks import fine_tuning, models
from companion.checks.check import seed
from companion.checks.evidence import Count, FineTuned, NotApplicable, Phase, Training
from companion.checks.fine_tuning import (
    CUSTOM_BLOCKS,
    FLAT,
    KERAS_HUB,
    LAYER_NORM,
    OWN_DROPOUT,
    SUBCLASSED,
    as_intended,
    departures,
    fine_tune,
)
from companion.checks.ways import PLAIN, REMEDY, TRAINING_FALSE, WAYS
from companion.flags import modes

NO_DROPOUT_INSIDE = NotApplicable("no Dropout in the base")


@pytest.fixture(scope="module")
def keras():
    from companion.core.variants import load_keras

    keras = load_keras()
    assert (keras.__version__, keras.backend.backend()) == ("3.15.1", "tensorflow")
    return keras


def tuned(keras, kind, way) -> FineTuned:
    seed(keras)
    return fine_tune(keras, kind, way)


# --- Eager and traced fit give the same values ----------------------------------------------------------------------


def traced_fit(keras, model, x, y, recorder):
    """The checks' fit (``fine_tuning.fit``), its step traced: compiled without ``run_eagerly``."""
    compile_model = model.compile
    with modes.replaced_attribute(model, "compile",
                                  lambda **arguments: compile_model(**{**arguments, "run_eagerly": False})):
        fine_tuning.fit(keras, model, x, y, recorder)


@pytest.mark.parametrize("kind", [FLAT, OWN_DROPOUT, SUBCLASSED], ids=lambda kind: kind.key)
@pytest.mark.parametrize("way", WAYS, ids=lambda way: way.key)
def test_an_eager_fit_gives_the_values_of_a_traced_one(keras, kind, way):
    """Keras decides every layer's mode in Python (``Functional.call``, ``Layer.__call__``) whether the step runs
    eagerly or is traced, so the checks' eager fit measures what a reader's traced fit does."""
    traced = dataclasses.replace(kind, train=traced_fit)
    assert traced.train is traced_fit and fine_tuning.fit is kind.train
    assert tuned(keras, kind, way) == tuned(keras, traced, way)


# --- Hand-derived values on small models ----------------------------------------------------------------------------


def test_a_flat_base_called_with_training_false_is_overridden_in_fine_tuning(keras):
    # Frozen: base.trainable = False freezes its one BN (inference mode whatever it receives) and leaves no trainable
    # kernel; fit's True still reaches the BN and the head's Dropout. Unfrozen: the BN, trainable again, receives
    # fit's True over the recorded False, so its statistics move and its gamma/beta train, as do the Conv2D's kernel
    # and bias. The guard flags that one BN in fine-tuning (its statistics moved under the written False), nothing
    # when it is frozen.
    frozen = Phase(Count(0, 1), False, Count(0, 0), Training.TRUE, NO_DROPOUT_INSIDE, True)
    fine_tuned = Phase(Count(1, 1), True, Count(2, 2), Training.TRUE, NO_DROPOUT_INSIDE, True, guard_flagged=1)
    value = tuned(keras, FLAT, TRAINING_FALSE)
    assert value == FineTuned(frozen, fine_tuned, 0)
    assert departures(value, remedy=False) == ["fine-tuned: BN moved"]


def test_with_the_remedy_a_flat_base_keeps_its_statistics_and_gamma_beta(keras):
    # The remedy freezes the one BN after unfreezing: it still receives fit's True, in inference mode; only the
    # Conv2D's kernel and bias train.
    frozen = Phase(Count(0, 1), False, Count(0, 0), Training.TRUE, NO_DROPOUT_INSIDE, True)
    fine_tuned = Phase(Count(0, 1), False, Count(2, 2), Training.TRUE, NO_DROPOUT_INSIDE, True)
    assert tuned(keras, FLAT, REMEDY) == FineTuned(frozen, fine_tuned, 1)


def test_a_subclassed_model_leaks_training_false_to_the_dropout_after_the_base(keras):
    # call: head(dropout(base(x, training=False))). The explicit False wins for the base and its BN (statistics kept,
    # gamma/beta trained: it is trainable) and is stashed in the call context, where the Dropout, called without
    # training, finds it: the head's Dropout does not drop, in either phase, and the guard flags it in each (call's
    # source passes it nothing: it is left to fit).
    value = tuned(keras, SUBCLASSED, TRAINING_FALSE)
    assert value.frozen_phase == Phase(Count(0, 1), False, Count(0, 0), Training.FALSE, NO_DROPOUT_INSIDE, False, 1)
    assert value.fine_tuning == Phase(Count(0, 1), True, Count(2, 2), Training.FALSE, NO_DROPOUT_INSIDE, False, 1)
    assert departures(value, remedy=False) == ["frozen: head Dropout off", "fine-tuned: head Dropout off"]


def test_the_dropout_inside_a_base_called_with_training_false_drops_in_both_phases(keras):
    # Fit's True reaches the base's own Dropout over the recorded False; a frozen Dropout still drops.
    value = tuned(keras, OWN_DROPOUT, TRAINING_FALSE)
    assert (value.frozen_phase.dropout_inside, value.fine_tuning.dropout_inside) == (True, True)
    assert departures(value, remedy=False) == ["frozen: own Dropout on", "fine-tuned: BN moved",
                                               "fine-tuned: own Dropout on"]


def test_the_custom_block_base_has_two_batch_norm_layers_and_the_remedy_freezes_both(keras):
    # Two ConvBlock layers, each holding a Conv2D (kernel, bias) and a BN: 2 BN, 4 kernels and biases.
    assert [type(layer).__name__ for layer in models.custom_block_base(keras).layers] == [
        "InputLayer", "ConvBlock", "ConvBlock", "GlobalAveragePooling2D"]
    remedied = tuned(keras, CUSTOM_BLOCKS, REMEDY)
    assert remedied.remedy_froze == 2
    assert remedied.fine_tuning == Phase(Count(0, 2), False, Count(4, 4), Training.TRUE, NO_DROPOUT_INSIDE, True)
    # Without it, base(x) passes fit's True through both blocks: both move.
    assert tuned(keras, CUSTOM_BLOCKS, PLAIN).fine_tuning.statistics == Count(2, 2)


def test_a_keras_hub_backbone_has_seven_batch_norm_layers_and_the_remedy_freezes_all_seven(keras):
    pytest.importorskip("keras_hub")
    # The stem's BN and the top's; a fused block (expand_bn, project_bn) and an unfused one (expand_bn, bn,
    # project_bn), held as attributes: 2 + 2 + 3 = 7.
    remedied = tuned(keras, KERAS_HUB, REMEDY)
    assert (remedied.remedy_froze, remedied.fine_tuning.statistics, remedied.fine_tuning.affine) == (
        7, Count(0, 7), False)
    assert as_intended(remedy=True)(remedied)


def test_a_layer_norm_base_has_nothing_for_the_remedy_to_freeze(keras):
    # Conv2D (kernel, bias) and LayerNormalization (gamma, beta: trainable weights of a layer that is not a BN, so
    # kernels here): 4 trained, no BN statistics anywhere, no BN called.
    remedied = tuned(keras, LAYER_NORM, REMEDY)
    assert remedied == FineTuned(
        Phase(Count(0, 0), False, Count(0, 0), NotApplicable("no BN called"), NO_DROPOUT_INSIDE, True),
        Phase(Count(0, 0), False, Count(4, 4), NotApplicable("no BN called"), NO_DROPOUT_INSIDE, True), 0)
    assert as_intended(remedy=True)(remedied) and LAYER_NORM.ways == (PLAIN, TRAINING_FALSE, REMEDY)


def test_keras_hub_does_not_apply_to_a_keras_older_than_its_minimum():
    # keras-hub 0.32.0's metadata requires keras>=3.15; tf-keras has no keras.ops at all.
    pytest.importorskip("keras_hub")
    assert models.keras_hub_minimum() == "3.15"

    class OldKeras:
        __version__, ops = "3.0.5", object()

    class TfKeras:
        __version__ = "2.21.0"

    for old in (OldKeras, TfKeras):
        found = models.keras_hub_unsupported(old)
        assert isinstance(found, NotApplicable) and "needs keras>=3.15" in found.reason
        assert fine_tune(old, KERAS_HUB, REMEDY) == found


# --- The tutorials' intent, on hand-made values -------------------------------------------------------------------

# A phase as the tutorials intend it: no statistics moved of the base's 3 BN, no gamma/beta, no own Dropout on, the
# head's on; the kernels trained where given.
def _phase(moved=0, affine=False, trained=0, inside=False, after=True) -> Phase:
    return Phase(Count(moved, 3), affine, Count(trained, 5), Training.TRUE, inside, after)


INTENDED = FineTuned(_phase(), _phase(trained=5), 3)


def test_a_result_as_the_tutorials_intend_departs_in_nothing():
    assert departures(INTENDED, remedy=True) == departures(INTENDED, remedy=False) == []
    assert as_intended(True)(INTENDED) and as_intended(False)(INTENDED)


@pytest.mark.parametrize("value, remedy, expected", [
    (FineTuned(_phase(moved=1), _phase(trained=5), 3), False, ["frozen: BN moved"]),
    (FineTuned(_phase(), _phase(moved=3, affine=True, trained=5), 0), False, ["fine-tuned: BN moved"]),
    (FineTuned(_phase(inside=True), _phase(trained=5, after=False), 3), False,
     ["frozen: own Dropout on", "fine-tuned: head Dropout off"]),
    (FineTuned(_phase(trained=1), _phase(), 3), False, ["frozen: kernels trained", "fine-tuned: no kernel trained"]),
    # With the remedy, it must have frozen every BN layer of the base and kept gamma/beta; without it, gamma/beta
    # train as the tutorials have them.
    (FineTuned(_phase(), _phase(trained=5, affine=True), 2), True, ["remedy missed BN layers", "gamma/beta moved"]),
    (FineTuned(_phase(), _phase(trained=5, affine=True), 0), False, []),
], ids=["frozen BN moved", "fine-tuned BN moved", "Dropouts", "kernels", "remedy", "no remedy"])
def test_each_departure_from_the_intent_is_named(value, remedy, expected):
    assert departures(value, remedy) == expected
    assert as_intended(remedy)(value) is (expected == [])
    # The check of every kind fine-tuned with the remedy or not judges by the same intent.
    check = fine_tuning.check(FLAT, REMEDY if remedy else TRAINING_FALSE)
    assert check.as_documented(value) is (expected == [])
    # Each departure's words, its phase aside, are explained in the legend under the matrix's tables.
    explained = [row[0] for row in fine_tuning.legend().rows]
    assert all(found.split(": ")[-1] in explained for found in departures(value, remedy))
