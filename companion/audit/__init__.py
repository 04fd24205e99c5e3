"""The claims audit: statements about ``training``, ``trainable``, BatchNormalization and Dropout, each with the reading
tested and a verdict computed per Keras variant. The statements come from the texts the book answers and from the
book's own chapters: the book audits itself.

A claim's ``check`` reads one column of the version matrix (:mod:`companion.versions.matrix`: the typed values measured
under one Keras variant, see :mod:`companion.checks.evidence`) and says whether the claim held there. Across the variants
the verdict is "holds", "fails" or "depends on the version". A check whose evidence does not test the reading on a
variant (e.g. layers meant to run in inference mode that did not) raises :class:`Untested`: that variant then shows
"not tested" and does not count towards the verdict.

Every claim names who said it (``said_by``, when a source quotes someone else) and where it was read (``source``).
Quotes are brief; where the source is a tutorial whose text is not reproduced here, the advice is paraphrased and
marked as such. The statements about the flags that are not audited are listed, each with why (:data:`NOT_AUDITED`).

A chapter refers to one of its own claims with a visible marker next to the sentence: ``[C12](claims_audit.ipynb#claim-C12)``
(:data:`MARKER`). :func:`unsupported_statements` finds the sentences of a chapter's Markdown that state a behaviour
of the flags without a glued number or such a marker; the tests fail on any.
"""

from companion.audit.claim import (
    CHAPTERS,
    DEPENDS,
    FAILS,
    HOLDS,
    NOT_TESTED,
    QUOTED,
    SOURCES,
    Claim,
    Untested,
)
from companion.audit.prose import (
    GLUE,
    MARKER,
    markers,
    sentences,
    states_behaviour,
    unsupported_statements,
)
from companion.audit.source_claims import NOT_AUDITED
from companion.audit.verdicts import (
    BY_ID,
    CLAIMS,
    EVIDENCE_PAGE,
    Verdict,
    not_audited_table,
    tally,
    verdict_table,
    verdicts,
)

__all__ = ["BY_ID", "CHAPTERS", "CLAIMS", "DEPENDS", "EVIDENCE_PAGE", "FAILS", "GLUE", "HOLDS", "MARKER", "NOT_AUDITED",
           "NOT_TESTED", "QUOTED", "SOURCES", "Claim", "Untested", "Verdict", "markers", "not_audited_table", "sentences",
           "states_behaviour", "tally", "unsupported_statements", "verdict_table", "verdicts"]
