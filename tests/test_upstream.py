"""The upstream reproducers (companion/versions/upstream/) run as plain scripts under the pinned release, against what
Keras 3.15.1 does, derived by hand from its source (NOTES.md sections 1 and 2)."""

import pytest

from companion.versions import releases, upstream

PINNED_TF = releases.Release("keras", releases.PINNED)
PINNED_JAX = releases.Release("keras", releases.PINNED, "jax")
PINNED_TORCH = releases.Release("keras", releases.PINNED, "torch")


def test_the_dropout_leak_on_the_pinned_release():
    found = upstream.run(upstream.DROPOUT_LEAK, PINNED_TF)
    assert (found["keras"], found["backend"]) == (releases.PINNED, "tensorflow")
    seen = found["dropout_training_in_fit"]
    # Functional: fit's training=True reaches the Dropout after the base; the base's fixed False stays inside it.
    assert seen["after_functional_base"] == [True]
    # Subclassed: the first call (fit building the model, None) then the traced step: the base call's False is
    # left in the call context and the Dropout, called without `training`, inherits it.
    assert seen["after_subclassed_base"] == [None, False, False]


@pytest.mark.parametrize("release, applied", [(PINNED_TF, False), (PINNED_JAX, True), (PINNED_TORCH, True)])
def test_the_trainable_assignment_is_ignored_on_tensorflow_only(release, applied):
    if not releases.is_installed(release):
        pytest.skip(f"{release.label} is not installed (companion variants install --releases)")
    found = upstream.run(upstream.TRAINABLE_IGNORED, release)
    assert found["base_trainable"] is True
    # Applied, the setter recurses and the two Dense layers' kernels and biases are trainable again: 2 * 2 = 4.
    # Ignored (TensorFlow's KerasAutoTrackable.__setattr__ returns early: True is the flag already held): 0.
    assert found["trainable_weights"] == (4 if applied else 0)
    assert found["trainable_layers"] == (["a", "b"] if applied else [])
