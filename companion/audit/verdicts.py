"""The verdicts: each claim's check in every column of its scope in the one matrix (:mod:`companion.versions.matrix`),
"holds", "fails" or "depends on the version" across the columns where its evidence was measured, what the verdict
supports in words, and the audit's tables and tallies.
"""

from __future__ import annotations

import collections
import dataclasses

from companion.audit.book_claims import BOOK_CLAIMS
from companion.audit.claim import DEPENDS, FAILS, HOLDS, NOT_TESTED, Claim
from companion.audit.prose import as_read
from companion.audit.source_claims import NOT_AUDITED, SOURCE_CLAIMS
from companion.core.columns import Column
from companion.core.tables import FactTable

CLAIMS = SOURCE_CLAIMS + BOOK_CLAIMS
BY_ID = {claim.id: claim for claim in CLAIMS}

# The page whose matrix table has a row for each check, each with an id (``Matrix.table(anchors=True)``): a claim's
# evidence links there, so the matrix is shown once in the book.
EVIDENCE_PAGE = "keras_versions.html"


@dataclasses.dataclass(frozen=True)
class Verdict:
    claim: Claim
    per_column: dict[Column, bool | None]  # the columns of its scope; None: not measured or not tested there

    def columns(self, outcome: bool | None) -> list[Column]:
        """The columns where the claim held (True), failed (False), or was not measured or tested (None)."""
        return [c for c, held in self.per_column.items() if held is outcome]

    @property
    def overall(self) -> str:
        held = {value for value in self.per_column.values() if value is not None}
        if not held:
            return NOT_TESTED
        return HOLDS if held == {True} else FAILS if held == {False} else DEPENDS

    def supported(self, matrix) -> str:
        """What the verdict supports, in words: "holds on every column of its scope", or where it held and failed."""
        parts = [(f"holds in {matrix.in_words(self.columns(True))}" if self.columns(True) else ""),
                 (f"fails in {matrix.in_words(self.columns(False))}" if self.columns(False) else ""),
                 (f"not measured in {matrix.in_words(self.columns(None))}" if self.columns(None) else "")]
        if self.overall == HOLDS and not self.columns(None):
            return f"holds in {self.claim.scope.name}"
        return "; ".join(part for part in parts if part)


def verdicts(matrix, claims: list[Claim] | None = None) -> list[Verdict]:
    """Each claim judged in every column of ``matrix`` within its scope."""
    return [Verdict(claim, {m.column: claim.held(m.values) if m.ran else None
                            for m in matrix.measured if claim.scope(m.column)})
            for claim in (CLAIMS if claims is None else claims)]


def _cell(verdict: Verdict, column: Column) -> str:
    if column not in verdict.per_column:
        return "-"
    held = verdict.per_column[column]
    return "not run" if held is None else HOLDS if held else FAILS


def verdict_table(results: list[Verdict], matrix) -> FactTable:
    """Per claim, its verdict first, then one column per group of Keras columns where every claim's verdict is
    alike ("-": outside the claim's scope); each claim's row can be linked to (``#claim-C12``)."""
    groups: dict[tuple[str, ...], list[Column]] = {}
    for column in matrix.columns:
        groups.setdefault(tuple(_cell(v, column) for v in results), []).append(column)
    header = ["id", "verdict", "said by", *(matrix.in_words(columns, short=True) for columns in groups.values())]
    rows = [[v.claim.id, v.overall, v.claim.attribution, *(key[i] for key in groups)] for i, v in enumerate(results)]
    return FactTable(header, rows, row_ids=[f"claim-{v.claim.id}" for v in results],
                     caption=f"{len(matrix.columns)} columns; those where every claim's verdict is alike share one "
                             f"({matrix.short_names})")


def claims_table(results: list[Verdict], matrix) -> FactTable:
    """Per claim: the statement, the reading tested, what its verdict supports, and its evidence (each check linked
    to its row of the matrix on :data:`EVIDENCE_PAGE`)."""
    rows, links = [], {}
    for i, verdict in enumerate(results):
        claim = verdict.claim
        reading = claim.reading + (f" (Why this reading: {claim.why}.)" if claim.why else "")
        rows.append([claim.id, as_read(claim.quote), reading, verdict.supported(matrix),
                     ", ".join(c.id for c in claim.evidence)])
        links[i, 4] = [(c.id, f"{EVIDENCE_PAGE}#check-{c.id}") for c in claim.evidence]
    return FactTable(["id", "statement", "reading tested", "verdict", "evidence"], rows, links=links)


def not_audited_table() -> FactTable:
    return FactTable(["source", "statement", "why it is not a claim"], [list(row) for row in NOT_AUDITED])


def tally(results: list[Verdict], by_the_book: bool = False) -> dict[str, collections.Counter]:
    """Who said it -> how many of their claims hold, fail, depend on the version (or were not tested): the sources'
    claims, each counted for its author (a quoted author for their own words), or with ``by_the_book`` the
    chapters'."""
    counts: dict[str, collections.Counter] = {}
    for verdict in results:
        if verdict.claim.by_the_book == by_the_book:
            counts.setdefault(verdict.claim.speaker, collections.Counter())[verdict.overall] += 1
    return counts
