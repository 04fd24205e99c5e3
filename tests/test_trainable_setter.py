"""The ignored ``base.trainable = True`` on Keras 3's TensorFlow backend, staged unfreezing, and a direct call of a
model with augmentation inside: the decisive checks' values against expectations derived by hand from Keras' source.
"""

import inspect

import pytest

from companion.checks import decisive
from companion.versions import releases


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
    base = decisive.dense_base(keras)
    decisive.refreeze_first_two(base)
    base.trainable = True
    assert len(base.trainable_weights) == 2
    assert decisive.trainable_again(keras) is False
    # The reader's staged unfreezing therefore never trains the refrozen layers in its second fit.
    assert decisive.staged_unfreezing(keras) is False
    # The workaround: a change of value runs the setter (False, then True): all 6 trainable.
    base.trainable = False
    base.trainable = True
    assert len(base.trainable_weights) == 6


def test_a_direct_call_after_random_flip_moves_batch_norm_statistics_on_the_pinned_keras(keras):
    # RandomFlip.call(self, inputs, training=True) (keras/src/layers/preprocessing/image_preprocessing/random_flip.py):
    # its default True is what the call context hands the BatchNormalization after it, on keras 3.15.1.
    assert inspect.signature(keras.layers.RandomFlip.call).parameters["training"].default is True
    assert decisive.augmented_direct_call(keras) is True


@pytest.mark.parametrize("release", [r for r in releases.releases()
                                     if r.legacy or (r.pinned and r.backend in ("jax", "torch"))],
                         ids=lambda release: release.key)
def test_on_tf_keras_jax_and_pytorch_the_setter_unfreezes_them(release):
    # tf-keras' Layer.__setattr__ and the JAX and PyTorch backends' have no short circuit (PyTorch's Layer is a
    # torch.nn.Module, whose __setattr__ always sets): the setter runs, all 6 trainable, and the second fit trains
    # the refrozen layers. Read from the release's column of the release matrix (its child process; kept).
    if not releases.is_installed(release):
        pytest.skip(f"{release.label} is not installed (companion variants install --releases)")
    column = releases.column(release)
    assert column.ran and column.versions["backend"] == release.backend, column.error
    assert (column.values["trainable_setter"], column.values["staged_unfreezing"]) == (True, True)
