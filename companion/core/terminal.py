"""What the ``companion`` command shows in a terminal: its own output, not TensorFlow's start-up notices.

TensorFlow's native code writes notices to the process's standard error before its logging is set up (oneDNN,
CPU features, "All log messages before absl::InitializeLog()"), and Jupyter kernels warn that they run over
loopback TCP; the checks, which build many small models on purpose, make TensorFlow warn about retracing. They are
not errors and say nothing about the book. :func:`quiet_notices` filters them out of file
descriptor 2 for the duration of a command, so they also disappear from the kernels and child processes it
starts (which inherit that descriptor); every other line passes through unchanged, as it comes.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import threading
from typing import Iterator

NOTICES = re.compile(
    r"All log messages before absl::InitializeLog\(\) is called"
    r"|oneDNN custom operations are on"
    r"|cpu_feature_guard\.cc"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|To enable the following instructions: .* rebuild TensorFlow"
    r"|Kernel is running over TCP without encryption"
    r"|Unable to register cu(DNN|FFT|BLAS) factory"
    r"|computation placer already registered"
    r"|triggered tf\.function retracing"  # the checks build many small models on purpose
)


def width() -> int:
    """The terminal's width in characters (80 when the output is not a terminal)."""
    return shutil.get_terminal_size((80, 24)).columns


@contextlib.contextmanager
def quiet_notices() -> Iterator[None]:
    """Drop TensorFlow's and Jupyter's start-up notices from standard error (fd 2) within the block."""
    sys.stderr.flush()
    saved = os.dup(2)
    output = os.dup(saved)  # the forwarding thread's own copy, closed by it when the pipe ends
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward() -> None:
        with os.fdopen(read_end, "rb") as pipe, os.fdopen(output, "wb", buffering=0) as terminal:
            for line in iter(pipe.readline, b""):
                if not NOTICES.search(line.decode(errors="replace")):
                    terminal.write(line)

    thread = threading.Thread(target=forward, daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last write end held here; children that still hold it keep it open
        os.close(saved)
        thread.join(timeout=2)
