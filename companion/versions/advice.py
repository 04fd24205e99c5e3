"""The advice, computed from the matrix: for each kind of model and each column, the ways of fine-tuning that ran and
behaved as the tutorials intend (:func:`companion.checks.fine_tuning.as_intended`), and the one to use.

Only what ran counts: a way not run in a column (outside its scope, or not among the ways tried on that kind) is "not
measured" there, a column where the kind does not apply (a KerasHub backbone under tf-keras) is left out, and "none"
is the answer only where every way of :data:`companion.checks.ways.WAYS` ran and none behaved as intended. Where
several did, the advice takes the first in the order of :func:`companion.checks.ways.preferred` (the remedy first,
then the plainest call).
"""

from __future__ import annotations

import dataclasses

from companion.checks import evidence, fine_tuning, ways
from companion.checks.fine_tuning import ModelKind
from companion.checks.ways import Way, preferred
from companion.core.columns import Column
from companion.core.tables import FactTable

NONE = "none of the ways"


@dataclasses.dataclass(frozen=True)
class Advice:
    """One kind of model in one column: the ways that behaved as intended, those that did not, those not measured."""

    kind: ModelKind
    column: Column
    intended: tuple[Way, ...]
    not_intended: tuple[Way, ...]
    not_measured: tuple[Way, ...]

    @property
    def applies(self) -> bool:
        """False where every way of the kind is not applicable in the column (left out of the advice)."""
        return bool(self.intended or self.not_intended or self.not_measured)

    @property
    def recommended(self) -> Way | None:
        return preferred(self.intended)[0] if self.intended else None

    @property
    def answer(self) -> str:
        """The way to use; "none of the ways" where every way ran and none behaved as intended; else how many ran and
        how many were not measured."""
        if self.recommended is not None:
            return self.recommended.label
        if not self.not_measured:
            return NONE
        tried = len(self.not_intended)
        return (f"none of the {tried} run; {len(self.not_measured)} not measured" if tried
                else "not measured")


def advise(values: dict, kind: ModelKind, column: Column) -> Advice:
    """The advice for ``kind`` in a column whose values (check -> typed value) are ``values``."""
    tried = {way: values.get(fine_tuning.CHECKS[kind, way], evidence.NotRun("not in this matrix"))
             for way in kind.ways}
    if all(isinstance(value, evidence.NotApplicable) for value in tried.values()):
        return Advice(kind, column, (), (), ())  # the kind does not apply here
    judged = {way: fine_tuning.CHECKS[kind, way].as_documented(value) for way, value in tried.items()}
    # Every way counts, those not tried on this kind as not measured (ways.WAYS read now: a way added there counts).
    return Advice(kind, column, tuple(way for way in ways.WAYS if judged.get(way) is True),
                  tuple(way for way in ways.WAYS if judged.get(way) is False),
                  tuple(way for way in ways.WAYS if judged.get(way) is None))


def advice(matrix, kinds=fine_tuning.KINDS) -> list[Advice]:
    """Every kind in every column of ``matrix`` where it applies."""
    found = [advise(m.values, kind, m.column) for kind in kinds for m in matrix.measured]
    return [a for a in found if a.applies]


def table(matrix, kinds=fine_tuning.KINDS) -> FactTable:
    """Per kind of model, the way to use and the columns where it is the answer (columns with the same answer
    grouped)."""
    rows = []
    for kind in kinds:
        groups: dict[str, list[Column]] = {}
        for a in advice(matrix, [kind]):
            groups.setdefault(a.answer, []).append(a.column)
        rows += [[kind.name, answer, matrix.in_words(columns, short=True)] for answer, columns in groups.items()]
    return FactTable(["model", "use", "where (Keras version and backend)"], rows,
                     caption=f"Keras versions as short names: {matrix.short_names}")


def ways_table(matrix, kind: ModelKind) -> FactTable:
    """For one kind: each way, and the columns where it behaved as intended, did not, or was not measured."""
    found = advice(matrix, [kind])
    rows = [[way.label, *(matrix.in_words((a.column for a in found if way in getattr(a, outcome)), short=True)
                          for outcome in ("intended", "not_intended", "not_measured"))] for way in ways.WAYS]
    return FactTable(["way", "as intended under", "not as intended under", "not measured under"], rows,
                     caption=f"{kind.name}: the ways of fine-tuning it")
