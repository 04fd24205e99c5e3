"""One layer's behaviour under each ``training`` value and ``trainable`` setting (``companion.checks.layer_checks``,
``companion.checks.calls``), read through the registry's checks under the pinned Keras (this process), against what
Keras' documentation says and what Keras 3.15.1's source does, derived by hand; and the FAQ's AutoScaleDropout
(``companion.checks.models.autoscale_dropout``): ``trainable`` and ``training`` act independently.

How Keras 3.15.1 resolves ``training`` (``keras/src/layers/layer.py``, ``Layer._resolve_and_populate_arg``): an
explicit value wins, else the value an outer call left in the call context, else the call signature's default; a
functional model passes its own ``training`` to every layer that takes one, over the value recorded when it was
built (``keras/src/models/functional.py``, ``operation_fn``).
"""

import pytest

from companion.checks import calls, models
from companion.checks import registry as r
from companion.checks.check import value
from companion.checks.evidence import (
    AutoScale,
    BatchNormCall,
    BatchNormVariables,
    ByTraining,
    Count,
    PredictEvaluate,
    Serving,
    Statistics,
    TrainableWeights,
    Training,
)
from companion.checks.layer_checks import dropout_observation, numpy


@pytest.fixture(scope="module", autouse=True)
def pinned():
    from companion.core.variants import load_keras

    keras = load_keras()
    assert (keras.__version__, keras.backend.backend()) == ("3.15.1", "tensorflow")


# --- Dropout ---------------------------------------------------------------------------------------------------------


def test_dropout_is_inverted_in_training_mode_and_the_identity_in_inference_mode():
    # Dropout(0.5) on 100,000 ones, training=True: about half zeroed, every survivor 1 / (1 - 0.5) = 2.
    assert value(r.DROPOUT_INVERTED) is True
    # training=False: the input unchanged.
    assert value(r.DROPOUT_INFERENCE) is True
    # trainable = False does not change a Dropout's mode: it still drops under training=True.
    assert value(r.DROPOUT_FROZEN_DROPS) is True


def test_a_dropout_forced_to_training_in_a_functional_model_does_not_drop_in_predict_on_the_pinned_keras():
    # The FAQ's Dropout(0.5)(x, training=True): predict calls the functional model with training=False, which
    # Keras 3.15.1 passes to the Dropout over its recorded True. So for the FAQ's AutoScaleDropout, trainable or not.
    assert value(r.FORCED_DROPOUT_PREDICT) is False
    assert (value(r.AUTOSCALE_FORCED[True]), value(r.AUTOSCALE_FORCED[False])) == (False, False)
    assert not r.FORCED_DROPOUT_PREDICT.as_documented(False)


# --- BatchNormalization ----------------------------------------------------------------------------------------------


def test_batch_norm_normalises_with_the_batch_only_when_trainable_and_in_training_mode():
    # Keras' documentation of BatchNormalization: training=True normalises with the batch's statistics and moves
    # the moving ones, unless the layer is frozen (trainable=False: inference mode whatever training says); a direct
    # call without training runs BatchNormalization.call's default, training=False.
    assert {key: value(check) for key, check in r.BN_CALLS.items()} == {
        (True, True): BatchNormCall(Statistics.BATCH, True),
        (True, False): BatchNormCall(Statistics.MOVING, False),
        (False, True): BatchNormCall(Statistics.MOVING, False),
        (False, False): BatchNormCall(Statistics.MOVING, False),
        (True, None): BatchNormCall(Statistics.MOVING, False),
    }
    assert all(check.as_documented(value(check)) for check in r.BN_CALLS.values())


def test_batch_norm_stores_four_numbers_per_channel_and_averages_its_statistics():
    # gamma, beta, moving mean, moving variance; the moving statistics non-trainable, gamma and beta trainable.
    assert value(r.BN_VARIABLES) == BatchNormVariables(4, True, True)
    # One image's output depends on its batch in training mode only.
    assert value(r.BN_BATCH_DEPENDENCE) == ByTraining(True, False)
    # new moving mean = momentum * old + (1 - momentum) * batch mean.
    assert value(r.BN_MOVING_AVERAGE) is True
    # predict and evaluate run in inference mode: no statistic moves.
    assert value(r.INFERENCE_MOVES_BN) == PredictEvaluate(False, False)


