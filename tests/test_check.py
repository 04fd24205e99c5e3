"""`companion check`: the verdict and the remedy on the Keras installed, with nothing of the book imported."""

import json
import subprocess
import sys

import pytest

from companion import check, decisive, releases, variants
from companion.evidence import Failed, Recompile, Updates

# What importing the check may bring in, and what it must not.
ALLOWED_COMPANION = {"companion", "companion.check", "companion.decisive", "companion.evidence", "companion.tables",
                     "companion.variants"}
BOOK_ONLY = ("matplotlib", "tqdm", "papermill", "nbformat", "IPython", "tensorflow", "keras", "jax")

PROBE = """
import json, sys
from companion import check
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
              if c.kind is Recompile else True for c in decisive.CHECKS}
    return check.Verdict({"keras": "3.15.1", "backend": "tensorflow", "backend_version": "2.21.0",
                          "python": "3.11"}, {**values, **changes})


def test_the_verdict_reads_the_typed_values():
    pinned = _verdict()
    assert pinned.overridden and not pinned.dropout_leaks and pinned.needs_recompile
    assert pinned.remedy().startswith("call the base as `base(x)` (keeping `training=False` works here too")
    nightly = _verdict(nested_override=False, dropout_leak_fit=False, remedy_dropout=False)
    assert not nightly.overridden and nightly.dropout_leaks
    assert nightly.remedy().startswith("call the base as `base(x)`; after unfreezing the base, set `trainable = False`")
    jax = _verdict(recompile=Recompile(Failed("ValueError: x"), False))
    assert jax.needs_recompile
    broken = _verdict(remedy=Updates(True, False, True), remedy_alone=Updates(True, False, True))
    assert broken.remedy().startswith("neither tested remedy")


def test_companion_check_on_the_pinned_keras_names_the_verdict_and_the_remedy():
    result = _probe(variants.child_environment([], legacy=False, backend="tensorflow", others=releases.folders()))
    report = result["report"]
    assert report.startswith("Keras 3.15.1 on tensorflow 2.21.0")
    assert "Is base(x, training=False) overridden during fit? yes: fit moved the BatchNormalization statistics" in report
    assert "Does training=False leak to the Dropout after the base? no" in report
    assert "Remedy on this install: call the base as `base(x)`" in report
    assert "layer.trainable = False" in report
    assert result["imported_first"] == [] and set(result["companion"]) <= ALLOWED_COMPANION


def test_companion_check_under_jax_imports_no_tensorflow():
    if not all(variants.installed_in(releases.jax_folder(), r) for r in releases.JAX_REQUIREMENTS):
        pytest.skip("JAX is not installed (companion variants install --releases)")
    env = variants.child_environment([releases.jax_folder()], legacy=False, backend="jax", others=releases.folders())
    result = _probe(env)
    assert result["report"].startswith("Keras 3.15.1 on jax 0.10.2")
    assert "overridden during fit? yes" in result["report"]
    assert "raised ValueError / no" in result["report"]  # fit refuses a trainable change until recompiling
    assert not result["tensorflow"] and set(result["companion"]) <= ALLOWED_COMPANION


def test_the_cli_command_exits_0(monkeypatch, capsys):
    from companion import cli

    monkeypatch.setattr(check, "run", lambda: _verdict())
    assert cli.main(["check"]) == 0
    assert "Remedy on this install:" in capsys.readouterr().out
