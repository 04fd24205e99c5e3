"""Where a build's minutes go: the companion times its own phases where they run (building a model, phase 1, the
fine-tuning runs, the validation passes, the experiment, the matrix) and ``companion run`` adds them up per chapter
in its summary (:func:`companion.pages.chapters.run`), so that the build accounts for its own time.

A phase's time is its own: a phase timed inside another (a validation pass during fine-tuning) is subtracted from
the outer one, so a chapter's phases add up to no more than its time; the rest is "other" (imports, tables, figures,
the reader's cells). Times are appended, as JSON lines, to the file named by :data:`ACCOUNT_ENV` (which
``companion run`` sets for the chapter's kernel); where it is not set, timing costs nothing and writes nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path
from typing import Iterator

ACCOUNT_ENV = "COMPANION_TIME_ACCOUNT"

# The phases, in the order a summary lists them, and what each holds.
PHASES = {
    "loading data": "scanning, decoding and checking the images, building the datasets",
    "checking the packaged bases": "the offline weights' checks: their files' hashes, the comparison with Keras' "
                                   "ImageNet weights, a head fitted on each frozen base's features",
    "building models": "building the tutorial's model around its pretrained base (weights read from the cache)",
    "phase 1": "phase 1's fit, the head trained on the frozen base (with fit's validation at each epoch), on the "
               "tutorial pages and for the experiment's shorter phase 1",
    "fine-tuning": "the fine-tuning fits of the tutorial pages (tracing their training step included)",
    "accuracy passes": "validation and test accuracy measured outside fit: before and after each phase, and after "
                       "the early batches of fine-tuning",
    "experiment": "the paired experiment's fine-tuning runs, in child processes, one per Keras variant",
    "matrix": "the matrix's columns, each in a child process (or waiting for the process that computes them)",
}
_open: list[float] = []  # for each phase being timed, the time its inner phases took so far


@contextlib.contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the block as ``name`` (a key of :data:`PHASES`), less the phases timed inside it."""
    if name not in PHASES:
        raise ValueError(f"unknown phase {name!r}; phases: {', '.join(PHASES)}")
    started = time.perf_counter()
    _open.append(0.0)
    try:
        yield
    finally:
        inner = _open.pop()
        took = time.perf_counter() - started
        if _open:
            _open[-1] += took
        _record(name, took - inner)


def _record(name: str, seconds: float) -> None:
    path = os.environ.get(ACCOUNT_ENV)
    if path:
        with open(path, "a") as file:
            file.write(json.dumps({"phase": name, "seconds": round(seconds, 3)}) + "\n")


def account(path: Path, total: float) -> dict[str, float]:
    """The phases recorded in ``path`` added up (seconds, one decimal), in :data:`PHASES` order, and "other": the
    rest of ``total``, the chapter's time."""
    found = dict.fromkeys(PHASES, 0.0)
    if path.is_file():
        for line in path.read_text().splitlines():
            entry = json.loads(line)
            found[entry["phase"]] += entry["seconds"]
    timed = {name: round(seconds, 1) for name, seconds in found.items() if round(seconds, 1) > 0}
    return {**timed, "other": round(max(total - sum(found.values()), 0.0), 1)}
