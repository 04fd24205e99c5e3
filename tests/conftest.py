import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

# Tests compute on the CPU, quietly and in the smallest profile, whatever the caller's environment says, and
# start from an empty cache: every kept result (run checkpoints, matrix columns) is computed in this session.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.pop("COMPANION_PROFILE", None)
os.environ["COMPANION_CACHE_DIR"] = tempfile.mkdtemp(prefix="companion-test-cache-")


@pytest.fixture(scope="session")
def smoke():
    from companion.core import profiles

    return profiles.get("smoke")


@pytest.fixture()
def keras():
    from companion.core.variants import load_keras

    module = load_keras()
    module.utils.set_random_seed(0)
    return module


def gpu_workflow_step(name: str) -> str:
    """The shell script of a step of the GPU workflow, as written."""
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "gpu.yml").read_text())
    return next(step["run"] for job in workflow["jobs"].values() for step in job["steps"] if step.get("name") == name)


def _run_step(name: str) -> None:
    """Run a GPU workflow step's script in the clone, on CPU, in the smoke profile (its env sets PROFILE)."""
    env = {**os.environ, "PROFILE": "smoke"}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", gpu_workflow_step(name)], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]


# nbval, which executes every chapter when `book` is collected (make test runs `pytest ... book tests`), writes the
# notebooks it executed here (book/conftest.py), so that the book is built from those executions.
NBVAL_EXECUTED = Path(tempfile.mkdtemp(prefix="companion-nbval-executed-"))
os.environ["COMPANION_NBVAL_EXECUTED"] = str(NBVAL_EXECUTED)


def _chapter_files() -> list[str]:
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [Path(name).name + ".ipynb" for name in (toc["root"], *(c["file"] for c in toc["chapters"]))]


@pytest.fixture(scope="session")
def executed_chapters():
    """Every chapter executed once per session: by nbval earlier in this session when it ran every chapter (as
    `make test` does), else by the GPU workflow's own step (into ROOT/executed)."""
    executed = ROOT / "executed"  # where the workflow's build step reads them
    if all((NBVAL_EXECUTED / name).is_file() for name in _chapter_files()):
        shutil.rmtree(executed, ignore_errors=True)
        shutil.copytree(NBVAL_EXECUTED, executed)
    else:
        _run_step("Execute every chapter")
    return executed


@pytest.fixture(scope="session")
def built_book(executed_chapters):
    """The HTML book built once per session from those chapters, by the GPU workflow's own step."""
    _run_step("Build the book from the executed chapters")
    return ROOT / "_build" / "html"
