"""``companion check``: am I affected? The decisive checks (:mod:`companion.checks.decisive`) on the Keras and backend
installed here, with the verdict and the remedy for this install.

It needs nothing of the book: this module imports the standard library, numpy and Keras (which imports its
backend, e.g. only JAX under ``KERAS_BACKEND=jax``), never matplotlib, tqdm, papermill or another backend, and
no Keras variant is installed. ``python -m companion.versions.check`` does the same as ``companion check``.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
from typing import Any

from companion.checks import decisive, evidence, questions
from companion.core.tables import FactTable

# The remedy as the reader copies it: the function the checks run, printed from its source.
REMEDY_SOURCE = inspect.getsource(decisive.freeze_batch_norm)


class Call(str, enum.Enum):
    """How the transfer model calls its base."""

    AS_WRITTEN = "base(x, training=False)"
    PLAIN = "base(x)"


# For each call, with the remedy applied: the checks that say what fit updated, whether the Dropout after the base
# dropped, and whether a Dropout inside the base dropped.
REMEDY_CHECKS = {Call.AS_WRITTEN: ("remedy", "remedy_dropout", "remedy_inside_dropout"),
                 Call.PLAIN: ("remedy_alone", "remedy_alone_dropout", "remedy_alone_inside_dropout")}


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
    def needs_recompile(self) -> bool:
        """A ``trainable`` change made after ``compile`` took effect only after recompiling (or ``fit`` failed)."""
        return self.values["recompile"] != evidence.Recompile(without_recompile=False, after_recompile=False)

    @property
    def setter_ignored(self) -> bool:
        """``base.trainable = True`` on a trainable base left the layers frozen one by one frozen."""
        return self.values["trainable_setter"] is False

    def works(self, call: Call, own_dropout: bool) -> bool:
        """With the remedy and ``call``: BN statistics and gamma/beta kept, kernels trained, the Dropout after the
        base dropping, and, for a base with a Dropout of its own, that Dropout in inference mode as the tutorials'
        ``training=False`` means it (it would otherwise drop in both phases)."""
        updates, after, inside = (self.values[check] for check in REMEDY_CHECKS[call])
        return updates == questions.REMEDY_WORKS and after is True and (not own_dropout or inside is False)

    def calls(self, own_dropout: bool) -> list[Call]:
        """The calls that work here with the remedy, for a base without (or with) a Dropout of its own."""
        return [call for call in Call if self.works(call, own_dropout)]

    def advice(self, own_dropout: bool) -> str:
        """Which call to use here, for a base without (or with) a Dropout of its own."""
        calls = self.calls(own_dropout)
        if calls:
            return "call it as " + " or ".join(f"`{call.value}`" for call in calls)
        if own_dropout and self.calls(own_dropout=False):
            return "no tested call keeps that Dropout in inference mode here: with the remedy it drops during fit"
        return "no tested call works here: see the table"

    def unfreezing(self) -> str:
        """Whether ``base.trainable = True`` unfreezes the layers frozen one by one here, and what does if not."""
        if not self.setter_ignored:
            return "yes"
        fix = ("set base.trainable = False, then True, to unfreeze them" if self.values["false_then_true"] is True
               else "neither it nor base.trainable = False, then True, unfroze them here")
        return f"no: the layers frozen one by one stay frozen; {fix}"

    def table(self) -> FactTable:
        return FactTable(["check", "here"], [[c.question, evidence.show(self.values[c.id])] for c in questions.CHECKS])

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
            f"Does base.trainable = True unfreeze layers frozen one by one? {self.unfreezing()}",
            "Does model(x), without training, move BN statistics after a RandomFlip inside the model? "
            f"{answer(self.values['augmented_call'])}",
            "",
            "Remedy on this install: after unfreezing the base, freeze every BatchNormalization layer in it (at any "
            "depth) with this function, then compile:",
            "",
            REMEDY_SOURCE,
            f"A base without a Dropout of its own: {self.advice(own_dropout=False)}.",
            f"A base with its own Dropout (EfficientNet, ConvNeXt): {self.advice(own_dropout=True)}.",
            "",
            repr(self.table()),
        ]
        return "\n".join(lines)


def _shown(calls: list[Call]) -> str:
    return " or ".join(call.value for call in calls) or "none"


def decision_table(verdicts: dict[str, Verdict]) -> FactTable:
    """Which call works with the remedy, for a base without and with a Dropout of its own: one row per distinct
    answer, naming the columns (``verdicts``' keys, e.g. the release matrix's labels) that gave it."""
    groups: dict[tuple, list[str]] = {}
    for label, verdict in verdicts.items():
        groups.setdefault((tuple(verdict.calls(own_dropout=False)), tuple(verdict.calls(own_dropout=True))),
                          []).append(label)
    return FactTable(["Keras", "base without its own Dropout", "base with its own Dropout"],
                     [[evidence.listing(labels), _shown(list(without)), _shown(list(inside))]
                      for (without, inside), labels in groups.items()])


def everywhere(verdicts: dict[str, Verdict], own_dropout: bool) -> list[Call]:
    """The calls that work in every one of ``verdicts`` (none when no single recipe is right everywhere)."""
    return [call for call in Call if all(v.works(call, own_dropout) for v in verdicts.values())]


def run() -> Verdict:
    """Run the decisive checks on this process's Keras and backend."""
    return Verdict(questions.versions(), questions.measure())


def main() -> int:
    print(run().report())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
