"""Installing the matrix's columns and running code under one: each Keras release is installed with
``pip install --no-deps --target`` into a folder of its own next to the shared TensorFlow (as
:mod:`companion.core.variants` installs the side variants), JAX and PyTorch (both for CPU) into one folder each, and a
child process (:mod:`companion.core.child`) imports a column's Keras and backend through :func:`environment`.
"""

from __future__ import annotations

import importlib.metadata
import sys
from pathlib import Path

from companion.core import cache, variants
from companion.core.columns import Column, columns

# The other backends, each pip --no-deps into a folder of its own with what it imports that the project does not
# install: JAX for CPU and SciPy; PyTorch (the CPU build where pip finds it, as on this project's machines: 2.13.0+cpu
# satisfies torch==2.13.0) and what `import torch` needs.
JAX_REQUIREMENTS = ("jax==0.10.2", "jaxlib==0.10.2", "scipy==1.17.1")
TORCH_REQUIREMENTS = ("torch==2.13.0", "sympy==1.14.0", "mpmath==1.4.1", "networkx==3.6.1", "filelock==4.3.1")
BACKEND_REQUIREMENTS = {"jax": JAX_REQUIREMENTS, "torch": TORCH_REQUIREMENTS}


def folder(column: Column) -> Path | None:
    """Where the column's Keras is installed: None for the pinned one (the environment's own Keras); the side
    variants' folders for keras-nightly and tf-keras; else a folder of its own."""
    if column.pinned:
        return None
    if column.package != "keras":
        return variants.install_folder(variants.get(column.package))
    return variants.variants_dir() / "releases" / f"{column.package}-{column.version}"


def backend_folder(backend: str) -> Path:
    """Where a backend other than TensorFlow is installed (``jax``, ``torch``)."""
    return variants.variants_dir() / backend


def _needs(column: Column) -> list[tuple[Path, list[str]]]:
    """(folder, requirements) the column needs installed."""
    needs = [] if column.pinned else [(folder(column), [column.requirement])]
    if column.backend in BACKEND_REQUIREMENTS:
        needs.append((backend_folder(column.backend), list(BACKEND_REQUIREMENTS[column.backend])))
    return needs


def is_installed(column: Column) -> bool:
    return all(variants.installed_in(where, r) for where, requirements in _needs(column) for r in requirements)


def install(chosen: list[Column]) -> None:
    """``pip install --no-deps --target`` each column's Keras (and its backend, for a JAX or PyTorch column) into
    its folder, several folders at a time."""
    variants.pip_install_all([need for column in chosen for need in _needs(column)])


def folders() -> set[str]:
    """Every folder a Keras release, a side variant or a backend is installed in."""
    return {str(where) for column in columns() for where, _ in _needs(column)} | variants.side_folders()


def environment(column: Column) -> dict[str, str]:
    """Environment for a child process that imports the column's Keras and backend."""
    if not is_installed(column):
        raise variants.VariantNotInstalledError(
            f"{column.label} is not installed; install it with: companion variants install --releases")
    env = variants.child_environment([where for where, _ in _needs(column)], column.legacy, column.backend,
                                     others=folders())
    if column.backend == "jax":
        for name, value in _jax_compilation_cache().items():
            env.setdefault(name, value)  # a reader's own setting wins
    return env


def _jax_compilation_cache() -> dict[str, str]:
    """JAX's persistent cache of compiled programs, in the companion's cache folder, every program kept (JAX keeps
    only those that took over a second). The checks run eagerly, and JAX compiles each operation at each new shape
    once per process: an EfficientNetB0 check compiled for 110 s on 2 CPU cores, and took 21 s in a second process
    reading the programs the first kept. JAX keys each program by itself, its own version and the device, so the
    columns share them safely."""
    return {"JAX_COMPILATION_CACHE_DIR": str(cache.cache_dir() / "jax-compilation"),
            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}


def _backend_version(backend: str) -> str:
    """The backend's installed version, read from its metadata (no import)."""
    if backend in BACKEND_REQUIREMENTS:
        return ", ".join(BACKEND_REQUIREMENTS[backend])
    for distribution in ("tensorflow", "tensorflow-cpu"):
        try:
            return f"{distribution}=={importlib.metadata.version(distribution)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return "not installed"


def environment_key(column: Column) -> dict:
    """What a result computed under ``column`` depends on besides its own code: the column, its backend's installed
    version and Python's (the key of a kept result, with that code's fingerprint)."""
    return {"column": column.key, "backend": _backend_version(column.backend), "python": sys.version.split()[0]}
