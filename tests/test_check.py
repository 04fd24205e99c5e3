"""`companion check`: the matrix's column for the Keras installed here, with what it means, and nothing of the book
imported."""

import json
import subprocess
import sys

import pytest

from companion.checks import fine_tuning, registry
from companion.checks.evidence import (
    Count,
    Failed,
    FineTuned,
    NotApplicable,
    NotRun,
    Phase,
    Serving,
    TrainableTiming,
    Training,
)
from companion.checks.fine_tuning import FLAT
from companion.checks.ways import TRAINING_FALSE
from companion.core.columns import EVERY_COLUMN, PINNED, Column, variant_column
from companion.versions import check, install
from companion.versions.matrix import Measured

# What `companion check` must not import: the book's pages, training runs, audit or data, and, before it runs the
# checks, the libraries only the book uses, nor Keras or a backend (Keras itself imports matplotlib and IPython where
# they are installed). Under JAX or PyTorch it runs without TensorFlow (KerasHub imports it where it is installed).
BOOK_ONLY = ("matplotlib", "tqdm", "papermill", "nbformat", "IPython")
BOOK_LAYERS = ("companion.pages", "companion.training", "companion.audit", "companion.data")

PROBE = """
import importlib.machinery, json, sys


class WithoutTensorFlow:
    \"\"\"Importing TensorFlow fails, as where it is not installed; a spec without an origin, so that a library that
    only looks for it (PyTorch's compiler lists the libraries it skips) passes over it.\"\"\"

    def find_spec(self, name, path=None, target=None):
        return importlib.machinery.ModuleSpec(name, self) if name.split(".")[0] == "tensorflow" else None

    def create_module(self, spec):
        raise ModuleNotFoundError(f"No module named {{spec.name!r}}", name=spec.name)


if {without_tensorflow}:
    sys.meta_path.insert(0, WithoutTensorFlow())
from companion.versions import check
imported_first = sorted(m for m in {book_only} + ("tensorflow", "keras", "jax", "torch") if m in sys.modules)
report = check.run()
print(json.dumps({{"imported_first": imported_first, "text": report.text(),
                  "companion": sorted(m for m in sys.modules if m.startswith({book_layers}))}}))
"""


def _probe(env, without_tensorflow: bool = False) -> dict:
    probe = PROBE.format(book_only=BOOK_ONLY, book_layers=BOOK_LAYERS, without_tensorflow=without_tensorflow)
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _environment(column: Column) -> dict:
    if not install.is_installed(column):
        pytest.skip(f"{column.label} is not installed (companion variants install --releases)")
    return install.environment(column)


def test_the_checks_are_those_of_every_column():
    assert check.rows() and all(c.scope is EVERY_COLUMN for c in check.rows())
    assert fine_tuning.check(fine_tuning.MOBILENET, TRAINING_FALSE) not in check.rows()


def _phase(moved: int, after: bool) -> Phase:
    return Phase(Count(moved, 1), True, Count(2, 2), Training.FALSE, NotApplicable("no Dropout in the base"), after)


def _report(values: dict | None = None) -> check.Report:
    """A report on hand-typed values: keras-nightly's, where training=False keeps the statistics and reaches the head's
    Dropout; every other check not run."""
    typed = {c: NotRun("not in this test") for c in check.rows()}
    typed.update({
        fine_tuning.check(FLAT, TRAINING_FALSE): FineTuned(_phase(0, True), _phase(0, False), 0),
        registry.TRAINABLE_TIMING: TrainableTiming(True, Failed("ValueError: changed"), True, True),
        registry.TRAINABLE_AGAIN: True, registry.FALSE_THEN_TRUE: True,
        **{c: Serving(False, False, False) for c in registry.SERVING.values()}, **(values or {})})
    column = variant_column("keras-nightly")
    versions = {"keras": column.version, "backend": "jax", "backend_version": "0.10.2", "python": "3.11.7"}
    return check.Report(Measured(column, versions, typed))


