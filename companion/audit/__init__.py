"""The claims audit: statements about ``training``, ``trainable``, BatchNormalization and Dropout, each with the reading
tested and a verdict computed per Keras variant. The statements come from the texts the book answers and from the
book's own chapters: the book audits itself.

A claim's ``check`` reads one column of the matrix (:mod:`companion.versions.matrix`: the typed values measured under
one Keras release or variant on one backend, see :mod:`companion.checks.evidence`) and says whether the claim held
there. Across the columns of its scope the verdict is "holds", "fails" or "depends on the version". A column where
its evidence did not run, or does not test the reading (e.g. layers meant to run in inference mode that did not:
:class:`Untested`), counts neither way.

Every claim names who said it (``said_by``, when a source quotes someone else) and where it was read (``source``).
Quotes are brief; where the source is a tutorial whose text is not reproduced here, the advice is paraphrased and
marked as such. The statements about the flags that are not audited are listed, each with why (:data:`NOT_AUDITED`).

The book's own claims are its chapters' sentences, registered by quotation (:mod:`companion.audit.book_claims`).
:func:`unsupported_statements` finds the sentences of a chapter's Markdown that state a behaviour of the flags and are
neither registered nor backed by a glued number; the tests fail on any.
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
    missing_claims,
    registered_in,
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
    claims_table,
    not_audited_table,
    tally,
    verdict_table,
    verdicts,
)

__all__ = ["BY_ID", "CHAPTERS", "CLAIMS", "Claim", "DEPENDS", "EVIDENCE_PAGE", "FAILS", "GLUE", "HOLDS", "MARKER",
           "NOT_AUDITED", "NOT_TESTED", "QUOTED", "SOURCES", "Untested", "Verdict", "claims_table", "markers",
           "missing_claims", "not_audited_table", "registered_in", "sentences", "states_behaviour", "tally",
           "unsupported_statements", "verdict_table", "verdicts"]
