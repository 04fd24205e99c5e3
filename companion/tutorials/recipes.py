"""The three tutorials as recipes: typed values holding everything in which they differ.

Each recipe cites the source commit it follows. Known bugs of the originals are recorded (:class:`KnownBug`)
together with the setting as written; a recipe runs *fixed* by default, and :meth:`Recipe.as_written` gives the
original. (The double sigmoid of the 2024 Keras 3 port, tensorflow/docs#2314, belongs to a later revision than
these three: :data:`LATER_BUGS`.)
"Side by side" is then a real diff of two values (:func:`diff_table`). How a recipe fine-tunes (the call of its
base, the remedy) is its :class:`~companion.checks.ways.Way`; the ways a page compares (:func:`ways_compared`) are
the same recipe with another way (:meth:`Recipe.with_way`).
"""

from __future__ import annotations

import dataclasses
import enum

from companion.checks import ways
from companion.checks.ways import Call, Way
from companion.core.tables import FactTable


@dataclasses.dataclass(frozen=True)
class Dataset:
    name: str  # "cats_and_dogs_filtered" (local or downloaded), or a TFDS dataset's name
    splits: tuple[str, str, str]  # how train, validation and test are taken
    tfds: bool = False  # read through TensorFlow Datasets (else the archive's folders)

    def __str__(self) -> str:
        shown = f"tfds:{self.name}" if self.tfds else self.name
        return f"{shown} (train: {self.splits[0]}; validation: {self.splits[1]}; test: {self.splits[2]})"


@dataclasses.dataclass(frozen=True)
class Optimizer:
    name: str  # a keras.optimizers class name
    learning_rate: float | None  # None: the optimizer's default

    def __str__(self) -> str:
        return f"{self.name}({'default rate' if self.learning_rate is None else f'{self.learning_rate:g}'})"


@dataclasses.dataclass(frozen=True)
class Layer:
    """A Keras layer as data: class name and arguments, e.g. ``Layer("RandomRotation", (0.2,))``."""

    name: str
    args: tuple = ()

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(repr, self.args))})"


@dataclasses.dataclass(frozen=True)
class KnownBug:
    id: str
    description: str
    reference: str


class Preprocessing(enum.StrEnum):
    """How a tutorial scales pixels from [0, 255] to [-1, 1] (the value is what its tables show)."""

    SCALE_IN_PIPELINE = "x/127.5 - 1 in the input pipeline"
    PREPROCESS_INPUT = "mobilenet_v2.preprocess_input in the model"
    RESCALING = "Rescaling(1/127.5, offset=-1) in the model"


@dataclasses.dataclass(frozen=True)
class Recipe:
    name: str
    source: str
    architecture: str  # "MobileNetV2" or "Xception"
    dataset: Dataset
    image_size: int
    batch_size: int
    preprocessing: Preprocessing
    augmentation: tuple[Layer, ...]
    model_style: str  # "Sequential" or "functional"
    way: Way  # how it fine-tunes: the call of its base, and whether the remedy is applied
    dropout: float | None  # the head's Dropout rate (None: no Dropout)
    phase1_optimizer: Optimizer
    phase1_epochs: int
    fine_tune_at: int  # layers[:fine_tune_at] of the base stay frozen when fine-tuning (0: the whole base trains)
    phase2_optimizer: Optimizer
    phase2_epochs: int
    published_accuracy: str
    # The published validation accuracies as numbers (after phase 1, after fine-tuning), for the full profile.
    published_validation_accuracy: tuple[float, float]
    # As written by the tutorial; `fixed` replaces each with the correct setting.
    loss_from_logits_as_written: bool = True
    accuracy_threshold_as_written: float = 0.0  # a logit threshold; 0.5 on logits is the 2020-2023 bug
    phase2_overlaps_one_epoch: bool = False  # initial_epoch=history.epoch[-1]
    known_bugs: tuple[KnownBug, ...] = ()
    fixed: bool = True

    def as_written(self) -> Recipe:
        """The recipe with its known bugs, as the tutorial published it."""
        return dataclasses.replace(self, fixed=False)

    @property
    def loss_from_logits(self) -> bool:
        return True if self.fixed else self.loss_from_logits_as_written

    @property
    def accuracy_threshold(self) -> float:
        return 0.0 if self.fixed else self.accuracy_threshold_as_written

    @property
    def phase2_initial_epoch_overlaps(self) -> bool:
        return False if self.fixed else self.phase2_overlaps_one_epoch

    def with_way(self, way: Way) -> Recipe:
        """The recipe fine-tuned ``way`` (a functional model where the 2019 tutorial's ``Sequential`` cannot call its
        base so)."""
        style = self.model_style if way.call is Call.PLAIN else "functional"
        return dataclasses.replace(self, way=way, model_style=style)

    def way_label(self, way: Way) -> str:
        """``way`` as a page about this recipe names it: "as written: base(x, training=False)" for its own."""
        return f"as written: {way.label}" if way == self.way else way.label

    def rows(self) -> list[tuple[str, str]]:
        """(field, value) pairs in a stable order: what a table or a diff shows."""
        head = ["GlobalAveragePooling2D", *([f"Dropout({self.dropout})"] if self.dropout else []), "Dense(1)"]
        return [
            ("source", self.source),
            ("architecture", self.architecture),
            ("dataset", str(self.dataset)),
            ("image size", f"{self.image_size} x {self.image_size}"),
            ("batch size", str(self.batch_size)),
            ("preprocessing", self.preprocessing),
            ("augmentation", ", ".join(map(str, self.augmentation)) or "none"),
            ("model", self.model_style),
            ("base called with", self.way.call.value),
            ("head", " -> ".join(head)),
            ("loss", f"BinaryCrossentropy(from_logits={self.loss_from_logits})"),
            ("accuracy threshold on the logit", f"{self.accuracy_threshold:g}"),
            ("phase 1 (base frozen)", f"{self.phase1_optimizer}, {self.phase1_epochs} epochs"),
            ("fine-tuning", f"layers[:{self.fine_tune_at}] stay frozen" if self.fine_tune_at else "whole base trains"),
            ("BatchNormalization when fine-tuning", "every BN layer set trainable=False" if self.way.remedy
             else "BN layers follow their block's trainable"),
            ("phase 2 (fine-tuning)", f"{self.phase2_optimizer}, {self.phase2_epochs} epochs"
                                      + (", starting one epoch early" if self.phase2_initial_epoch_overlaps else "")),
            ("published accuracy", self.published_accuracy),
            ("known bugs", "; ".join(f"{b.id}: {b.description} ({b.reference})" for b in self.known_bugs) or "none"),
            ("runs", "with known bugs fixed" if self.fixed else "as written"),
        ]


