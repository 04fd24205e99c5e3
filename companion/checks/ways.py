"""The ways a reader fine-tunes a pretrained base: how the model calls the base, and whether the remedy
(:func:`companion.flags.remedy.freeze_batch_norm`) is applied after unfreezing it. One typed value, :class:`Way`, used
by the checks (each kind of model is fine-tuned each way), the recipes (each tutorial's own way), the experiment, the
advice, and the figures' colours and lines.

Adding a way is one line in :data:`WAYS`: every kind of model of :mod:`companion.checks.fine_tuning` is then
fine-tuned that way in every column of the matrix, and the advice weighs it.
"""

from __future__ import annotations

import dataclasses
import enum


class Call(enum.Enum):
    """How the transfer model calls its base (the value is how the book writes it), the plainest first: the advice
    prefers the calls in this order (:func:`preferred`)."""

    PLAIN = "base(x)"  # the 2019 tutorial
    # A small layer whose own call runs the base with training=False: a functional model passes its training to
    # the wrapper, and the wrapper's explicit value decides for the base (companion.checks.models.InferenceMode).
    WRAPPED = "InferenceMode(base)(x)"
    TRAINING_FALSE = "base(x, training=False)"  # the 2020 tutorials
    TRAINING_NONE = "base(x, training=None)"  # "whatever the model is doing", as Keras documents None

    @property
    def key(self) -> str:
        return self.name.lower()


@dataclasses.dataclass(frozen=True)
class Way:
    """A way of fine-tuning: the call of the base and whether every BatchNormalization layer in it is frozen after
    unfreezing (the remedy); a colour and a line style it keeps on every figure of the book."""

    call: Call
    remedy: bool
    color: str  # matplotlib's cycle of the book's style, "C0" to "C9"
    linestyle: str  # the recommended way solid; the others dashed or dotted, drawn over it

    @property
    def label(self) -> str:
        """``base(x, training=False)``, ``remedy + base(x)``."""
        return f"remedy + {self.call.value}" if self.remedy else self.call.value

    @property
    def key(self) -> str:
        """For files, glue names and check ids: ``training_false``, ``remedy_plain``."""
        return f"remedy_{self.call.key}" if self.remedy else self.call.key

    def __str__(self) -> str:
        return self.label


PLAIN = Way(Call.PLAIN, remedy=False, color="C0", linestyle="--")
TRAINING_FALSE = Way(Call.TRAINING_FALSE, remedy=False, color="C1", linestyle=":")
TRAINING_NONE = Way(Call.TRAINING_NONE, remedy=False, color="C3", linestyle=(0, (1, 3)))
WRAPPED = Way(Call.WRAPPED, remedy=False, color="C8", linestyle=(0, (3, 1, 1, 1)))
REMEDY_TRAINING_FALSE = Way(Call.TRAINING_FALSE, remedy=True, color="C6", linestyle="-.")
REMEDY = Way(Call.PLAIN, remedy=True, color="C2", linestyle="-")
REMEDY_WRAPPED = Way(Call.WRAPPED, remedy=True, color="C9", linestyle=(0, (5, 1)))
# Every way the checks try, in the order of the book's tables.
WAYS = (PLAIN, TRAINING_FALSE, TRAINING_NONE, WRAPPED, REMEDY_TRAINING_FALSE, REMEDY, REMEDY_WRAPPED)


def preferred(ways) -> list[Way]:
    """``ways`` in the order the advice recommends them where several behave as intended: with the remedy first
    (it also keeps gamma and beta, which no call protects), then by the plainest call (:class:`Call`'s order)."""
    return sorted(ways, key=lambda way: (not way.remedy, list(Call).index(way.call)))


def with_remedy(way: Way) -> Way:
    """``way`` with the remedy added: the same call of the base."""
    return next(w for w in WAYS if w.call is way.call and w.remedy)


def by_key(key: str) -> Way:
    """The way whose :attr:`Way.key` is ``key`` (a value read back from JSON)."""
    try:
        return next(way for way in WAYS if way.key == key)
    except StopIteration:
        raise KeyError(f"no way of fine-tuning has the key {key!r}; the ways: "
                       f"{', '.join(way.key for way in WAYS)}") from None
