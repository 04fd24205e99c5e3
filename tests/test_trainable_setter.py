"""When a ``trainable`` change counts, and the ignored ``base.trainable = True`` on Keras 3's TensorFlow backend
(``companion.checks.trainable_checks``): the checks' values against expectations derived by hand from Keras' source,
under the pinned Keras (this process) and, for the other backends and tf-keras, in the kept matrix.
"""

import inspect

import pytest

from companion.checks import models, registry, trainable_checks
from companion.checks.check import value
from companion.checks.evidence import Failed, TrainableTiming
from companion.core.columns import PINNED, Column, variant_column
from companion.versions import matrix


def test_the_tensorflow_backend_short_circuits_an_assignment_of_the_same_object():
    # The cause, in the installed Keras: KerasAutoTrackable.__setattr__ (keras/src/backend/tensorflow/trackable.py)
    #     if getattr(self, name) is value:
    #         # Short circuit for `self.$x = self.$x`.
    #         return
    # `base.trainable = True` on a base whose flag is True assigns the same object (True is True), so the
    # `trainable` property's setter, which sets every sublayer's flag, never runs.
    from keras.src.backend.tensorflow.trackable import KerasAutoTrackable

    assert "if getattr(self, name) is value:" in inspect.getsource(KerasAutoTrackable.__setattr__)


def test_on_the_pinned_keras_and_tensorflow_the_setter_leaves_the_refrozen_layers_frozen(keras):
    assert keras.backend.backend() == "tensorflow"
    # By hand: dense_1 and dense_2 frozen one by one, the base's own flag still True; the assignment is skipped
    # (above), so only dense_3's kernel and bias are trainable: 2 of 6, not 6.
    base = models.dense_base(keras)
    assert [layer.name for layer in trainable_checks.refreeze_first_two(base)] == ["dense_1", "dense_2"]
    base.trainable = True
    assert len(base.trainable_weights) == 2
    assert value(registry.TRAINABLE_AGAIN) is False
    # The reader's staged unfreezing therefore never trains the refrozen layers in its second fit.
    assert value(registry.STAGED_UNFREEZING) is False
    # The workaround: a change of value runs the setter (False, then True): all 6 trainable.
    base.trainable = False
    base.trainable = True
    assert len(base.trainable_weights) == 6
    assert value(registry.FALSE_THEN_TRUE) is True


def test_on_the_pinned_keras_a_trainable_change_counts_when_the_train_step_is_traced():
    # The TensorFlow trainer reads the trainable variables when it traces the train step, at the first fit: a change
    # before it is honoured, one after it is not until the step is traced again (make_train_function(force=True))
    # or the model compiled again (which discards the step).
    assert value(registry.TRAINABLE_TIMING) == TrainableTiming(True, False, True, True)


def test_on_the_pinned_keras_phase_ones_optimizer_refuses_the_unfrozen_base():
    # Phase 1 builds the optimizer for the head's kernel and bias; its apply() refuses any other variable
    # (keras/src/optimizers/base_optimizer.py, _check_variables_are_known: "Unknown variable"), whether the model is
    # compiled again with it or only its train step made again. A new optimizer trains the base.
    reuse = value(registry.OPTIMIZER_REUSE)
    for refused in (reuse.same_instance, reuse.make_train_function):
        assert isinstance(refused, Failed) and refused.error.startswith("ValueError: Unknown variable")
    assert reuse.new_instance is True


@pytest.fixture(scope="module")
def kept():
    """The whole matrix, computed once (kept in the cache folder: the chapters and the other tests read the same)."""
    return matrix.compute(progress=False)


@pytest.mark.parametrize("column", [variant_column("tf-keras"), Column("keras", PINNED, "jax"),
                                    Column("keras", PINNED, "torch")], ids=lambda column: column.key)
def test_on_tf_keras_jax_and_pytorch_the_setter_unfreezes_them(kept, column):
    # tf-keras' Layer.__setattr__ and the JAX and PyTorch backends' have no short circuit (PyTorch's Layer is a
    # torch.nn.Module, whose __setattr__ always sets): the setter runs, all 6 trainable, and the second fit trains
    # the refrozen layers.
    measured = kept.at(column)
    if measured.error == "not installed":
        pytest.skip(f"{column.label} is not installed (companion variants install --releases)")
    assert measured.ran and measured.versions["backend"] == column.backend, measured.error
    assert (measured.values[registry.TRAINABLE_AGAIN], measured.values[registry.STAGED_UNFREEZING]) == (True, True)


def test_tf_keras_fixes_the_trainable_weights_at_compile(kept):
    """tf-keras collects the trainable weights when the model is compiled: a change after compile is honoured by
    no fit before the next compile, not even by a train step traced again; its optimizer, built for the head's
    variables, refuses the unfrozen base's with a KeyError ("cannot recognize variable")."""
    measured = kept.at(variant_column("tf-keras"))
    if measured.error == "not installed":
        pytest.skip("tf-keras is not installed (companion variants install)")
    assert measured.values[registry.TRAINABLE_TIMING] == TrainableTiming(False, False, False, True)
    reuse = measured.values[registry.OPTIMIZER_REUSE]
    assert isinstance(reuse.same_instance, Failed) and reuse.same_instance.error.startswith("KeyError")
    assert "cannot recognize variable" in reuse.same_instance.error and reuse.new_instance is True