def test_the_report_reads_the_typed_values():
    report = _report()
    assert not report.overridden and report.dropout_after_off
    lines = report.lines()
    assert lines[0] == f"Keras {variant_column('keras-nightly').version} on jax 0.10.2 (Python 3.11.7)"
    assert "Is base(x, training=False) overridden during fit? no: the base's BatchNormalization statistics stayed " \
           "fixed" in lines
    assert "Does training=False reach the Dropout after the base? yes: that Dropout ran in inference mode during fit " \
           "(it dropped nothing)" in lines
    assert ("Is trainable = False set after a fit honoured by the next fit without compiling again? raised "
            "ValueError; after compiling again? yes") in lines
    assert ("Serving a model with augmentation inside: model(x) does not augment; model(x, training=False) does not "
            "augment; predict does not augment. Serve with model(x) or model(x, training=False) or predict.") in lines
    # Of the flat base's seven ways only training=False ran here, and not as intended (its kernels trained while
    # the base was frozen, and the head's Dropout did not drop): the advice says so.
    flat_row = next(line for line in report.text().splitlines() if line.startswith(FLAT.name))
    assert flat_row.endswith("none of the 1 run; 6 not measured")
    overridden = _report({fine_tuning.check(FLAT, TRAINING_FALSE): FineTuned(_phase(0, True), _phase(1, True), 0)})
    assert overridden.overridden and not overridden.dropout_after_off


def test_the_cli_command_exits_0_and_prints_the_remedy(monkeypatch, capsys):
    from companion.pages import cli

    monkeypatch.setattr(check, "run", lambda progress=False: _report())
    assert cli.main(["check"]) == 0
    out = capsys.readouterr().out
    assert "The remedy: after unfreezing the base, call this on it, then compile:" in out
    assert check.REMEDY_SOURCE in out and check.REMEDY_SOURCE.startswith("def freeze_batch_norm(model):")


def test_companion_check_on_the_pinned_keras_names_the_override_and_the_way_to_fine_tune():
    result = _probe(_environment(Column("keras", PINNED)))
    lines = result["text"].splitlines()
    assert lines[0].startswith("Keras 3.15.1 on tensorflow 2.21.0")
    # The functional model passes fit's True over the base's recorded False, and over the head Dropout's.
    assert lines[2].startswith("Is base(x, training=False) overridden during fit? yes: fine-tuning moved")
    assert lines[3].startswith("Does training=False reach the Dropout after the base? no: that Dropout ran in "
                               "training mode")
    # TensorFlow traces the step at the first fit (a change after it is ignored until the model is compiled again),
    # and skips the assignment of the flag the base already holds (tests/test_trainable_setter.py).
    assert "without compiling again? no; after compiling again? yes" in lines[4]
    assert lines[5] == ("Does base.trainable = True unfreeze layers frozen one by one? no; base.trainable = False, "
                        "then True? yes")
    # RandomFlip's call defaults to training=True: model(x) augments and the BN after it moves (test_layer_checks.py).
    assert lines[6].startswith("Serving a model with augmentation inside: model(x) augments and moves BN statistics;")
    assert lines[6].endswith("Serve with model(x, training=False) or predict.")
    assert check.REMEDY_SOURCE in result["text"]
    # The flat base: the remedy with base(x) (tests/test_advice.py); a base with a Dropout of its own: only the
    # InferenceMode wrapper keeps that Dropout off, the functional model passing fit's True over any recorded value.
    advice = {line.split("  ")[0]: line.split("  ")[-1].strip() for line in lines if "  " in line}
    assert advice[FLAT.name] == "remedy + base(x)"
    assert advice[fine_tuning.OWN_DROPOUT.name] == "remedy + InferenceMode(base)(x)"
    # The advice names the wrapper: its code follows, as the checks build it.
    assert check.WRAPPER_SOURCE in result["text"] and "def call(self, inputs):" in check.WRAPPER_SOURCE
    assert result["imported_first"] == [] and result["companion"] == []


def test_companion_check_under_jax_needs_no_tensorflow():
    result = _probe(_environment(Column("keras", PINNED, "jax")), without_tensorflow=True)
    assert result["text"].startswith("Keras 3.15.1 on jax 0.10.2")
    assert "overridden during fit? yes" in result["text"]  # functional.py is the same on every backend
    # The JAX trainer refuses to fit a model whose trainable flags changed until it is compiled again; and its
    # layers' __setattr__ has no short circuit.
    assert "without compiling again? raised ValueError; after compiling again? yes" in result["text"]
    assert "Does base.trainable = True unfreeze layers frozen one by one? yes" in result["text"]
    assert result["imported_first"] == [] and result["companion"] == []


def test_companion_check_under_pytorch_needs_no_tensorflow():
    result = _probe(_environment(Column("keras", PINNED, "torch")), without_tensorflow=True)
    assert result["text"].startswith("Keras 3.15.1 on torch 2.13.0")
    assert "overridden during fit? yes" in result["text"]
    # The PyTorch trainer reads the trainable weights at every step: a change is honoured at once.
    assert "without compiling again? yes; after compiling again? yes" in result["text"]
    assert "Does base.trainable = True unfreeze layers frozen one by one? yes" in result["text"]
    assert result["imported_first"] == [] and result["companion"] == []
