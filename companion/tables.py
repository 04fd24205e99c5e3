"""Fact tables: one value that renders as an HTML table in the book and as fixed-width text for nbval.

Both renderings are deterministic, so a fact cell's committed output is a stable reference.
"""

from __future__ import annotations

import html


class FactTable:
    def __init__(self, header: list[str], rows: list[list[object]], caption: str = ""):
        self.header = [str(h) for h in header]
        self.rows = [[str(cell) for cell in row] for row in rows]
        self.caption = caption

    def column(self, name: str) -> list[str]:
        i = self.header.index(name)
        return [row[i] for row in self.rows]

    def __repr__(self) -> str:
        widths = [max(len(r[i]) for r in [self.header, *self.rows]) for i in range(len(self.header))]
        line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        text = [line(self.header), line(["-" * w for w in widths]), *map(line, self.rows)]
        return "\n".join(([self.caption, ""] if self.caption else []) + text)

    def _repr_html_(self) -> str:
        esc = html.escape
        head = "".join(f"<th>{esc(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in self.rows)
        caption = f"<caption>{esc(self.caption)}</caption>" if self.caption else ""
        return f'<table class="fact-table">{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