def table(recipe: Recipe) -> FactTable:
    return FactTable(["", recipe.name], [list(row) for row in recipe.rows()])


def diff_table(a: Recipe, b: Recipe, only_differences: bool = False) -> FactTable:
    """Two recipes field by field; the last column marks the fields that differ."""
    rows = [[field, va, vb, "" if va == vb else "differs"]
            for (field, va), (_, vb) in zip(a.rows(), b.rows())
            if not (only_differences and va == vb)]
    return FactTable(["", a.name, b.name, ""], rows)


def differing_fields(a: Recipe, b: Recipe) -> list[str]:
    """The fields (as :meth:`Recipe.rows` names them) in which two recipes differ, in table order."""
    return [field for (field, va), (_, vb) in zip(a.rows(), b.rows()) if va != vb]


LOSS_ON_LOGITS = KnownBug(
    "loss-on-logits", "binary cross-entropy applied to the logits of Dense(1) as if they were probabilities",
    "tensorflow/tensorflow#28718; fixed in tensorflow/docs c289884c with from_logits=True")
EPOCH_OVERLAP = KnownBug(
    "epoch-overlap", "fine-tuning starts at initial_epoch=history.epoch[-1], so one epoch number repeats",
    "tensorflow/docs#2292")
ACCURACY_ON_LOGITS = KnownBug(
    "accuracy-threshold", "accuracy thresholded at 0.5 although the model outputs logits",
    "fixed by tensorflow/docs 51a06aaf (2023) with BinaryAccuracy(threshold=0)")
GUIDE_ACCURACY_ON_LOGITS = KnownBug(
    "accuracy-threshold", "BinaryAccuracy() keeps its default threshold of 0.5 although the model outputs logits",
    "keras-io guides/transfer_learning.py (2020): metrics=[keras.metrics.BinaryAccuracy()] on Dense(1) logits")
DOUBLE_SIGMOID = KnownBug(
    "double-sigmoid", "the Keras 3 port's Dense(1, activation='sigmoid') output was passed through a sigmoid again",
    "tensorflow/docs b6476849 (2024) introduced it, tensorflow/docs#2314 removed it")
# Bugs of later revisions of the tutorials than the three recipes follow: documented, not reproduced.
LATER_BUGS = (DOUBLE_SIGMOID,)

