"""``companion check``: am I affected? The matrix's column for the Keras and backend installed here, computed in this
process (the checks on real ``keras.applications`` architectures left out, for time), with what it means: whether
``base(x, training=False)`` is overridden here, what reaches the Dropout after the base, when a ``trainable`` change
counts, what to call when serving, the remedy's code, and per kind of model the way to use here
(:mod:`companion.versions.advice`).

It needs nothing of the book: Keras, numpy and the backend Keras uses (only JAX under ``KERAS_BACKEND=jax``), never
matplotlib, tqdm, papermill or a Keras variant of the project. ``python -m companion.versions.check`` does the same as
``companion check``.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from typing import Any

from companion.checks import evidence, fine_tuning, models, registry
from companion.checks.check import Check
from companion.checks.fine_tuning import FLAT
from companion.checks.ways import TRAINING_FALSE, Call
from companion.core.columns import EVERY_COLUMN
from companion.core.tables import FactTable, show
from companion.flags import remedy
from companion.versions import advice, matrix

# The remedy as the reader copies it: the function the checks run, printed from its source.
REMEDY_SOURCE = inspect.getsource(remedy.freeze_batch_norm)
# The wrapper of the InferenceMode(base)(x) call, as the checks build it, printed where the advice names it.
WRAPPER_SOURCE = inspect.getsource(models.inference_mode)


@dataclasses.dataclass(frozen=True)
class Report:
    """The checks' values on this install, and what they mean for fine-tuning here."""

    here: matrix.Measured

    @property
    def values(self) -> dict[Check, Any]:
        return self.here.values

    @property
    def overridden(self) -> bool:
        """``base(x, training=False)`` did not keep the flat base's BatchNormalization statistics during fine-tuning."""
        return self.values[fine_tuning.check(FLAT, TRAINING_FALSE)].fine_tuning.statistics.changed > 0

    @property
    def dropout_after_off(self) -> bool:
        """With ``base(x, training=False)``, the head's Dropout did not drop during ``fit`` (the fixed value reached
        it)."""
        return self.values[fine_tuning.check(FLAT, TRAINING_FALSE)].fine_tuning.dropout_after is False

    def lines(self) -> list[str]:
        v, timing = self.here.versions, self.values[registry.TRAINABLE_TIMING]
        serving = {how: self.values[check] for how, check in registry.SERVING.items()}
        safe = [how for how, found in serving.items()
                if not evidence.unmeasured(found) and not (found.augmented or found.statistics_moved)]
        advised = [advice.advise(self.values, kind, self.here.column)
                   for kind in fine_tuning.KINDS if kind.scope(self.here.column) and kind.scope is EVERY_COLUMN]
        wrapped = any(a.recommended is not None and a.recommended.call is Call.WRAPPED for a in advised)
        return [
            f"Keras {v['keras']} on {v['backend']} {v['backend_version']} (Python {v['python']})",
            "",
            f"Is base(x, training=False) overridden during fit? {show(self.overridden)}: " + (
                "fine-tuning moved the BatchNormalization statistics of a base called with training=False"
                if self.overridden else "the base's BatchNormalization statistics stayed fixed"),
            f"Does training=False reach the Dropout after the base? {show(self.dropout_after_off)}: " + (
                "that Dropout ran in inference mode during fit (it dropped nothing)" if self.dropout_after_off
                else "that Dropout ran in training mode during fit, as it should"),
            "Is trainable = False set after a fit honoured by the next fit without compiling again? "
            f"{show(timing.after_fit)}; after compiling again? {show(timing.after_recompile)}",
            "Does base.trainable = True unfreeze layers frozen one by one? "
            f"{show(self.values[registry.TRAINABLE_AGAIN])}; base.trainable = False, then True? "
            f"{show(self.values[registry.FALSE_THEN_TRUE])}",
            "Serving a model with augmentation inside: " + "; ".join(
                f"{how}: {found}" if evidence.unmeasured(found) else
                f"{how} {'augments' if found.augmented else 'does not augment'}"
                f"{' and moves BN statistics' if found.statistics_moved else ''}" for how, found in serving.items())
            + f". Serve with {' or '.join(safe) or 'none of them'}.",
            "",
            "The remedy: after unfreezing the base, call this on it, then compile:",
            "",
            REMEDY_SOURCE,
            "The way to fine-tune each kind of model here (the remedy, and how to call the base):",
            FactTable(["model", "use"], [[a.kind.name, a.answer] for a in advised]).text(),
            *(["", f"{Call.WRAPPED.value}, as the checks build the wrapper around a base:", "", WRAPPER_SOURCE]
              * wrapped),
            "",
            FactTable(["check", "here"], [[c.question, show(value)] for c, value in self.values.items()]).text(),
        ]

    def text(self) -> str:
        return "\n".join(self.lines())


def rows() -> tuple[Check, ...]:
    """The checks ``companion check`` runs: those of every column (the real architectures are left out)."""
    return tuple(c for c in registry.CHECKS if c.scope is EVERY_COLUMN)


def run(progress: bool = False) -> Report:
    """The checks on this process's Keras and backend (a count on stderr as they run, with ``progress``)."""
    chosen = rows()

    def counted(check: Check, done: int) -> None:
        print(f"\rchecking {done}/{len(chosen)}", end="" if done < len(chosen) else "\n", file=sys.stderr, flush=True)

    return Report(matrix.this_install(chosen, on_each=counted if progress else None))


def main() -> int:
    print(run(progress=True).text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
