"""A claim of the audit: a statement about the flags, where it was read, the reading tested, and the check that says
whether it held on one column of the version matrix; the building blocks those checks are made of.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from companion.checks.evidence import Training, Updates

SOURCES = {
    "SE question": "Data Science Stack Exchange, question 78053 ('what does training=True do?')",
    "SE answer": "Data Science Stack Exchange, the answer to question 78053 (post 78093)",
    "blog": "Blog article 'What effect does training=False have on TensorFlow transfer learning?' (2025-01-30)",
    "Keras FAQ": "Keras FAQ, 'training' argument in call() versus the 'trainable' attribute",
    "MobileNetV2 2020": "TensorFlow tutorial 'Transfer learning and fine-tuning', tensorflow/docs adae1941 (2020)",
    "Xception 2020": "Keras guide 'Transfer learning & fine-tuning', keras-io guides/transfer_learning.py (2020)",
    "Keras 3 guide": "Keras guide 'Transfer learning & fine-tuning' as revised in 2024: the documentation change of "
                     "keras-team/keras PR #20298 and a follow-up commit to it in keras-team/keras-io, which brought "
                     "the wording 'set the BatchNormalization layers' trainable = False'; its end-to-end example "
                     "still says the base keeps running in inference mode 'since we passed training=False' (C53). "
                     "Quoted as the project's issues quote it: its text is not among the shared sources",
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
    "upstream_reports": "this book, appendix 'Upstream reports'",
    "how_it_is_verified": "this book, appendix 'How the book is verified'",
}

HOLDS, FAILS, DEPENDS = "holds", "fails", "depends on the version"
NOT_TESTED = "not tested"


class Untested(Exception):
    """Raised by a check whose evidence, on this variant, does not test the claim's reading."""


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str  # "C12": stable, cited by the chapters' markers
    source: str  # a key of SOURCES or CHAPTERS: where the statement is read
    quote: str  # brief quote, or a paraphrase in [brackets]
    reading: str  # the reading that was tested
    evidence: tuple[str, ...]  # matrix row ids the check reads
    check: Callable[[dict], bool]  # one variant's values (row id -> typed value) -> did the claim hold there?
    said_by: str = ""  # a key of QUOTED when the source quotes someone else's words
    why: str = ""  # why this reading, where the statement can be read several ways

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


def equals(row: str, expected) -> Callable[[dict], bool]:
    return lambda v: v[row] == expected


def all_of(*checks: Callable[[dict], bool]) -> Callable[[dict], bool]:
    return lambda v: all(check(v) for check in checks)


def no_bn_moved(row: str) -> Callable[[dict], bool]:
    """An architecture row moved no BN layer's statistics."""
    return lambda v: v[row].bn_moved.none


def some_bn_moved(row: str) -> Callable[[dict], bool]:
    return lambda v: v[row].bn_moved.changed > 0


def all_kernels(row: str) -> Callable[[dict], bool]:
    """An architecture row updated every one of its unfrozen kernels (at least one)."""
    return lambda v: v[row].kernels_updated.all


def has_bn(row: str) -> Callable[[dict], bool]:
    return lambda v: v[row].bn_moved.total > 0


def in_inference_mode(v: dict) -> Updates:
    """What fit updated in a base whose BN received ``training=False`` (the custom-layer route); :class:`Untested`
    where the base did not run in inference mode, so that no verdict rests on layers that were in training mode."""
    if v["inference_mode_received"] is not Training.FALSE:
        raise Untested("the base's layers did not receive training=False")
    return v["inference_mode_updates"]


def not_training_mode(row: str) -> Callable[[dict], bool]:
    """Layers received False or None: not training mode."""
    return lambda v: v[row] in (Training.FALSE, Training.NONE)


