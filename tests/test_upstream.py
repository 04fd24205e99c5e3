"""The upstream reproducers (companion/versions/upstream/) under the pinned release (and keras-nightly, JAX and
PyTorch), against what Keras does, derived by hand from its source (NOTES.md section 2); a script run alone prints
what it printed after the other one in their shared child process."""

import json
import subprocess
import sys

import pytest

from companion.core.columns import PINNED, Column, variant_column
from companion.versions import install, upstream

PINNED_TF = Column("keras", PINNED)
PINNED_JAX = Column("keras", PINNED, "jax")
PINNED_TORCH = Column("keras", PINNED, "torch")


def _installed(column: Column) -> Column:
    if not install.is_installed(column):
        pytest.skip(f"{column.label} is not installed (companion variants install --releases)")
    return column


@pytest.mark.parametrize("column, received", [(PINNED_TF, [True]), (variant_column("keras-nightly"), [False])],
                         ids=lambda value: getattr(value, "key", str(value)))
def test_the_dropout_leak(column, received):
    found = upstream.outputs(_installed(column))[upstream.DROPOUT_LEAK]
    assert (found["keras"], found["backend"]) == (column.version, "tensorflow")
    # In a functional model, the pinned release passes fit's training=True to the Dropout after the base (its
    # recorded False, resolved from Dropout.call's default when the model was built, is overridden); keras-nightly
    # keeps what was recorded (the base's training=False, stashed in the call context for the layers after it).
    assert found["dropout_training_in_fit"] == received


@pytest.mark.parametrize("column, applied", [(PINNED_TF, False), (PINNED_JAX, True), (PINNED_TORCH, True)],
                         ids=lambda value: getattr(value, "key", str(value)))
def test_the_trainable_assignment_is_ignored_on_tensorflow_only(column, applied):
    found = upstream.outputs(_installed(column))[upstream.TRAINABLE_IGNORED]
    assert found["base_trainable"] is True
    # Applied, the setter recurses and the two Dense layers' kernels and biases are trainable again: 2 * 2 = 4.
    # Ignored (TensorFlow's KerasAutoTrackable.__setattr__ returns early: True is the flag already held): 0.
    assert found["trainable_weights"] == (4 if applied else 0)
    assert found["trainable_layers"] == (["a", "b"] if applied else [])


def test_the_second_script_run_alone_prints_what_it_printed_after_the_first():
    # In their shared process the trainable script runs after the Dropout one: alone, as `python script.py` a
    # reporter would run, it prints the same line.
    alone = subprocess.run([sys.executable, str(upstream.TRAINABLE_IGNORED)], env=install.environment(PINNED_TF),
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
