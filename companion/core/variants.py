"""Keras variants: which one this process runs, and how to run a check under another one.

The book compares three Keras implementations that all run on TensorFlow 2.21:

- ``keras``: the pinned Keras 3 release installed with the project;
- ``keras-nightly``: a Keras 3 development build, installed with ``--no-deps`` into its own folder and
  put first on ``PYTHONPATH`` so that ``import keras`` finds it;
- ``tf-keras``: the Keras 2 line (``tf_keras``), installed with ``--no-deps`` into its own folder and
  selected with ``TF_USE_LEGACY_KERAS=1``.

Each variant runs in its own process (two Keras packages cannot share one interpreter).
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from pathlib import Path

from companion import PACKAGE
from companion.core import installer

VARIANTS_DIR_ENV = "COMPANION_VARIANTS_DIR"
LEGACY_ENV = "TF_USE_LEGACY_KERAS"


@dataclasses.dataclass(frozen=True)
class Variant:
    name: str
    requirement: str  # what pip installs with --no-deps into the variant's own folder
    legacy: bool  # selected through TF_USE_LEGACY_KERAS=1 (tf_keras) rather than `import keras`
    description: str


VARIANTS = {
    v.name: v
    for v in (
        Variant("keras", "", False, "Keras 3 release pinned by the project"),
        Variant(
            "keras-nightly",
            "keras-nightly==3.16.0.dev2026102704",
            False,
            "Keras 3 development build of the main branch, after PR #23364 (a functional model keeps a training value "
            "written for a layer) and PR #23166 (an augmentation layer's default training stays its own)",
        ),
        Variant("tf-keras", "tf-keras==2.21.0", True, "Keras 2 line, as tf.keras was before TF 2.16"),
    )
}


class UnknownVariantError(ValueError):
    pass


class VariantNotInstalledError(RuntimeError):
    pass


def get(name: str) -> Variant:
    """The variant called ``name``, in any case."""
    try:
        return VARIANTS[name.lower()]
    except KeyError:
        raise UnknownVariantError(
            f"unknown Keras variant {name!r}; valid variants: {', '.join(VARIANTS)}"
        ) from None


def variants_dir() -> Path:
    """Folder holding the side-installed variants: ``$COMPANION_VARIANTS_DIR``; else, when the companion runs from
    a clone, the clone's ``.variants/`` (where ``make setup`` installs them); else a per-user cache."""
    configured = os.environ.get(VARIANTS_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    clone = PACKAGE.parent
    if (clone / "pyproject.toml").is_file():
        return clone / ".variants"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "training-vs-trainable" / "keras-variants"


def install_folder(variant: Variant) -> Path:
    return variants_dir() / variant.name


def installed_in(folder: Path, requirement: str) -> bool:
    """Whether ``pip install --target folder requirement`` (``name==version``) has been done."""
    project, version = requirement.split("==")
    name = f"{project.replace('-', '_')}-{version}"
    # A local build satisfies its version too (PEP 440): torch==2.13.0 is installed as torch-2.13.0+cpu.
    return (folder / f"{name}.dist-info").is_dir() or any(folder.glob(f"{name}+*.dist-info"))


def is_installed(variant: Variant) -> bool:
    return not variant.requirement or installed_in(install_folder(variant), variant.requirement)


def pip_install(folder: Path, requirements: list[str]) -> None:
    """``pip install --no-deps --target folder`` of the ``name==version`` requirements not installed there yet
    (through uv where it is installed: :mod:`companion.core.installer`)."""
    missing = [r for r in requirements if not installed_in(folder, r)]
    if missing:
        folder.mkdir(parents=True, exist_ok=True)
        installer.install(["--quiet", "--no-deps", "--upgrade", "--target", str(folder), *missing])


def pip_install_all(needs: list[tuple[Path, list[str]]], jobs: int = 4) -> None:
    """:func:`pip_install` of every (folder, requirements), the requirements of a folder named twice merged; folders
    ``jobs`` at a time (the time goes to downloading and unpacking wheels, not to resolving: ``--no-deps``)."""
    from concurrent.futures import ThreadPoolExecutor

    merged: dict[Path, list[str]] = {}
    for folder, requirements in needs:
        listed = merged.setdefault(Path(folder), [])
        listed += [r for r in requirements if r not in listed]
    # The folders with the most to install (a backend's: PyTorch, JAX) first, so that they do not finish last.
    largest_first = sorted(merged.items(), key=lambda item: -len(item[1]))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for done in [pool.submit(pip_install, folder, requirements) for folder, requirements in largest_first]:
            done.result()  # a failed pip raises here, after the others have finished


def install(variant: Variant) -> Path:
    """Install a side variant with ``pip --no-deps`` into its own folder (TensorFlow is shared)."""
    folder = install_folder(variant)
    if variant.requirement:
        pip_install(folder, [variant.requirement])
    return folder


def side_folders() -> set[str]:
    """Every folder a side-installed variant lives in (see also :func:`companion.versions.install.folders`)."""
    return {str(install_folder(v)) for v in VARIANTS.values() if v.requirement}


def child_environment(folders: list[Path], legacy: bool, backend: str | None = None,
                      others: set[str] = frozenset()) -> dict[str, str]:
    """Environment for a child process whose imports look in ``folders`` first; ``others`` (folders of other Keras
    installs) are taken off ``PYTHONPATH`` so that they cannot shadow them. ``legacy`` selects tf_keras; ``backend``
    sets ``KERAS_BACKEND`` (else the child inherits this process's)."""
    env = dict(os.environ)
    env.pop(LEGACY_ENV, None)
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in others]
    env["PYTHONPATH"] = os.pathsep.join([*map(str, folders), *paths])
    if legacy:
        env[LEGACY_ENV] = "1"
    if backend:
        env["KERAS_BACKEND"] = backend
    return env


def environment(variant: Variant) -> dict[str, str]:
    """Environment for a child process that must import ``variant`` as its Keras."""
    if not is_installed(variant):
        raise VariantNotInstalledError(
            f"{variant.name} is not installed in {install_folder(variant)}; "
            f"install it with: companion variants install {variant.name}"
        )
    folders = [install_folder(variant)] if variant.requirement else []
    return child_environment(folders, variant.legacy, others=side_folders())


def current_name() -> str:
    """Name of the variant this process runs."""
    if os.environ.get(LEGACY_ENV) == "1":
        return "tf-keras"
    import keras

    return "keras-nightly" if ".dev" in keras.__version__ else "keras"


def keras_home() -> Path:
    """Keras' own folder for downloads (``$KERAS_HOME``, default ``~/.keras``).

    Keras 3 fixes its home when it is imported; ask it rather than re-reading the environment.
    """
    try:
        from keras.src.backend.config import keras_home as configured
    except ImportError:  # tf_keras
        return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()
    return Path(configured()).expanduser()


def load_keras():
    """The Keras module of this process's variant (``tf_keras`` under ``TF_USE_LEGACY_KERAS=1``)."""
    module = "tf_keras" if os.environ.get(LEGACY_ENV) == "1" else "keras"
    return importlib.import_module(module)


def versions() -> dict[str, str]:
    """Versions this process computes with: the 'verified with' stamp of every page."""
    import platform

    import tensorflow as tf

    keras = load_keras()
    return {
        "variant": current_name(),
        "keras": keras.__version__,
        "tensorflow": tf.__version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
    }
