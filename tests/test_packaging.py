"""The companion as a package: the wheel and sdist pass `twine check`; a chapter copied alone into an empty folder
runs, offline, in a fresh virtual environment that has only the wheel installed, with the same facts; and the README's
install line, run in a fresh environment that already has an older Keras release, keeps that Keras, and `companion
check` then reports on it.

The fresh environment installs nothing from the network, so that the test runs with the network cut as the README
promises: it sees the set-up environment's packages (without the companion) through a path entry, and pip installs
the wheel with ``--no-index``, so that any requirement of the wheel, extras included, that the pinned set-up does not
satisfy fails the install."""

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

import nbformat
import pytest
from conftest import BOOK, ROOT

from companion.core.columns import Column
from companion.pages import home
from companion.pages.notebook import is_fact_cell
from companion.versions import check, install

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


def _installed_without_the_companion(view: Path, leave_out: tuple[str, ...] = ()) -> Path:
    """The set-up environment's site-packages seen through one symlink per entry, leaving out the companion's own
    (editable) install, the ``.pth`` files, which a plain path entry does not run anyway, and the distributions named
    in ``leave_out`` (their package and their metadata)."""
    site_packages = Path(sysconfig.get_paths()["purelib"])
    view.mkdir()
    for entry in site_packages.iterdir():
        if entry.suffix == ".pth" or "training_vs_trainable" in entry.name or \
                re.sub(r"-\d.*", "", entry.name) in leave_out:
            continue
        (view / entry.name).symlink_to(entry)
    return view


def _fresh_environment(tmp_path: Path, *first: Path, leave_out: tuple[str, ...] = ()) -> tuple[Path, Path, dict]:
    """A virtual environment that sees ``first`` and then the set-up environment's packages (less the companion and
    ``leave_out``) through a path entry, and pip from there; its python, its site-packages, and an environment for
    running it offline (only loopback reachable), without the caller's companion, Keras or Python settings."""
    venv = tmp_path / "venv"
    # Without pip of its own, whose setuptools would shadow the pinned one: the set-up's pip runs from the view.
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = Path(subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                                  capture_output=True, text=True, check=True).stdout.strip())
    dependencies = _installed_without_the_companion(tmp_path / "dependencies", leave_out)
    (purelib / "set-up-dependencies.pth").write_text("".join(f"{folder}\n" for folder in (*first, dependencies)))
    offline = tmp_path / "offline"
    offline.mkdir()
    (offline / "sitecustomize.py").write_text(textwrap.dedent(OFFLINE))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPANION_", "PYTHONPATH", "VIRTUAL_ENV"))
           and k not in ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS")}
    env.update(PYTHONPATH=str(offline), COMPANION_CACHE_DIR=str(tmp_path / "cache"),
               PATH=f"{venv / 'bin'}:{os.environ['PATH']}")
    return python, purelib, env


def test_a_chapter_alone_runs_offline_in_a_fresh_environment_with_the_same_facts(dist, tmp_path):
    python, _, env = _fresh_environment(tmp_path)
    (wheel,) = dist.glob("*.whl")
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-index", "-c",
                              str(ROOT / "constraints.txt"), f"{wheel}[cpu,book]"], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr[-3000:]
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(BOOK / CHAPTER, alone / CHAPTER)
    env.update(COMPANION_DATA_DIR=os.environ.get("COMPANION_DATA_DIR", ""))
    done = subprocess.run([str(python), "-m", "papermill", CHAPTER, "executed.ipynb", "--no-progress-bar"],
                          cwd=alone, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    where = subprocess.run([str(python), "-c", "import companion; print(companion.__file__)"], cwd=alone, env=env,
                           capture_output=True, text=True)
    assert str(python.parent.parent) in where.stdout and str(ROOT) not in where.stdout  # the wheel, not the clone
    committed = [c for c in nbformat.read(BOOK / CHAPTER, 4).cells if is_fact_cell(c)]
    executed = [c for c in nbformat.read(alone / "executed.ipynb", 4).cells if is_fact_cell(c)]
    assert committed and len(executed) == len(committed)
    for before, after in zip(committed, executed):
        text = lambda cell: [o.get("data", {}).get("text/plain") for o in cell.outputs]  # noqa: E731
        assert text(after) == text(before), before.source[:80]


# A Keras release older than the pinned one, as a reader may have: one of the matrix's columns.
READERS_KERAS = Column("keras", "3.10.0")


def _readme_install_line() -> str:
    """The README's line that installs the companion on a reader's own install."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## The companion on your own install and model", 1)[1]
    return next(line for line in section.splitlines() if line.startswith("pip install "))


def _repository_with_the_working_tree(folder: Path) -> Path:
    """A git repository holding this clone's files as they are now (committed or not, less what git ignores), so
    that pip's ``git+`` install builds the code under test."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, folder / name)
    for git in (["init", "-q"], ["add", "-A"], ["-c", "user.name=test", "-c", "user.email=test@localhost", "commit",
                                                "-q", "-m", "the working tree"]):
        subprocess.run(["git", *git], cwd=folder, check=True, capture_output=True)
    return folder


def test_the_readme_install_keeps_the_readers_keras_and_companion_check_reports_on_it(tmp_path):
    """The README's pip line, its repository replaced by a copy of this clone, in a fresh environment that has Keras
    3.10.0 and the set-up's other packages: pip installs the companion from git and leaves that Keras in place, and
    `companion check` runs the book's checks on it."""
    line = _readme_install_line()
    repository = f"git+{home.read().repository}"
    assert repository in line, line
    if not install.is_installed(READERS_KERAS):
        pytest.skip(f"{READERS_KERAS.label} is not installed (companion variants install --releases)")
    python, purelib, env = _fresh_environment(tmp_path, install.folder(READERS_KERAS), leave_out=("keras",))
    copy = _repository_with_the_working_tree(tmp_path / "repository")
    requirement = re.fullmatch(r'pip install "(.+)"', line)[1].replace(repository, f"git+file://{copy}")
    done = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-index", "--no-build-isolation",
                           requirement], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not list(purelib.glob("keras*")), "pip replaced the reader's Keras"
    done = subprocess.run(["companion", "check"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"Keras {READERS_KERAS.version} on tensorflow "), lines[0]
    # Every Keras 3 release passes fit's True over the base's recorded False (tests/test_check.py, on the pinned one).
    assert lines[2].startswith("Is base(x, training=False) overridden during fit? yes")
    assert check.REMEDY_SOURCE in done.stdout and "def freeze_batch_norm(model):" in done.stdout
