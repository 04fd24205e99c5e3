"""A claim of the audit: a statement about the flags, where it was read, the reading tested, the checks it rests on
(objects of :mod:`companion.checks.registry`), the test that says whether it held in one column of the matrix, and
the columns it speaks of (its scope).
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from companion.checks import evidence
from companion.checks.check import Check
from companion.checks.evidence import Training
from companion.core.columns import EVERY_COLUMN, Scope

SOURCES = {
    "SE question": "Data Science Stack Exchange, question 78053 ('what does training=True do?')",
    "SE answer": "Data Science Stack Exchange, the answer to question 78053 (post 78093)",
    "blog": "Blog article 'What effect does training=False have on TensorFlow transfer learning?' (2025-01-30)",
    "Keras FAQ": "Keras FAQ, 'training' argument in call() versus the 'trainable' attribute",
    "MobileNetV2 2020": "TensorFlow tutorial 'Transfer learning and fine-tuning', tensorflow/docs adae1941 (2020)",
    "Xception 2020": "Keras guide 'Transfer learning & fine-tuning', keras-io guides/transfer_learning.py (2020)",
    "Keras 3 guide": "Keras guide 'Transfer learning & fine-tuning' as revised in 2024: the documentation change of "
                     "keras-team/keras PR #20298 and the follow-up commit keras-team/keras 09c133c (2024-09-27, in "
                     "the keras repository's copy of the guide), which says to 'set layer.trainable = False on those "
                     "layers specifically after unfreezing the outer model'; its end-to-end example still says the "
                     "base keeps running in inference mode 'since we passed training=False' (C53). Its text is not "
                     "among the shared sources: quoted from that commit",
}
# Authors a source quotes: their words are claims of theirs, read in the source that quotes them.
QUOTED = {
    "Géron": "Aurélien Géron, 'Hands-On Machine Learning with Scikit-Learn, Keras and TensorFlow'",
    "Keras BN documentation": "Keras documentation of the BatchNormalization layer",
    "d2l.ai": "'Dive into Deep Learning' (d2l.ai)",
}
# The book's chapters: what their Markdown states about the flags is audited like the sources.
CHAPTERS = {
    "introduction": "this book, 'training versus trainable' (introduction)",
    "trainable_versus_training": "this book, chapter '`trainable` versus `training`'",
    "keras3_surprise": "this book, chapter 'The Keras 3 surprise'",
    "keras_versions": "this book, chapter 'Which Keras versions are affected?'",
    "offline_weights": "this book, chapter on the offline weights",
    "mobilenet_v2_2019": "this book, chapter 'MobileNetV2, 2019'",
    "mobilenet_v2_2020": "this book, chapter 'MobileNetV2, 2020'",
    "keras_guide_xception_2020": "this book, chapter 'Xception, 2020'",
    "side_by_side": "this book, chapter 'Side by side'",
    "claims_audit": "this book, chapter 'Claims audit'",
    "summary": "this book, 'In a hurry: the answer on one page'",
    "is_my_model_affected": "this book, chapter 'Is my model affected?'",
    "guard_your_fine_tuning": "this book, chapter 'Guard your own fine-tuning'",
    "upstream_reports": "this book, appendix 'Upstream reports'",
    "how_it_is_verified": "this book, appendix 'How the book is verified'",
    "api": "this book, appendix 'The companion's API'",
}

HOLDS, FAILS, DEPENDS = "holds", "fails", "depends on the version"
NOT_TESTED = "not tested"


class Untested(Exception):
    """Raised by a claim's check whose evidence, in this column, does not test the claim's reading (e.g. layers
    meant to run in inference mode that did not)."""


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str  # "C12": stable, the anchor of its row on the audit page
    source: str  # a key of SOURCES or CHAPTERS: where the statement is read
    quote: str  # brief quote, or a paraphrase in [brackets]; for the book's own claims, the chapter's sentence
    reading: str  # the reading that was tested
    evidence: tuple[Check, ...]  # the checks whose values the claim's check reads
    check: Callable[[dict], bool]  # one column's values (check -> typed value) -> did the claim hold there?
    said_by: str = ""  # a key of QUOTED when the source quotes someone else's words
    why: str = ""  # why this reading, where the statement can be read several ways
    scope: Scope = EVERY_COLUMN  # the columns the statement speaks of: its verdict is computed on those

    @property
    def speaker(self) -> str:
        """Who made the statement: the quoted author, else the source."""
        return self.said_by or self.source

    @property
    def by_the_book(self) -> bool:
        return self.source in CHAPTERS

    @property
    def attribution(self) -> str:
        """"SE answer"; "Géron, quoted in the SE answer"; "this book: keras3_surprise"."""
        if self.by_the_book:
            return f"this book: {self.source}"
        return f"{self.said_by}, quoted in the {self.source}" if self.said_by else self.source

    def held(self, values: dict) -> bool | None:
        """Whether the claim held in a column with these values; None where its evidence was not measured there
        (not run, not applicable, not installed, its scenario raised) or does not test its reading
        (:class:`Untested`). A step that raised inside a value (a field that is Failed) is part of the evidence."""
        if any(evidence.unmeasured(values[c]) for c in self.evidence):
            return None
        try:
            return bool(self.check(values))
        except Untested:
            return None


def all_of(*checks: Callable[[dict], bool]) -> Callable[[dict], bool]:
    return lambda v: all(check(v) for check in checks)


def in_inference_mode(values: dict, check: Check) -> evidence.Phase:
    """The fine-tuning phase of a check whose base's BatchNormalization layers received ``training=False`` (the
    wrapper's call); :class:`Untested` where they did not, so that no verdict rests on layers in training mode."""
    phase = values[check].fine_tuning
    if phase.bn_received is not Training.FALSE:
        raise Untested("the base's layers did not receive training=False")
    return phase
