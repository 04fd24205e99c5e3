"""The workflows cannot run here, so what can be checked is: actionlint finds nothing in them, and the GPU
workflow's two book steps run as written (on CPU, in the smoke profile): the session's executed chapters and built
book come from those very steps (see conftest)."""

import json
import subprocess

import nbformat
from conftest import ROOT, gpu_workflow_step

from companion.pages import chapters


def test_actionlint_finds_nothing_in_the_workflows():
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "actionlint")], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_gpu_workflow_executes_every_chapter_and_builds_from_them(executed_chapters, built_book):
    assert "companion run --all" in gpu_workflow_step("Execute every chapter")
    assert "companion book --executed" in gpu_workflow_step("Build the book from the executed chapters")
    for name in chapters.chapters():
        # The chapters come from nbval's executions of this session (make test) or from the workflow's own step.
        executed = nbformat.read(executed_chapters / f"{name}.ipynb", as_version=4)
        code = [cell for cell in executed.cells if cell.cell_type == "code"]
        assert code and all(cell.execution_count for cell in code), name
        assert not [o for cell in code for o in cell.outputs if o.output_type == "error"], name
        summary = executed_chapters / f"{name}.summary.json"
        if summary.is_file():
            assert json.loads(summary.read_text())["completed"], name
        assert (built_book / "book" / f"{name}.html").is_file(), name
