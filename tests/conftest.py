import os
import shutil
import subprocess
import sys
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
    from companion import profiles

    return profiles.get("smoke")


@pytest.fixture()
def keras():
    from companion.variants import load_keras

    module = load_keras()
    module.utils.set_random_seed(0)
    return module


@pytest.fixture(scope="session")
def built_book(tmp_path_factory):
    """Build the book once per test session from a copy of the sources; returns the HTML folder."""
    site = tmp_path_factory.mktemp("site")
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, site / name)
    shutil.copytree(BOOK, site / "book")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "jupyter-book"), "build", str(site)], capture_output=True, text=True
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-5000:]
    return site / "_build" / "html"
