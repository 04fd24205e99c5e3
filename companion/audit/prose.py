"""The book audits itself: every sentence of a chapter that states a behaviour of the flags is either one of the book's
claims, registered by quotation (:mod:`companion.audit.book_claims`: its verdict is computed in every column of its
scope), or backed by a glued number (a computed count, fraction, accuracy). :func:`unsupported_statements` finds the
others; the tests fail on any. A glued word ("moved", "honoured") is not support: it says what the sentence says
without the count behind it. A chapter may also link a claim (:data:`MARKER`) where a reader benefits from it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from companion.core import counts

# The marker a chapter puts next to a sentence that states a behaviour of the flags: a link to the audit page whose
# text is the claim's id.
MARKER = re.compile(r"\[(C\d+)\]\(claims_audit\.ipynb#claim-\1\)")
GLUE = re.compile(r"\{glue:(?:text|md|any)\}`([^`:]+)(?::[^`]*)?`")  # group 1: the glued value's name

# A sentence is about the flags when it names one of them, or a mode, or the layers whose behaviour they decide ...
_FLAGS = re.compile(r"training=|`training`|training mode|inference mode|trainable|BatchNormalization|\bBN\b|Dropout"
                    r"|moving (?:statistics|mean|variance)|gamma|`beta`")
# ... and it states a behaviour when it says what they do (a verb of what happened or happens to layers or weights).
_BEHAVIOUR = re.compile(
    r"\b(?:protect(?:s|ed)?|update[sd]?|mov(?:e|es|ed)|drop(?:s|ped|ping)?|normali[sz](?:e|es|ed|ing)|"
    r"receiv(?:e|es|ed)|overrid(?:e|es|den)|leak(?:s|ed)?|reach(?:es|ed)?|ignor(?:e|es|ed)|keeps?|kept|"
    r"stay(?:s|ed)?|freezes|empties|defaults?|decides?|applies|disables?|pass(?:es|ed)|runs? in|ran in|"
    r"works|worked|fails|failed|does nothing|has no effect|no longer|turns? off|"
    r"stops?|stopped|matters?)\b", re.IGNORECASE)
_LITERAL = re.compile(r"``.+?``", re.DOTALL)  # a double-backtick code span: a marker shown, not cited
_QUOTED = re.compile(r"\u201c[^\u201d]*\u201d|\"[^\"\n]*\"")
_FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.MULTILINE | re.DOTALL)


def sentences(markdown: str) -> list[str]:
    """The Markdown's prose as sentences (list items, headings and table rows separately; code blocks, directives
    and comment lines left out)."""
    text = _LITERAL.sub("", _FENCE.sub("\n\n", markdown))
    units = []
    for block in re.split(r"\n\s*\n|\n(?=\s*(?:[-*+] |\d+\. |#|\|))", text):
        block = " ".join(line.strip() for line in block.splitlines() if not line.lstrip().startswith("%"))
        units += [s for s in re.split(r"(?:(?<=[.;!?])|(?<=[.;!?]\*\*))\s+(?=[A-Z`{(\[*])", block) if s.strip()]
    return units


def states_behaviour(sentence: str) -> bool:
    """Does the sentence state something the flags do (rather than quote someone, ask, describe a setup, or introduce
    the output below it)? A heuristic: it names a flag, a mode, or BatchNormalization/Dropout, and a verb of what they
    do (protect, update, move, drop, normalise, receive, override, leak, keep, pass...)."""
    plain = _QUOTED.sub("", sentence).strip()
    if "?" in plain or re.search(r"\bwhether\b", plain, re.IGNORECASE):
        return False  # a question
    if plain.endswith(":"):
        return False  # it introduces the computed output below it
    return bool(_FLAGS.search(plain) and _BEHAVIOUR.search(plain))


def _is_number(value) -> bool:
    """A number, or the text of one (a value glued already formatted, as "0.912"), or a count with its noun
    (:class:`companion.core.counts.Count`, glued as "5 columns")."""
    if isinstance(value, counts.Count):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return bool(counts.TEXT.fullmatch(value))
        return True
    return isinstance(value, (int, float)) and not isinstance(value, bool)


_ROLE = re.compile(r"\{[\w:]+\}`([^`<]*?)\s*(?:<([^>`]*)>)?`")  # {ref}`the matrix <matrix-errors>`, {doc}`summary`


def as_read(text: str) -> str:
    """A chapter's sentence as a reader sees it on the page, for a table cell: its MyST roles as their text."""
    return _ROLE.sub(lambda m: m.group(1) or m.group(2) or "", text)


def normalised(text: str) -> str:
    """``text`` as a registered sentence is compared: without claim links, its whitespace runs made single spaces."""
    text = re.sub(r"^\s*(?:[-*+]|\d+\.)\s+", "", MARKER.sub("", text))  # a list item's marker is not its text
    return " ".join(text.split()).replace(" ()", "").replace(" .", ".")


def unsupported_statements(markdown: str, glued: Mapping[str, object], registered: Iterable[str] = ()) -> list[str]:
    """The sentences that state a behaviour of the flags and are neither ``registered`` (the chapter's claims' quotes)
    nor backed by a glued number, nor a report of a claim they link (a source's statement, quoted with its claim);
    ``glued`` is the executed chapter's glued values by name (:func:`companion.pages.chapters.glued_values`)."""
    quotes = {normalised(quote) for quote in registered}

    def supported(sentence: str) -> bool:
        return (normalised(sentence) in quotes or bool(MARKER.search(sentence))
                or any(_is_number(glued.get(name)) for name in GLUE.findall(sentence)))
    return [s for s in sentences(markdown) if states_behaviour(s) and not supported(s)]


def registered_in(markdown: str, quote: str) -> bool:
    """Whether ``quote`` is one of the Markdown's sentences, word for word (whitespace and claim links aside)."""
    return normalised(quote) in {normalised(sentence) for sentence in sentences(markdown)}


def missing_claims(chapter: str, markdown: str, claims) -> list:
    """The claims of ``chapter`` whose sentence is no longer one of its Markdown's sentences."""
    return [claim for claim in claims if claim.source == chapter and not registered_in(markdown, claim.quote)]


def markers(markdown: str) -> list[str]:
    """The claim ids the Markdown's markers cite."""
    return MARKER.findall(_LITERAL.sub("", _FENCE.sub("", markdown)))