MOBILENET_V2_2019 = Recipe(
    name="MobileNetV2 2019",
    source="tensorflow/docs site/en/tutorials/images/transfer_learning.ipynb @ aa0f9ca9 (2019-11-11)",
    architecture="MobileNetV2",
    dataset=Dataset("cats_vs_dogs", ("train[:80%]", "train[80%:90%]", "train[90%:]"), tfds=True),
    image_size=160,
    batch_size=32,
    preprocessing=Preprocessing.SCALE_IN_PIPELINE,
    augmentation=(),
    model_style="Sequential",
    way=ways.PLAIN,
    dropout=None,
    phase1_optimizer=Optimizer("RMSprop", 1e-4),
    phase1_epochs=10,
    fine_tune_at=100,
    phase2_optimizer=Optimizer("RMSprop", 1e-5),
    phase2_epochs=10,
    published_accuracy="about 96% validation after phase 1, nearly 98% after fine-tuning (tutorial text)",
    published_validation_accuracy=(0.96, 0.98),
    loss_from_logits_as_written=False,
    accuracy_threshold_as_written=0.5,
    phase2_overlaps_one_epoch=True,
    known_bugs=(LOSS_ON_LOGITS, EPOCH_OVERLAP),
)

MOBILENET_V2_2020 = Recipe(
    name="MobileNetV2 2020",
    source="tensorflow/docs site/en/tutorials/images/transfer_learning.ipynb @ adae1941 (2020-08-01)",
    architecture="MobileNetV2",
    dataset=Dataset("cats_and_dogs_filtered",
                    ("train/, 2000 images", "validation/ less the test batches", "first fifth of the validation/ batches")),
    image_size=160,
    batch_size=32,
    preprocessing=Preprocessing.PREPROCESS_INPUT,
    augmentation=(Layer("RandomFlip", ("horizontal",)), Layer("RandomRotation", (0.2,))),
    model_style="functional",
    way=ways.TRAINING_FALSE,
    dropout=0.2,
    phase1_optimizer=Optimizer("Adam", 1e-4),
    phase1_epochs=10,
    fine_tune_at=100,
    phase2_optimizer=Optimizer("RMSprop", 1e-5),
    phase2_epochs=10,
    published_accuracy="94% (later 96%) validation after phase 1, nearly 98% after fine-tuning (tutorial text)",
    published_validation_accuracy=(0.94, 0.98),
    accuracy_threshold_as_written=0.5,
    phase2_overlaps_one_epoch=True,
    known_bugs=(ACCURACY_ON_LOGITS, EPOCH_OVERLAP),
)

XCEPTION_2020 = Recipe(
    name="Xception 2020",
    source="keras-team/keras-io guides/transfer_learning.py (2020-04-15; last tf.keras edit 2020-05-12)",
    architecture="Xception",
    dataset=Dataset("cats_vs_dogs", ("train[:40%]", "train[40%:50%]", "train[50%:60%]"), tfds=True),
    image_size=150,
    batch_size=32,
    preprocessing=Preprocessing.RESCALING,
    augmentation=(Layer("RandomFlip", ("horizontal",)), Layer("RandomRotation", (0.1,))),
    model_style="functional",
    way=ways.TRAINING_FALSE,
    dropout=0.2,
    phase1_optimizer=Optimizer("Adam", None),
    phase1_epochs=20,
    fine_tune_at=0,
    phase2_optimizer=Optimizer("Adam", 1e-5),
    phase2_epochs=10,
    published_accuracy="0.9716 then 0.9789 validation (Rescaling version); 0.9712 then 0.9845 (Normalization version)",
    published_validation_accuracy=(0.9716, 0.9789),
    accuracy_threshold_as_written=0.5,
    known_bugs=(GUIDE_ACCURACY_ON_LOGITS,),
)

RECIPES = {r.name: r for r in (MOBILENET_V2_2019, MOBILENET_V2_2020, XCEPTION_2020)}

# The 2020 MobileNetV2 tutorial's data, which every recipe can be run on for a comparison on the same images.
SHARED_DATASET = MOBILENET_V2_2020.dataset

def ways_compared(recipe: Recipe) -> tuple[Way, ...]:
    """The ways a page fine-tunes ``recipe``, each from the same phase-1 weights: as written; with
    ``base(x, training=False)`` where the recipe does not already call its base so; and as written with the remedy
    added, one change to the tutorial's code."""
    compared = [recipe.way]
    if recipe.way.call is not Call.TRAINING_FALSE:
        compared.append(ways.TRAINING_FALSE)
    return (*compared, ways.with_remedy(recipe.way))


class UnknownRecipeError(ValueError):
    pass


def get(name: str) -> Recipe:
    """The recipe called ``name``, in any case."""
    try:
        return {key.lower(): recipe for key, recipe in RECIPES.items()}[name.lower()]
    except KeyError:
        raise UnknownRecipeError(f"unknown recipe {name!r}; valid recipes: {', '.join(RECIPES)}") from None
