"""What the reader's guard (:mod:`companion.versions.guard`) costs: the same epoch of ``fit``, compiled afresh each
time (so that each traces its step, as a reader's first epoch after ``compile`` does), with and without the guard,
in alternating pairs; the ratio of the medians, with the spread of the pairs' ratios.

A benchmark, not a test: a ratio measured in one run on one machine, stated with its spread.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Callable

from companion.core.tables import FactTable
from companion.versions import guard


@dataclasses.dataclass(frozen=True)
class Overhead:
    """Seconds per epoch without and with the guard, one pair per repeat."""

    without: tuple[float, ...]
    with_guard: tuple[float, ...]
    batches: int

    @property
    def ratio(self) -> float:
        """Median epoch with the guard over median epoch without."""
        return statistics.median(self.with_guard) / statistics.median(self.without)

    @property
    def pair_ratios(self) -> list[float]:
        return [w / o for w, o in zip(self.with_guard, self.without)]

    def table(self) -> FactTable:
        ratios = self.pair_ratios
        return FactTable(
            ["one epoch of fit", "seconds (median)", "per pair"],
            [["without the guard", f"{statistics.median(self.without):.2f}", ", ".join(f"{s:.2f}" for s in self.without)],
             ["with the guard", f"{statistics.median(self.with_guard):.2f}",
              ", ".join(f"{s:.2f}" for s in self.with_guard)],
             ["with / without", f"{self.ratio:.3f}", f"{min(ratios):.3f} to {max(ratios):.3f}"]],
            caption=f"{len(self.without)} pairs, alternating, each epoch {self.batches} batches and compiled afresh")


def measure(model, compile_model: Callable[[], None], dataset, batches: int, pairs: int = 3) -> Overhead:
    """``pairs`` alternating epochs of ``model.fit(dataset)`` (its first ``batches`` batches) without and with the
    guard (warning, not raising, so that every epoch runs to its end); ``compile_model()`` compiles ``model`` before
    each. The weights are put back after each epoch, so that every epoch starts from the same ones."""
    weights = model.get_weights()
    data = dataset.take(batches)
    seconds: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(pairs):
        for guarded in (False, True):
            compile_model()
            callbacks = [guard.callback(on_mismatch="warn", fix=False)] if guarded else []
            start = time.perf_counter()
            model.fit(data, epochs=1, verbose=0, callbacks=callbacks)
            seconds[guarded].append(time.perf_counter() - start)
            model.set_weights(weights)
    return Overhead(tuple(seconds[False]), tuple(seconds[True]), batches)
