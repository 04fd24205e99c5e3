"""The verdicts: each claim's check on every column of the version matrix, "holds", "fails" or "depends on the
version" across them, the audit's tables and tallies.
"""

from __future__ import annotations

import collections
import dataclasses

from companion.audit.book_claims import BOOK_CLAIMS
from companion.audit.claim import DEPENDS, FAILS, HOLDS, NOT_TESTED, Claim, Untested
from companion.audit.source_claims import NOT_AUDITED, SOURCE_CLAIMS
from companion.core.tables import FactTable
from companion.versions.matrix import Matrix

CLAIMS = SOURCE_CLAIMS + BOOK_CLAIMS

BY_ID = {claim.id: claim for claim in CLAIMS}

# The page whose version matrix has a row for each check, each with an id (``Matrix.table(anchors=True)``): a claim's
# evidence links there, so the matrix is shown once in the book.
EVIDENCE_PAGE = "keras3_surprise.html"


@dataclasses.dataclass(frozen=True)
class Verdict:
    claim: Claim
    per_variant: dict[str, bool | None]  # None: the evidence did not test the reading on that variant

    @property
    def overall(self) -> str:
        held = {value for value in self.per_variant.values() if value is not None}
        if not held:
            return NOT_TESTED
        return HOLDS if held == {True} else FAILS if held == {False} else DEPENDS


def _verdict_on(claim: Claim, values: dict) -> bool | None:
    try:
        return bool(claim.check(values))
    except Untested:
        return None


def verdicts(matrix: Matrix, claims: list[Claim] | None = None) -> list[Verdict]:
    return [Verdict(claim, {name: _verdict_on(claim, column["values"]) for name, column in matrix.columns.items()})
            for claim in (CLAIMS if claims is None else claims)]


def _shown(value: bool | None) -> str:
    return NOT_TESTED if value is None else HOLDS if value else FAILS


def verdict_table(results: list[Verdict], matrix: Matrix) -> FactTable:
    """The audit's fact table; in HTML each claim's evidence links to the matrix rows that computed it (on
    :data:`EVIDENCE_PAGE`), and each claim's row can be linked to (``#claim-C12``)."""
    names = list(matrix.columns)
    header = ["id", "said by", "claim", "reading tested", *map(matrix.label, names), "verdict", "evidence"]
    rows, links = [], {}
    for i, verdict in enumerate(results):
        claim = verdict.claim
        reading = claim.reading + (f" (Why this reading: {claim.why}.)" if claim.why else "")
        rows.append([claim.id, claim.attribution, claim.quote, reading,
                     *(_shown(verdict.per_variant[n]) for n in names), verdict.overall, ", ".join(claim.evidence)])
        links[i, len(header) - 1] = [(row_id, f"{EVIDENCE_PAGE}#evidence-{row_id}") for row_id in claim.evidence]
    return FactTable(header, rows, links=links, row_ids=[f"claim-{v.claim.id}" for v in results])


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
