"""`companion check`: the verdict and the remedy on the Keras installed, with nothing of the book imported."""

import json
import subprocess
import sys

import pytest

from companion.checks import questions
from companion.checks.evidence import Failed, Recompile, Updates
from companion.core import variants
from companion.versions import check, releases

# What importing the check may bring in, and what it must not.
ALLOWED_COMPANION = {"companion", "companion.versions", "companion.versions.check", "companion.checks",
                     "companion.checks.decisive", "companion.checks.evidence", "companion.checks.questions",
                     "companion.core", "companion.core.tables", "companion.core.variants"}
BOOK_ONLY = ("matplotlib", "tqdm", "papermill", "nbformat", "IPython", "tensorflow", "keras", "jax", "torch")

PROBE = """
import json, sys
from companion.versions import check
imported_first = sorted(m for m in {book_only} if m in sys.modules)
verdict = check.run()
print(json.dumps({{"imported_first": imported_first, "tensorflow": "tensorflow" in sys.modules,
                  "companion": sorted(m for m in sys.modules if m.startswith("companion")),
                  "report": verdict.report()}}))
"""


def _probe(env) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE.format(book_only=BOOK_ONLY)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _verdict(**changes) -> check.Verdict:
    values = {c.id: Updates(False, False, True) if c.kind is Updates else Recompile(True, False)
              if c.kind is Recompile else True for c in questions.CHECKS}
    return check.Verdict({"keras": "3.15.1", "backend": "tensorflow", "backend_version": "2.21.0",
                          "python": "3.11"}, {**values, **changes})


def test_the_verdict_reads_the_typed_values():
    # _verdict's defaults: the remedy works with both calls, the head Dropout drops, and so does a Dropout inside the
    # base (as on keras 3.15.1 and 3.0.5); with trainable_setter=False, as on Keras 3's TensorFlow backend.
    pinned = _verdict(trainable_setter=False, staged_unfreezing=False)
    assert pinned.overridden and not pinned.dropout_leaks and pinned.needs_recompile and pinned.setter_ignored
    assert pinned.calls(own_dropout=False) == [check.Call.AS_WRITTEN, check.Call.PLAIN]
    assert pinned.advice(own_dropout=False) == "call it as `base(x, training=False)` or `base(x)`"
    # The Dropout inside drops with either call: no call keeps it in inference mode.
    assert pinned.calls(own_dropout=True) == []
    assert pinned.advice(own_dropout=True).startswith("no tested call keeps that Dropout in inference mode here")
    assert pinned.unfreezing() == ("no: the layers frozen one by one stay frozen; set base.trainable = False, then "
                                   "True, to unfreeze them")
    # keras-nightly: training=False keeps the inside Dropout off but also the head's (remedy_dropout False); base(x)
    # lets the head drop but also the inside: base(x) without a Dropout inside, nothing with one.
    nightly = _verdict(nested_override=False, dropout_leak_fit=False, remedy_dropout=False,
                       remedy_inside_dropout=False)
    assert not nightly.overridden and nightly.dropout_leaks
    assert nightly.calls(own_dropout=False) == [check.Call.PLAIN] and nightly.calls(own_dropout=True) == []
    # tf-keras: training=False keeps the inside Dropout off and the head's dropping: that call, for both bases.
    tf_keras = _verdict(nested_override=False, remedy_inside_dropout=False)
    assert tf_keras.calls(own_dropout=True) == [check.Call.AS_WRITTEN]
    assert tf_keras.unfreezing() == "yes"
    jax = _verdict(recompile=Recompile(Failed("ValueError: x"), False))
    assert jax.needs_recompile
    broken = _verdict(remedy=Updates(True, False, True), remedy_alone=Updates(True, False, True))
    assert broken.calls(own_dropout=False) == [] and broken.advice(own_dropout=True).startswith("no tested call works")
    stuck = _verdict(trainable_setter=False, false_then_true=False)
    assert stuck.unfreezing().endswith("neither it nor base.trainable = False, then True, unfroze them here")


