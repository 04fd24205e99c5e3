"""Fact tables: one value that renders as an HTML table in the book and as fixed-width text for nbval.

Both renderings are deterministic, so a fact cell's committed output is a stable reference.
"""

from __future__ import annotations

import html


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

    def __repr__(self) -> str:
        widths = [max(len(r[i]) for r in [self.header, *self.rows]) for i in range(len(self.header))]
        line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
        text = [line(self.header), line(["-" * w for w in widths]), *map(line, self.rows)]
        return "\n".join(([self.caption, ""] if self.caption else []) + text)

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
