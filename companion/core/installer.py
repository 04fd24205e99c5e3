"""``pip install``, run by uv where uv is installed: the set-up (``make setup``) and ``companion variants install``
install through here. uv unpacks and compiles wheels in parallel, where pip does one file at a time: the set-up's
install of the pinned environment took 37 s through uv against 85 s through pip on 2 CPU cores, with the same 210
packages at the same versions.

uv reads none of pip's configuration, so :func:`uv_command` hands it pip's: the index, extra indexes, find-links
folders, constraint files and certificate bundle that ``pip config list`` shows (files and ``PIP_*`` variables), and
considers every index as pip does. Where uv is not installed, or fails, pip runs the same install. The module
imports only the standard library: the set-up runs it from the clone (``python -m companion.core.installer``) before
the companion is installed.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

# pip's settings that say where packages come from, and uv's option for each (repeated for each value).
PIP_SOURCES = {"index-url": "--index-url", "extra-index-url": "--extra-index-url", "find-links": "--find-links",
               "constraint": "--constraint"}


def pip_settings(listed: str) -> dict[str, list[str]]:
    """pip's settings from the lines ``pip config list`` prints (``global.find-links='/opt/wheels'``,
    ``:env:.find-links='...'``): each key's values (a setting holds several, separated by spaces), those of a
    ``PIP_*`` variable over those of a file, as pip takes them."""
    from_files: dict[str, list[str]] = {}
    from_environment: dict[str, list[str]] = {}
    for line in listed.splitlines():
        name, _, value = line.partition("=")
        scope, _, key = name.rpartition(".")
        if not key or not value:
            continue
        chosen = from_environment if scope == ":env:" else from_files
        chosen[key] = value.strip().strip("'\"").split()
    return {**from_files, **from_environment}


@functools.cache
def pip_settings_here() -> dict[str, list[str]]:
    """This Python's pip settings (:func:`pip_settings` of ``pip config list``), read once per process: the variants'
    install runs one install per folder."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], check=False, capture_output=True,
                            text=True)
    return pip_settings(listed.stdout)


def uv() -> str | None:
    """The uv next to this Python (a virtual environment's), else on ``PATH``; None where there is none."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.is_file() else shutil.which("uv")


def uv_command(executable: str, arguments: list[str], settings: dict[str, list[str]]) -> list[str]:
    """``uv pip install`` for this Python with pip's ``arguments``, compiling bytecode as pip does, and pip's sources
    (``settings``) as options. With ``--require-hashes`` pip's constraint files are left out: every requirement is
    pinned by its hash already, and uv refuses a constraint that is not pinned with ``==`` in that mode (pip's
    ``torch<=2.14.1`` on this project's machines)."""
    skipped = {"constraint"} if "--require-hashes" in arguments else set()
    sources = [part for key, option in PIP_SOURCES.items() if key not in skipped for value in settings.get(key, [])
               for part in (option, value)]
    return [executable, "pip", "install", "--python", sys.executable, "--compile-bytecode",
            "--index-strategy", "unsafe-best-match", *sources, *arguments]


def install(arguments: list[str]) -> None:
    """``pip install arguments`` (no ``--progress-bar``: uv has no such option), through uv where it is installed;
    raises :class:`subprocess.CalledProcessError` when pip fails too."""
    found = uv()
    if found is not None:
        settings = pip_settings_here()
        env = dict(os.environ)
        if settings.get("cert") and "SSL_CERT_FILE" not in env:
            env["SSL_CERT_FILE"] = settings["cert"][0]
        if subprocess.run(uv_command(found, arguments, settings), check=False, env=env).returncode == 0:
            return
        print("uv could not install it; pip tries", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "pip", "install", "--progress-bar", "off", *arguments], check=True)


if __name__ == "__main__":
    try:
        install(sys.argv[1:])
    except subprocess.CalledProcessError as failed:
        sys.exit(failed.returncode)
