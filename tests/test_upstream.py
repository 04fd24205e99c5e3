"""The upstream reproducers (companion/versions/upstream/) under the pinned release, against what Keras 3.15.1 does,
derived by hand from its source (NOTES.md sections 1 and 2); a script run alone prints what it printed after the
other one in their shared child process."""

import json
import subprocess
import sys

import pytest

from companion.versions import releases, upstream

PINNED_TF = releases.Release("keras", releases.PINNED)
PINNED_JAX = releases.Release("keras", releases.PINNED, "jax")
PINNED_TORCH = releases.Release("keras", releases.PINNED, "torch")


def test_the_dropout_leak_on_the_pinned_release():
    found = upstream.outputs(PINNED_TF)[upstream.DROPOUT_LEAK]
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
    found = upstream.outputs(release)[upstream.TRAINABLE_IGNORED]
    assert found["base_trainable"] is True
    # Applied, the setter recurses and the two Dense layers' kernels and biases are trainable again: 2 * 2 = 4.
    # Ignored (TensorFlow's KerasAutoTrackable.__setattr__ returns early: True is the flag already held): 0.
    assert found["trainable_weights"] == (4 if applied else 0)
    assert found["trainable_layers"] == (["a", "b"] if applied else [])


def test_the_second_script_run_alone_prints_what_it_printed_after_the_first():
    # In their shared process the trainable script runs after the Dropout one: alone, as `python script.py` a
    # reporter would run, it prints the same line.
    alone = subprocess.run([sys.executable, str(upstream.TRAINABLE_IGNORED)], env=releases.environment(PINNED_TF),
                           capture_output=True, text=True, timeout=600)
    assert alone.returncode == 0, alone.stderr[-3000:]
    assert json.loads(alone.stdout.strip().splitlines()[-1]) == upstream.outputs(PINNED_TF)[upstream.TRAINABLE_IGNORED]


def test_a_script_that_raises_gets_its_error_and_the_next_one_still_runs(tmp_path):
    from companion.core import child

    failing, printing = tmp_path / "failing.py", tmp_path / "printing.py"
    failing.write_text("raise ImportError('no such API in this release')\n")
    printing.write_text("print('ignored')\nprint('{\"answer\": 42}')\n")
    assert child.printed_json([str(failing), str(printing)]) == [
        {"error": "ImportError: no such API in this release"}, {"answer": 42}]
