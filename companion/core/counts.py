"""A count with the noun it counts, as the book's prose shows it: "1 column", "5 columns".

Prose reads ``in {glue:text}`hub_moved` of the {glue:text}`columns``; the noun travels with the number, so a page
never prints "1 columns" and no sentence chooses a plural in Python.
"""

from __future__ import annotations

import dataclasses
import re

# The text of a count as glued onto a page ("5 columns", "1 Keras 3 release"), which the self-audit reads as a number.
TEXT = re.compile(r"\d+ [A-Za-z][\w -]*")


@dataclasses.dataclass(frozen=True)
class Count:
    number: int
    noun: str  # singular: "column", "Keras 3 release"
    plural: str = ""  # when it is not the noun and "s": "batches"

    def __post_init__(self):
        if isinstance(self.number, bool) or not isinstance(self.number, int) or self.number < 0:
            raise ValueError(f"a count is a whole number of at least 0, not {self.number!r} ({self.noun})")

    def __str__(self) -> str:
        noun = self.noun if self.number == 1 else (self.plural or self.noun + "s")
        return f"{self.number} {noun}"

    # myst-nb glues a value's repr as its text: the page shows "5 columns", not Count(number=5, ...).
    __repr__ = __str__

    def __int__(self) -> int:
        return self.number
