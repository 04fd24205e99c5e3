"""Fact tables: one value that renders as an HTML table in the book and as fixed-width text for nbval.

Both renderings are deterministic, so a fact cell's committed output is a stable reference. The text is wrapped to
:data:`TEXT_WIDTH` characters in notebooks; the command line wraps it to the terminal's width (:meth:`FactTable.text`).
"""

from __future__ import annotations

import enum
import html
import itertools
import textwrap

TEXT_WIDTH = 116  # characters: a notebook's text output, and the fact outputs nbval compares
NARROWEST_COLUMN = 12  # wrapping never makes a column narrower than this


def show(value) -> str:
    """The text a table shows for ``value``: yes/no for a bool, the value of an enum, the plain text of the rest. The
    companion's one formatter of values."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return str(value)


def listing(items) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    items = [str(item) for item in items]
    return " and ".join(items) if len(items) < 3 else ", ".join(items[:-1]) + " and " + items[-1]


class FactTable:
    def __init__(self, header: list[str], rows: list[list[object]], caption: str = "",
                 row_ids: list[str] | None = None, links: dict[tuple[int, int], list[tuple[str, str]]] | None = None):
        """``row_ids`` give HTML rows an ``id`` to link to; ``links`` maps (row, column) to (text, href) pairs
        that replace that cell in HTML (the text rendering keeps the plain cell)."""
        self.header = [str(h) for h in header]
        self.rows = [[str(cell) for cell in row] for row in rows]
        self.caption = caption
        self.row_ids = row_ids
        self.links = links or {}

    def column(self, name: str) -> list[str]:
        i = self.header.index(name)
        return [row[i] for row in self.rows]

    def text(self, width: int | None = TEXT_WIDTH) -> str:
        """Fixed-width text; cells wrap (widest columns first) so that lines fit ``width``. A table with too many
        columns to fit even so is left unwrapped: wrapping every column would only make it unreadable."""
        rows = [self.header, *self.rows]
        widths = [max(len(r[i]) for r in rows) for i in range(len(self.header))]
        budget = None if width is None else width - 2 * (len(widths) - 1)
        if budget is not None and sum(min(w, NARROWEST_COLUMN) for w in widths) <= budget:
            while sum(widths) > budget:
                widths[widths.index(max(widths))] -= 1

        def lines(cells: list[str]) -> list[str]:
            wrapped = [textwrap.wrap(c, w, break_on_hyphens=False) or [""] for c, w in zip(cells, widths)]
            return ["  ".join(part.ljust(w) for part, w in zip(parts, widths)).rstrip()
                    for parts in itertools.zip_longest(*wrapped, fillvalue="")]

        text = [*lines(self.header), "  ".join("-" * w for w in widths)]
        for row in self.rows:
            text += lines(row)
        caption = textwrap.wrap(self.caption, width) if width else [self.caption]
        return "\n".join(([*caption, ""] if self.caption else []) + text)

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in self.header)
        body = "".join(
            (f'<tr id="{esc(self.row_ids[i])}">' if self.row_ids else "<tr>")
            + "".join(f"<td>{self._html_cell(i, j, c)}</td>" for j, c in enumerate(row)) + "</tr>"
            for i, row in enumerate(self.rows)
        )
        caption = f"<caption>{esc(self.caption)}</caption>" if self.caption else ""
        return f'<table class="fact-table">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    def _html_cell(self, i: int, j: int, text: str) -> str:
        if (i, j) not in self.links:
            return html.escape(text)
        return ", ".join(f'<a href="{html.escape(href)}">{html.escape(label)}</a>' for label, href in self.links[i, j])
