"""``companion check``: am I affected? The decisive checks (:mod:`companion.decisive`) on the Keras and backend
installed here, with the verdict and the remedy for this install.

It needs nothing of the book: this module imports the standard library, numpy and Keras (which imports its
backend, e.g. only JAX under ``KERAS_BACKEND=jax``), never matplotlib, tqdm, papermill or another backend, and
no Keras variant is installed. ``python -m companion.check`` does the same as ``companion check``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from companion import decisive, evidence
from companion.tables import FactTable

REMEDY = ("after unfreezing the base, set `trainable = False` on every BatchNormalization layer in it, then compile:\n"
          "    base.trainable = True\n"
          "    for layer in base.layers:\n"
          "        if isinstance(layer, keras.layers.BatchNormalization):\n"
          "            layer.trainable = False\n"
          "    model.compile(...)")


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The decisive checks' values on this install, and what they mean for fine-tuning here."""

    versions: dict[str, str]
    values: dict[str, Any]  # check id -> typed value

    @property
    def overridden(self) -> bool:
        """``base(x, training=False)`` did not keep the base's BN statistics fixed during ``fit``."""
        return self.values["nested_override"] is True

    @property
    def dropout_leaks(self) -> bool:
        """The fixed ``training=False`` reached the Dropout after the base: it did not drop during ``fit``."""
        return self.values["dropout_leak_fit"] is False

    @property
    def remedy_alone_works(self) -> bool:
        """The remedy with ``base(x)``: statistics and gamma/beta kept, kernels trained, head Dropout dropping."""
        return self.values["remedy_alone"] == decisive.REMEDY_WORKS and self.values["remedy_alone_dropout"] is True

    @property
    def remedy_as_written_works(self) -> bool:
        """The same with the tutorials' ``base(x, training=False)`` kept."""
        return self.values["remedy"] == decisive.REMEDY_WORKS and self.values["remedy_dropout"] is True

    @property
    def needs_recompile(self) -> bool:
        """A ``trainable`` change made after ``compile`` took effect only after recompiling (or ``fit`` failed)."""
        return self.values["recompile"] != evidence.Recompile(without_recompile=False, after_recompile=False)

    def remedy(self) -> str:
        """What to do on this install."""
        if self.remedy_alone_works:
            keep = ("" if not self.remedy_as_written_works else
                    " (keeping `training=False` works here too, but not on every Keras release)")
            return f"call the base as `base(x)`{keep}; {REMEDY}"
        if self.remedy_as_written_works:
            return f"keep `base(x, training=False)`; {REMEDY}"
        return "neither tested remedy kept the statistics fixed while training the kernels here: see the table"

    def table(self) -> FactTable:
        return FactTable(["check", "here"], [[c.question, evidence.show(self.values[c.id])] for c in decisive.CHECKS])

    def report(self) -> str:
        v = self.versions
        answer = evidence.show
        lines = [
            f"Keras {v['keras']} on {v['backend']} {v['backend_version']} (Python {v['python']})",
            "",
            f"Is base(x, training=False) overridden during fit? {answer(self.overridden)}: " + (
                "fit moved the BatchNormalization statistics of a base called with training=False"
                if self.overridden else "the base's BatchNormalization statistics stayed fixed"),
            f"Does training=False leak to the Dropout after the base? {answer(self.dropout_leaks)}: " + (
                "that Dropout ran in inference mode during fit (it dropped nothing)" if self.dropout_leaks
                else "that Dropout ran in training mode during fit, as it should"),
            f"Does a trainable change need a recompile? {answer(self.needs_recompile)}",
            "",
            f"Remedy on this install: {self.remedy()}",
            "",
            repr(self.table()),
        ]
        return "\n".join(lines)


def run() -> Verdict:
    """Run the decisive checks on this process's Keras and backend."""
    return Verdict(decisive.versions(), decisive.measure())


def main() -> int:
    print(run().report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
