"""The companion as a package: the wheel and sdist pass `twine check`, and a chapter copied alone into an empty
folder runs, offline, in a fresh virtual environment that has only the wheel installed, with the same facts.

The fresh environment installs nothing from the network, so that the test runs with the network cut as the README
promises: it sees the set-up environment's packages (without the companion) through a path entry, and pip installs
the wheel with ``--no-index``, so that any requirement of the wheel, extras included, that the pinned set-up does not
satisfy fails the install."""

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import nbformat
import pytest
from conftest import BOOK, ROOT

from companion.pages.notebook import is_fact_cell

CHAPTER = "trainable_versus_training.ipynb"  # fact cells, no data and no packaged weights needed
# Only loopback: the kernel talks to papermill over 127.0.0.1; any other address is refused, as with the network cut.
OFFLINE = """
import socket

_getaddrinfo = socket.getaddrinfo

def _loopback_only(host, *args, **kwargs):
    if host not in ("localhost", "127.0.0.1", "::1", None):
        raise OSError(f"network cut by the test: {host}")
    return _getaddrinfo(host, *args, **kwargs)

socket.getaddrinfo = _loopback_only
"""


@pytest.fixture(scope="module")
def dist(tmp_path_factory):
    """The wheel and sdist, built from a copy of the sources (setuptools writes build/ next to them)."""
    source, out = tmp_path_factory.mktemp("source") / "book", tmp_path_factory.mktemp("dist")
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(
        ".git", ".venv", ".variants", "_build", "build", "executed", "runs", "*.egg-info", "__pycache__"))
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--wheel", "--sdist", "--outdir", str(out),
                           str(source)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_the_wheel_and_sdist_pass_twine_check_and_carry_what_the_chapters_need(dist):
    import zipfile

    done = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dist.iterdir())],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = dist.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("companion/data/pipeline.py", "companion/assets/cats_and_dogs_filtered.sha256",
                   "companion/assets/book.mplstyle", "companion/assets/pretrained-weights.txt",
                   "companion/assets/standin_attempts.json", "companion/assets/home.json"):
        assert needed in names, needed


def _installed_without_the_companion(view: Path) -> Path:
    """The set-up environment's site-packages seen through one symlink per entry, leaving out the companion's own
    (editable) install and the ``.pth`` files, which a plain path entry does not run anyway."""
    site_packages = Path(sysconfig.get_paths()["purelib"])
    view.mkdir()
    for entry in site_packages.iterdir():
        if entry.suffix == ".pth" or "training_vs_trainable" in entry.name:
            continue
        (view / entry.name).symlink_to(entry)
    return view


def test_a_chapter_alone_runs_offline_in_a_fresh_environment_with_the_same_facts(dist, tmp_path):
    venv = tmp_path / "venv"
    # Without pip of its own, whose setuptools would shadow the pinned one: the set-up's pip runs from the view.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    dependencies = _installed_without_the_companion(tmp_path / "dependencies")
    (Path(purelib) / "set-up-dependencies.pth").write_text(f"{dependencies}\n")
    (wheel,) = dist.glob("*.whl")
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-index", "-c",
                              str(ROOT / "constraints.txt"), f"{wheel}[cpu,book]"], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(BOOK / CHAPTER, alone / CHAPTER)
    offline = tmp_path / "offline"
    offline.mkdir()
    (offline / "sitecustomize.py").write_text(textwrap.dedent(OFFLINE))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPANION_", "PYTHONPATH", "VIRTUAL_ENV"))}
    env.update(PYTHONPATH=str(offline), COMPANION_DATA_DIR=os.environ.get("COMPANION_DATA_DIR", ""),
               COMPANION_CACHE_DIR=str(tmp_path / "cache"), PATH=f"{venv / 'bin'}:{os.environ['PATH']}")
    done = subprocess.run([str(python), "-m", "papermill", CHAPTER, "executed.ipynb", "--no-progress-bar"],
                          cwd=alone, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    where = subprocess.run([str(python), "-c", "import companion; print(companion.__file__)"], cwd=alone, env=env,
                           capture_output=True, text=True)
    assert str(venv) in where.stdout and str(ROOT) not in where.stdout  # the wheel, not the clone
    committed = [c for c in nbformat.read(BOOK / CHAPTER, 4).cells if is_fact_cell(c)]
    executed = [c for c in nbformat.read(alone / "executed.ipynb", 4).cells if is_fact_cell(c)]
    assert committed and len(executed) == len(committed)
    for before, after in zip(committed, executed):
        text = lambda cell: [o.get("data", {}).get("text/plain") for o in cell.outputs]  # noqa: E731
        assert text(after) == text(before), before.source[:80]
