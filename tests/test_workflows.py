"""The workflows cannot run here, so what can be checked is: actionlint finds nothing in them, and the GPU
workflow's two book steps run as written (on CPU, in the smoke profile): the session's executed chapters and built
book come from those very steps (see conftest)."""

import json
import subprocess

from companion import chapters
from conftest import ROOT, gpu_workflow_step


def test_actionlint_finds_nothing_in_the_workflows():
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "actionlint")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_gpu_workflow_executes_every_chapter_and_builds_from_them(executed_chapters, built_book):
    assert "companion run --all" in gpu_workflow_step("Execute every chapter")
    assert "companion book --executed" in gpu_workflow_step("Build the book from the executed chapters")
    for name in chapters.chapters():
        summary = json.loads((executed_chapters / f"{name}.summary.json").read_text())
        assert summary["completed"] and summary["profile"] == "smoke", name
        assert (built_book / "book" / f"{name}.html").is_file(), name