def test_companion_check_on_the_pinned_keras_names_the_verdict_and_the_remedy():
    result = _probe(variants.child_environment([], legacy=False, backend="tensorflow", others=releases.folders()))
    report = result["report"]
    assert report.startswith("Keras 3.15.1 on tensorflow 2.21.0")
    assert "Is base(x, training=False) overridden during fit? yes: fit moved the BatchNormalization statistics" in report
    assert "Does training=False leak to the Dropout after the base? no" in report
    assert "Does base.trainable = True unfreeze layers frozen one by one? no: the layers frozen" in report
    assert "move BN statistics after a RandomFlip inside the model? yes" in report
    assert "Remedy on this install: after unfreezing the base, freeze every BatchNormalization layer" in report
    assert check.REMEDY_SOURCE in report  # the function itself, as the reader copies it
    assert "A base without a Dropout of its own: call it as `base(x, training=False)` or `base(x)`." in report
    assert "A base with its own Dropout (EfficientNet, ConvNeXt): no tested call keeps that Dropout" in report
    assert result["imported_first"] == [] and set(result["companion"]) <= ALLOWED_COMPANION


def test_companion_check_under_jax_imports_no_tensorflow():
    if not releases.is_installed(releases.Release("keras", releases.PINNED, "jax")):
        pytest.skip("JAX is not installed (companion variants install --releases)")
    env = variants.child_environment([releases.backend_folder("jax")], legacy=False, backend="jax", others=releases.folders())
    result = _probe(env)
    assert result["report"].startswith("Keras 3.15.1 on jax 0.10.2")
    assert "overridden during fit? yes" in result["report"]
    assert "Does base.trainable = True unfreeze layers frozen one by one? yes" in result["report"]
    assert "raised ValueError / no" in result["report"]  # fit refuses a trainable change until recompiling
    assert not result["tensorflow"] and set(result["companion"]) <= ALLOWED_COMPANION


def test_companion_check_under_pytorch_imports_no_tensorflow():
    if not releases.is_installed(releases.Release("keras", releases.PINNED, "torch")):
        pytest.skip("PyTorch is not installed (companion variants install --releases)")
    env = variants.child_environment([releases.backend_folder("torch")], legacy=False, backend="torch",
                                     others=releases.folders())
    result = _probe(env)
    assert result["report"].startswith("Keras 3.15.1 on torch 2.13.0")
    assert "overridden during fit? yes" in result["report"]
    assert "Does base.trainable = True unfreeze layers frozen one by one? yes" in result["report"]
    # PyTorch runs fit eagerly: a trainable change is honoured at once, with or without recompiling.
    assert "Does a trainable change need a recompile? no" in result["report"]
    assert not result["tensorflow"] and set(result["companion"]) <= ALLOWED_COMPANION


def test_the_cli_command_exits_0(monkeypatch, capsys):
    from companion.pages import cli

    monkeypatch.setattr(check, "run", lambda: _verdict())
    assert cli.main(["check"]) == 0
    assert "Remedy on this install:" in capsys.readouterr().out


def test_the_decision_table_groups_the_columns_by_the_calls_that_work():
    # Hand-derived from the verdicts above: 3.15.1 and its JAX column give the same answer and share a row.
    verdicts = {"keras 3.15.1": _verdict(), "keras 3.15.1 (JAX)": _verdict(),
                "keras-nightly": _verdict(remedy_dropout=False, remedy_inside_dropout=False),
                "tf-keras": _verdict(remedy_inside_dropout=False)}
    assert check.decision_table(verdicts).rows == [
        ["keras 3.15.1 and keras 3.15.1 (JAX)", "base(x, training=False) or base(x)", "none"],
        ["keras-nightly", "base(x)", "none"],
        ["tf-keras", "base(x, training=False) or base(x)", "base(x, training=False)"]]
    # base(x) works in every column for a base without a Dropout of its own; no call does for a base with one.
    assert check.everywhere(verdicts, own_dropout=False) == [check.Call.PLAIN]
    assert check.everywhere(verdicts, own_dropout=True) == []