# --- The mode a layer receives -------------------------------------------------------------------------------------


def test_predict_evaluate_and_a_plain_call_pass_inference_mode():
    # predict and evaluate call the model with training=False; model(x) passes none, and the Dropout's call runs
    # with its own default, False in Keras 3.
    assert (value(r.PREDICT_MODE), value(r.EVALUATE_MODE), value(r.CALL_MODE)) == (Training.FALSE,) * 3


def test_a_dense_layer_ignores_training_and_trainable_changes_the_mode_of_batch_norm_only():
    assert value(r.DENSE_IGNORES_TRAINING) is True
    # None of the nine other layers whose output depends on training changes its mode when frozen.
    assert value(r.TRAINABLE_CHANGES_MODE) == Count(0, 9)


def test_a_frozen_base_has_no_trainable_weights_and_the_model_around_it_two():
    # The tiny base frozen: none; the tutorial model's Dense(1) head: its kernel and bias.
    assert value(r.FROZEN_WEIGHTS) == TrainableWeights(0, 2)


def test_the_remedys_walk_reaches_the_layers_a_custom_block_holds():
    assert value(r.FLATTEN_LAYERS) is True


def test_serving_a_model_with_augmentation_inside(keras):
    # model(x) passes no training to the layers. RandomFlip's own call defaults to training=True, and Keras 3.15.1
    # writes the value it resolved into the call context: it augments, and the BatchNormalization after it (whose
    # call defaults to None, so nothing was recorded when the model was built) receives True and moves its
    # statistics. The Dropout's call defaults to False, which Layer.__call__ resolved and passed explicitly when the
    # model was built, so its node holds training=False: it does not drop. Told training=False, or through predict
    # (which passes False), nothing runs in training mode.
    assert {how: value(check) for how, check in r.SERVING.items()} == {
        "model(x)": Serving(True, True, False),
        "model(x, training=False)": Serving(False, False, False),
        "predict": Serving(False, False, False)}
    assert tuple(r.SERVING) == calls.SERVING


# --- The FAQ's AutoScaleDropout --------------------------------------------------------------------------------------


@pytest.fixture()
def layer(keras):
    layer = models.autoscale_dropout(keras, 0.5, seed=3)
    layer.build((None, 1000))
    return layer


def _ones(keras, layer, **call):
    import numpy as np

    return dropout_observation(numpy(keras, layer(np.ones((1, 100_000), "float32"), **call)))


def test_scale_is_the_one_trainable_weight_and_starts_as_plain_inverted_dropout(layer):
    assert [w.name for w in layer.trainable_weights] == ["scale"]
    assert float(layer.scale.numpy()) == pytest.approx(2.0)  # 1 / (1 - 0.5)


def test_training_true_drops_and_scales_the_survivors_by_the_learned_scale(keras, layer):
    layer.scale.assign(3.0)
    seen = _ones(keras, layer, training=True)
    assert 0.49 < seen.fraction_zeroed < 0.51 and seen.survivor_values == (3.0,)


@pytest.mark.parametrize("training", [{"training": False}, {}], ids=["training=False", "no training argument"])
def test_inference_is_the_identity(keras, layer, training):
    assert _ones(keras, layer, **training).identity


def test_frozen_it_still_drops_but_has_no_trainable_weights(keras, layer):
    layer.trainable = False
    assert layer.trainable_weights == [] and _ones(keras, layer, training=True).fraction_zeroed > 0.49


def test_fit_moves_the_scale_only_when_trainable_and_runs_the_layer_in_training_mode_either_way():
    # trainable weights / drops in training / fit moved its scale / fit ran it in training mode.
    assert value(r.AUTOSCALE[True]) == AutoScale(1, True, True, True)
    assert value(r.AUTOSCALE[False]) == AutoScale(0, True, False, True)
    assert all(r.AUTOSCALE[trainable].as_documented(value(r.AUTOSCALE[trainable])) for trainable in (True, False))
