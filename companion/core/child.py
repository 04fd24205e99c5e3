"""One way to run code under another Keras: a function of the companion called in a child process whose environment
imports the wanted Keras variant or release (:func:`companion.core.variants.environment`,
:func:`companion.versions.install.environment`).

The caller names the function (``"companion.versions.matrix:measured"``) and its keyword arguments (JSON values);
the child (``python -m companion.core.child``) imports it, calls it, and writes what it returned, as JSON, to a file
the caller reads back: nothing is parsed out of what the child prints. A long function reports progress with
:func:`step`, which advances the caller's ``on_step`` (a progress bar). A child that fails raises
:class:`ChildFailed` with the line that names its error. This module imports only the standard library (and
:mod:`companion.core.timing`, which does too), so that it runs under every Keras release. :func:`two_at_a_time` runs
such calls for many variants or releases.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from companion.core.timing import ACCOUNT_ENV

STEP_LINE = "companion-child-step"


class ChildFailed(RuntimeError):
    """The child process did not return a value: ``reason`` is the line that names its error."""

    def __init__(self, target: str, reason: str, stderr: str):
        super().__init__(f"{target} failed in its child process: {reason}")
        self.reason = reason
        self.stderr = stderr


def last_error_line(stderr: str) -> str:
    """The line of a child's stderr that names its error (an ``...Error:`` line of the traceback), else its last."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    named = [line for line in lines if re.match(r"^[\w.]+(Error|Exception|Exit)\b", line)]
    return (named or lines or ["the child process printed nothing"])[-1]


def call(target: str, env: dict[str, str], timeout: float | None = None, on_step: Callable[[], object] | None = None,
         **arguments):
    """``target(**arguments)`` (``"package.module:function"``) in a child process with environment ``env``; the
    value it returned (JSON: dicts, lists, strings, numbers). Raises :class:`ChildFailed`, also on ``timeout``."""
    # The child's own phases are not the caller's: the caller times the call as a whole (companion.core.timing).
    env = {name: value for name, value in env.items() if name != ACCOUNT_ENV}
    with tempfile.TemporaryDirectory(prefix="companion-child-") as folder:
        given, returned, errors = Path(folder) / "arguments.json", Path(folder) / "returned.json", Path(folder) / "err"
        given.write_text(json.dumps(arguments))
        command = [sys.executable, "-m", "companion.core.child", target, str(given), str(returned)]
        # stderr goes to a file: a child that writes much there cannot block on a full pipe.
        with errors.open("w") as stderr, subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=stderr,
                                                          text=True) as child:
            timer = threading.Timer(timeout, child.kill) if timeout else None
            if timer:
                timer.start()
            try:
                for line in child.stdout:
                    if line.strip() == STEP_LINE and on_step is not None:
                        on_step()
                child.wait()
            finally:
                if timer:
                    timer.cancel()
        err = errors.read_text()
        if child.returncode != 0 or not returned.is_file():
            killed = timer is not None and child.returncode == -9
            reason = f"timed out after {timeout:g} s" if killed else last_error_line(err)
            raise ChildFailed(target, reason, err)
        return json.loads(returned.read_text())


def printed_json(scripts: list[str]) -> list:
    """In the child: run plain scripts (reproducers written to be run as ``python script.py``, each printing one JSON
    line) one after the other in this process, each with globals of its own; for each, the value of its last line,
    or ``{"error": the first line of what it raised}`` (the next script runs all the same)."""
    import contextlib
    import io
    import runpy

    values = []
    for script in scripts:
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                runpy.run_path(script, run_name="__main__")
            lines = printed.getvalue().strip().splitlines()
            if not lines:
                raise ValueError(f"{script} printed nothing")
            values.append(json.loads(lines[-1]))
        except Exception as error:  # a release that lacks an API the script uses: say so in its column
            values.append({"error": f"{type(error).__name__}: {error}".splitlines()[0]})
    return values


def two_at_a_time(function, items: list, desc: str, progress: bool = True) -> list:
    """``function(item)`` for every item, where each call runs its work in child processes: two calls at a time,
    which overlaps the children's start-up (importing TensorFlow, building models) on a 2-core machine. One
    progress bar; the results in the order of ``items``."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(function, item) for item in items]
        if not progress:  # tqdm is imported only to draw a bar: in a notebook it warns when it cannot draw one
            return [future.result() for future in futures]
        from tqdm.auto import tqdm

        with tqdm(total=len(items), desc=desc) as bar:
            for future in futures:
                future.add_done_callback(lambda _: bar.update(1))
            return [future.result() for future in futures]


def step() -> None:
    """In the child: one step of its work is done (the caller's ``on_step`` runs once)."""
    print(STEP_LINE, flush=True)


def main(target: str, given: str, returned: str) -> None:
    module, _, function = target.partition(":")
    value = getattr(importlib.import_module(module), function)(**json.loads(Path(given).read_text()))
    temporary = f"{returned}.partial"
    Path(temporary).write_text(json.dumps(value))
    os.replace(temporary, returned)  # whole or absent: the caller never reads half a value


if __name__ == "__main__":
    main(*sys.argv[1:4])
