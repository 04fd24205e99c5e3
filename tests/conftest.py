import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
# Pages without a figure of their own: nothing to plot (the introduction's one run, how the book is verified, the
# reproducers' outputs, the API reference), or, for the summary, the figures it cites are on the pages that compute them.
PAGES_WITHOUT_FIGURES = ("book/introduction", "book/how_it_is_verified", "book/upstream_reports", "book/summary",
                         "book/api")

# Tests compute on the CPU, quietly and in the smallest profile, whatever the caller's environment says, and
# start from an empty cache: every kept result (run checkpoints, matrix columns) is computed in this session. The
# session's first process makes it (pytest, or pytest-xdist's controller, which loads this file before it starts its
# workers); the workers inherit it and share it, so that what one computes the other reads (each kept result is
# computed under a lock: companion.core.cache.exclusive).
IN_A_WORKER = "PYTEST_XDIST_WORKER" in os.environ
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.pop("COMPANION_PROFILE", None)
if not IN_A_WORKER:
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
# Shared by the workers as the cache is.
if not IN_A_WORKER:
    os.environ["COMPANION_NBVAL_EXECUTED"] = tempfile.mkdtemp(prefix="companion-nbval-executed-")
NBVAL_EXECUTED = Path(os.environ["COMPANION_NBVAL_EXECUTED"])


# `make test` runs on two pytest-xdist workers with `--dist loadfile --no-loadscope-reorder`: each test file, and
# each chapter, runs whole on one worker, and files are handed out in collection order (`book` before `tests`). Two
# units go first, one to each worker, as `companion run --jobs 2` shares the chapters out: the tutorial chapters
# (chapters.TUTORIAL_CHAPTERS), and the other chapters followed by the test files that read every chapter's
# execution (the built book, the browser), which wait for the tutorial chapters where those are still running
# (executed_chapters). The other test files go one at a time to whichever worker is free, the longest first
# (LONGEST_FIRST), so that the last file a worker takes is a short one and both workers finish together.
READS_EXECUTED_CHAPTERS = ("tests/test_browser.py", "tests/test_notebooks.py", "tests/test_workflows.py")
# The test files that took longest in a clean-clone `.ci/run` (pytest's junit times of 2026-12-03; each over 20 s),
# longest first. A file missing here only runs later; a wrong order costs time, not correctness.
LONGEST_FIRST = ("tests/test_runner.py", "tests/test_profiles_gpu.py", "tests/test_cli.py", "tests/test_backbones.py",
                 "tests/test_chapters_code.py", "tests/test_check.py", "tests/test_fine_tuning.py",
                 "tests/test_remedy.py", "tests/test_benchmark.py", "tests/test_packaging.py",
                 "tests/test_check_model.py")


def pytest_unconfigure(config):
    """The session's first process removes the fresh folders it made (the cache and nbval's executions, which
    ``executed_chapters`` copies out): a session would otherwise leave a few hundred MB behind in the temp folder."""
    if not IN_A_WORKER:
        for folder in (os.environ["COMPANION_CACHE_DIR"], NBVAL_EXECUTED):
            shutil.rmtree(folder, ignore_errors=True)


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    from companion.pages.chapters import TUTORIAL_CHAPTERS

    class ChaptersFirst(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = super()._split_scope(nodeid)
            if file.startswith("book/"):
                return "the tutorial chapters" if Path(file).stem in TUTORIAL_CHAPTERS else "the other chapters"
            return "the other chapters" if file in READS_EXECUTED_CHAPTERS else file

    return ChaptersFirst(config, log)


def _handed_out_order(nodeid: str) -> tuple[int, int]:
    """The chapters first, as `companion run --jobs 2` orders them (the tutorial chapters in the order of
    chapters.TUTORIAL_CHAPTERS; the others as collected, chapters.OTHER_CHAPTERS_FIRST first), then LONGEST_FIRST in
    its order, then the other test files as collected."""
    from companion.pages.chapters import OTHER_CHAPTERS_FIRST, TUTORIAL_CHAPTERS

    file = nodeid.split("::")[0]
    if not file.startswith("tests/"):
        stem = Path(file).stem
        order = TUTORIAL_CHAPTERS if stem in TUTORIAL_CHAPTERS else OTHER_CHAPTERS_FIRST
        return 0, order.index(stem) if stem in order else len(order)
    return 1 + (LONGEST_FIRST.index(file) if file in LONGEST_FIRST else len(LONGEST_FIRST)), 0


def pytest_collection_modifyitems(items):
    missing = [file for file in LONGEST_FIRST if not (ROOT / file).is_file()]
    if missing:
        raise pytest.UsageError(f"LONGEST_FIRST in tests/conftest.py names files that do not exist: {missing}")
    items.sort(key=lambda item: _handed_out_order(item.nodeid))  # stable: each file's tests keep their order
    for item in items:
        if "executed_chapters" in getattr(item, "fixturenames", ()) and \
                item.nodeid.split("::")[0] not in READS_EXECUTED_CHAPTERS:
            raise pytest.UsageError(f"{item.nodeid} reads the executed chapters: add its file to "
                                    f"READS_EXECUTED_CHAPTERS in tests/conftest.py")


def _chapter_files() -> list[str]:
    import yaml

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [Path(name).name + ".ipynb" for name in (toc["root"], *(c["file"] for c in toc["chapters"]))]


@pytest.fixture(scope="session")
def executed_chapters(request):
    """Every chapter executed once per session: by nbval in this session when it collected every chapter (as
    `make test` does; on another worker, it may still be executing some, which are waited for), else by the GPU
    workflow's own step (into ROOT/executed)."""
    executed = ROOT / "executed"  # where the workflow's build step reads them
    names = _chapter_files()
    collected = {Path(item.nodeid.split("::")[0]).name for item in request.session.items}
    deadline = time.monotonic() + 45 * 60
    while set(names) <= collected and not all((NBVAL_EXECUTED / name).is_file() for name in names):
        missing = [name for name in names if not (NBVAL_EXECUTED / name).is_file()]
        assert time.monotonic() < deadline, f"nbval did not finish executing {', '.join(missing)} within 45 minutes"
        time.sleep(5)
    if all((NBVAL_EXECUTED / name).is_file() for name in names):
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
