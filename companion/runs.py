"""Training runs: one runner trains any recipe under any profile.

A run follows the tutorials: phase 1 trains the head on the frozen base; phase 2 unfreezes the base (all but
``layers[:fine_tune_at]``) and fine-tunes with a lower learning rate. Phase 2 runs once per fine-tuning variant of
the book's experiment (:func:`companion.recipes.fine_tuning_variants`), each starting from the same phase-1
weights, and records after every epoch how far each BatchNormalization layer's moving statistics have moved.

What a recipe becomes under a profile is a :class:`Setup`:

- ``full``: the recipe's own dataset, image size and epochs, with ImageNet weights (Keras' cache or download);
- ``smoke``: the shared ``cats_and_dogs_filtered`` subset, a few epochs, and the offline **stand-in** backbone
  (:mod:`companion.standin`) in place of the recipe's architecture. Pages say so with :attr:`Setup.label`.

With a checkpoint folder (:func:`checkpoint_dir`), each phase's weights and results are written as soon as they
exist, and a later run with the same settings, versions and code resumes from them instead of training again
(:mod:`companion.cache`); the result lists what was resumed.

:func:`probe_recipe_fine_tuning` is the other half of the tutorial chapters: the recipe's model on the real
MobileNetV2 or Xception architecture (random weights) and real images, a few ``fit`` steps per variant, and what
changed (:mod:`companion.facts`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path

import numpy as np

from companion import backbones, cache, data, facts, probes, recipes, standin
from companion.profiles import Profile
from companion.recipes import Recipe
from companion.tables import FactTable
from companion.variants import load_keras, versions

# --- What a recipe becomes under a profile ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Setup:
    recipe: Recipe
    profile: str
    backbone: str  # "imagenet" or "standin"
    architecture: str  # of the backbone actually used
    image_size: int
    dataset: recipes.Dataset
    images_per_class: int | None  # of cats_and_dogs_filtered; None: all
    phase1_epochs: int
    phase2_epochs: int

    @property
    def label(self) -> str | None:
        """The warning every page that shows this run's accuracies must carry (None for ImageNet weights)."""
        if self.backbone != "standin":
            return None
        substitute = ("" if self.recipe.architecture == "MobileNetV2"
                      else f" It stands in for the recipe's {self.recipe.architecture}.")
        return f"{standin.LABEL}{substitute}"

    def rows(self) -> list[tuple[str, str]]:
        subset = "all images" if self.images_per_class is None else f"{self.images_per_class} images per class and split"
        data_text = str(self.dataset) + ("" if self.dataset.name.startswith("tfds:") else f", {subset}")
        return [("profile", self.profile), ("data", data_text),
                ("backbone", f"{self.architecture}, " + ("ImageNet weights" if self.backbone == "imagenet"
                                                        else "offline stand-in (not ImageNet)")),
                ("image size", f"{self.image_size} x {self.image_size}"),
                ("epochs", f"{self.phase1_epochs} + {self.phase2_epochs}")]


def setup(recipe: Recipe, profile: Profile, dataset: recipes.Dataset | None = None) -> Setup:
    """What ``recipe`` runs as under ``profile`` (on ``dataset`` instead of the profile's choice, if given)."""
    phase1, phase2 = profile.epochs or (recipe.phase1_epochs, recipe.phase2_epochs)
    dataset = dataset or (recipe.dataset if profile.recipe_data else recipes.SHARED_DATASET)
    if profile.backbone == "standin":
        config = standin.record()["config"]
        architecture, size = "MobileNetV2", config["image_size"]
    else:
        architecture, size = recipe.architecture, recipe.image_size
    return Setup(recipe, profile.name, profile.backbone, architecture, size, dataset, profile.images_per_class,
                 phase1, phase2)


def load_backbone(s: Setup):
    """A fresh copy of the setup's pretrained backbone."""
    if s.backbone == "standin":
        return standin.load(standin.SHIPPED)[0]
    return backbones.imagenet(s.architecture, s.image_size)


# --- The recipe's model -----------------------------------------------------------------------------------------


@dataclasses.dataclass
class TransferModel:
    model: object
    base: object
    head: object  # the Dense(1) layer


def build_model(recipe: Recipe, base, image_size: int) -> TransferModel:
    """The tutorial's model around ``base``: augmentation, scaling, the base (called as the recipe says), head."""
    keras = load_keras()
    dense = keras.layers.Dense(1, name="head_dense")
    if recipe.model_style == "Sequential":
        if recipe.augmentation or recipe.preprocessing != recipes.SCALE_IN_PIPELINE or recipe.base_training is not None:
            raise ValueError(f"{recipe.name}: a Sequential model takes scaled images and calls the base without "
                             "a training argument; make the recipe functional")
        layers = [keras.Input((image_size, image_size, 3)), base, keras.layers.GlobalAveragePooling2D(name="head_pool")]
        layers += [keras.layers.Dropout(recipe.dropout, name="head_dropout")] if recipe.dropout else []
        return TransferModel(keras.Sequential([*layers, dense], name="tutorial"), base, dense)
    inputs = keras.Input((image_size, image_size, 3))
    x = inputs
    for layer in recipe.augmentation:
        x = getattr(keras.layers, layer.name)(*layer.args)(x)
    if recipe.preprocessing == recipes.PREPROCESS_INPUT:
        x = keras.applications.mobilenet_v2.preprocess_input(x)
    elif recipe.preprocessing == recipes.RESCALING:
        x = keras.layers.Rescaling(1 / 127.5, offset=-1)(x)
    x = base(x) if recipe.base_training is None else base(x, training=recipe.base_training)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    if recipe.dropout:
        x = keras.layers.Dropout(recipe.dropout, name="head_dropout")(x)
    return TransferModel(keras.Model(inputs, dense(x), name="tutorial"), base, dense)


def scalings(images: np.ndarray) -> dict[str, np.ndarray]:
    """The three tutorials' ways of scaling pixels, applied to the same ``images`` (float32 in [0, 255])."""
    keras = load_keras()
    return {
        recipes.SCALE_IN_PIPELINE: images / 127.5 - 1.0,
        recipes.PREPROCESS_INPUT: np.asarray(keras.applications.mobilenet_v2.preprocess_input(images.copy())),
        recipes.RESCALING: np.asarray(keras.layers.Rescaling(1 / 127.5, offset=-1)(images)),
    }


def scale_in_pipeline(recipe: Recipe, images):
    """The 2019 recipe scales pixels in the input pipeline; the others leave it to the model."""
    return images / 127.5 - 1.0 if recipe.preprocessing == recipes.SCALE_IN_PIPELINE else images


def unfreeze_for_fine_tuning(recipe: Recipe, base) -> None:
    """The recipe's phase-2 step: unfreeze, refreeze ``layers[:fine_tune_at]``, and the remedy if it has it."""
    facts.unfreeze(base, recipe.fine_tune_at)
    if recipe.freeze_batch_norm:
        facts.freeze_batch_norm(base)


def compile_phase(recipe: Recipe, model, optimizer: recipes.Optimizer) -> None:
    keras = load_keras()
    arguments = {} if optimizer.learning_rate is None else {"learning_rate": optimizer.learning_rate}
    model.compile(
        optimizer=getattr(keras.optimizers, optimizer.name)(**arguments),
        loss=keras.losses.BinaryCrossentropy(from_logits=recipe.loss_from_logits),
        metrics=[keras.metrics.BinaryAccuracy(threshold=recipe.accuracy_threshold, name="accuracy")],
    )


# --- Data -------------------------------------------------------------------------------------------------------


def load_data(s: Setup, batch_size: int, seed: int):
    """``(train, validation, test, report)``: the setup's datasets, scaled in the pipeline where the recipe does
    so, and what the scan of the image files found (skipped and converted files are named in it)."""
    size = (s.image_size, s.image_size)
    if s.dataset.name.startswith("tfds:"):
        train, validation, test = (
            data.load_tfds_cats_vs_dogs(split, size, batch_size, shuffle=(i == 0), seed=seed)
            for i, split in enumerate(s.dataset.splits))
        report = "TFDS cats_vs_dogs: TFDS leaves out the archive's corrupt JPEGs itself when preparing the data"
    else:
        splits = data.load_splits(size, batch_size, seed, limit_per_class=s.images_per_class)
        train, validation, test, report = splits.train, splits.validation, splits.test, splits.report.summary()
    scaled = (d.map(lambda x, y: (scale_in_pipeline(s.recipe, x), y)) for d in (train, validation, test))
    return (*scaled, report)


# --- Results ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class History:
    epochs: list[int]  # 1-based, as Keras' progress bar counts them
    metrics: dict[str, list[float]]  # loss, accuracy, val_loss, val_accuracy

    @classmethod
    def of(cls, keras_history) -> History:
        return cls([e + 1 for e in keras_history.epoch],
                   {k: [float(v) for v in values] for k, values in keras_history.history.items()})


@dataclasses.dataclass
class FineTuneResult:
    variant: str
    base_called_with: str
    bn_layers_trainable: int  # BN layers of the base left trainable during fine-tuning
    history: History
    bn_layers: list[str]
    # After each fine-tuning epoch, per BN layer of the base: the largest absolute change of its moving mean
    # (and variance) since fine-tuning started.
    bn_mean_drift: list[list[float]]
    bn_variance_drift: list[list[float]]
    validation_accuracy: float
    test_accuracy: float
    seconds: float

    @property
    def bn_layers_moved(self) -> int:
        """BN layers whose moving mean or variance changed at all during fine-tuning."""
        final = zip(self.bn_mean_drift[-1], self.bn_variance_drift[-1])
        return sum(1 for mean, variance in final if mean > 0 or variance > 0)

    @property
    def largest_mean_drift(self) -> float:
        return max(self.bn_mean_drift[-1], default=0.0)


@dataclasses.dataclass
class RunResult:
    setup: dict  # Setup.rows() as a dict, for the page
    label: str | None
    phase1: History
    validation_accuracy_initial: float  # before any training, as the tutorials print it
    validation_accuracy_phase1: float
    test_accuracy_phase1: float
    phase1_seconds: float
    fine_tuning: dict[str, FineTuneResult]
    versions: dict
    resumed: list[str]  # what was read from checkpoints instead of trained
    data_report: str  # what the scan of the image files found: files skipped or converted, by name

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> RunResult:
        raw = json.loads(text)
        raw["phase1"] = History(**raw["phase1"])
        raw["fine_tuning"] = {k: _fine_tune_result(v) for k, v in raw["fine_tuning"].items()}
        return cls(**raw)


def _fine_tune_result(raw: dict) -> FineTuneResult:
    return FineTuneResult(**{**raw, "history": History(**raw["history"])})


class BatchNormDrift:
    """Snapshots of BN moving statistics: call :meth:`record` after each epoch (a Keras callback does)."""

    def __init__(self, base):
        self.layers = [layer for layer in probes.iter_layers(base) if probes.is_batch_norm(layer)]
        self.start = self._snapshot()
        self.mean: list[list[float]] = []
        self.variance: list[list[float]] = []

    def _snapshot(self):
        return [(np.array(layer.moving_mean.numpy()), np.array(layer.moving_variance.numpy())) for layer in self.layers]

    def record(self) -> None:
        now = self._snapshot()
        self.mean.append([float(np.max(np.abs(m - m0))) for (m, _), (m0, _) in zip(now, self.start)])
        self.variance.append([float(np.max(np.abs(v - v0))) for (_, v), (_, v0) in zip(now, self.start)])

    def callback(self):
        drift = self

        class Record(load_keras().callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                drift.record()

        return Record()


# --- The runner -------------------------------------------------------------------------------------------------


def checkpoint_dir(s: Setup, seed: int) -> Path:
    """Where the chapters keep this setup's phases: the cache folder / runs / recipe / profile-seed-data."""
    slug = lambda text: "".join(c if c.isalnum() else "-" for c in text.lower())  # noqa: E731
    return cache.cache_dir() / "runs" / slug(s.recipe.name) / f"{s.profile}-seed{seed}-{slug(s.dataset.name)}"


def run(s: Setup, seed: int = 0, batch_size: int | None = None, checkpoints: Path | None = None,
        variants: dict[str, Recipe] | None = None, verbose="auto") -> RunResult:
    """Train the setup's recipe: phase 1 once, then phase 2 for each fine-tuning variant from the phase-1 weights.

    ``variants`` defaults to :func:`companion.recipes.fine_tuning_variants`. With ``checkpoints`` (a folder),
    finished phases are saved and reused by a later call with the same settings and code.
    """
    keras = load_keras()
    recipe = s.recipe
    batch_size = batch_size or recipe.batch_size
    variants = variants or recipes.fine_tuning_variants(recipe)
    saved = None if checkpoints is None else cache.Folder(Path(checkpoints), {
        "setup": repr(s), "variants": repr(variants), "seed": seed, "batch_size": batch_size,
        "versions": versions(), "backbone": _backbone_fingerprint(s)})
    train, validation, test, report = load_data(s, batch_size, seed)
    resumed = []

    keras.utils.set_random_seed(seed)
    first = build_model(recipe, load_backbone(s), s.image_size)
    first.base.trainable = False
    compile_phase(recipe, first.model, recipe.phase1_optimizer)
    if saved and saved.has("phase1.weights.h5", "phase1.json"):
        first.model.optimizer.build(first.model.trainable_variables)  # the file holds its state too
        first.model.load_weights(saved.file("phase1.weights.h5"))
        phase1 = json.loads(saved.file("phase1.json").read_text())
        resumed.append("phase 1")
    else:
        started = time.perf_counter()
        initial = first.model.evaluate(validation, verbose=0, return_dict=True)["accuracy"]
        history = first.model.fit(train, epochs=s.phase1_epochs, validation_data=validation, shuffle=False,
                                  verbose=verbose)
        phase1 = {"history": dataclasses.asdict(History.of(history)), "initial": float(initial),
                  "validation": _accuracy(first.model, validation), "test": _accuracy(first.model, test),
                  "seconds": time.perf_counter() - started}
        if saved:
            first.model.save_weights(saved.file("phase1.weights.h5"))
            saved.file("phase1.json").write_text(json.dumps(phase1))

    results = {}
    for name, variant in variants.items():
        file = f"finetune-{hashlib.sha256(name.encode()).hexdigest()[:8]}.json"
        if saved and saved.has(file):
            results[name] = _fine_tune_result(json.loads(saved.file(file).read_text()))
            resumed.append(name)
            continue
        results[name] = fine_tune(s, variant, name, first, train, validation, test, seed, verbose)
        if saved:
            saved.file(file).write_text(json.dumps(dataclasses.asdict(results[name])))

    return RunResult(
        setup=dict(s.rows()), label=s.label, phase1=History(**phase1["history"]),
        validation_accuracy_initial=phase1["initial"], validation_accuracy_phase1=phase1["validation"],
        test_accuracy_phase1=phase1["test"], phase1_seconds=phase1["seconds"], fine_tuning=results,
        versions=versions(), resumed=resumed, data_report=report)


def fine_tune(s: Setup, variant: Recipe, name: str, first: TransferModel, train, validation, test, seed: int,
              verbose="auto") -> FineTuneResult:
    """Phase 2 of one variant, from the weights ``first`` ended phase 1 with."""
    keras = load_keras()
    keras.utils.set_random_seed(seed + 1)
    started = time.perf_counter()
    second = build_model(variant, load_backbone(s), s.image_size)
    second.base.set_weights(first.base.get_weights())
    second.head.set_weights(first.head.get_weights())
    unfreeze_for_fine_tuning(variant, second.base)
    compile_phase(variant, second.model, variant.phase2_optimizer)
    drift = BatchNormDrift(second.base)
    # The tutorials continue the epoch count; as written, the 2019 and 2020 ones restart one epoch early.
    initial_epoch = s.phase1_epochs - (1 if variant.phase2_initial_epoch_overlaps else 0)
    history = second.model.fit(train, epochs=initial_epoch + s.phase2_epochs, initial_epoch=initial_epoch,
                               validation_data=validation, callbacks=[drift.callback()], shuffle=False,
                               verbose=verbose)
    return FineTuneResult(
        variant=name,
        base_called_with=variant.base_call,
        bn_layers_trainable=sum(layer.trainable for layer in drift.layers),
        history=History.of(history), bn_layers=[layer.name for layer in drift.layers],
        bn_mean_drift=drift.mean, bn_variance_drift=drift.variance,
        validation_accuracy=_accuracy(second.model, validation), test_accuracy=_accuracy(second.model, test),
        seconds=time.perf_counter() - started)


def _accuracy(model, dataset) -> float:
    return float(model.evaluate(dataset, verbose=0, return_dict=True)["accuracy"])


def _backbone_fingerprint(s: Setup) -> str:
    return standin.record()["file"]["sha256"] if s.backbone == "standin" else "imagenet"


# --- The recipe's model on the real architectures: what fine-tuning changes ---------------------------------------


def probe_recipe_fine_tuning(recipe: Recipe, profile: Profile, seed: int = 0) -> dict[str, facts.FineTuneObservation]:
    """Each fine-tuning variant of ``recipe`` on the recipe's real architecture, probed over a few ``fit`` steps.

    The architecture is Keras' own at the profile's size with **random weights**; its BatchNormalization
    statistics are first set to those of the real images it will see (:func:`companion.facts.calibrate_batch_norm`),
    as pretraining would have left them. The images are the first of each class of the shared training split.
    """
    keras = load_keras()
    n = profile.probe_steps * profile.probe_batch_size
    build = facts.ARCHITECTURES[recipe.architecture][0]
    x = y = None
    observations = {}
    for name, variant in recipes.fine_tuning_variants(recipe).items():
        keras.utils.set_random_seed(seed)
        base = build(profile)
        size = base.input_shape[1]
        if x is None:  # the same real images for every variant, read once
            images, labels = data.load_arrays("train", size, images_per_class=n // 2, progress=False)
            order = np.argsort(np.arange(len(images)) % (n // 2), kind="stable")  # cat, dog, cat, dog...
            x, y = images[order].astype("float32"), labels[order].astype("float32")[:, None]
        facts.calibrate_batch_norm(base, x / 127.5 - 1.0)
        built = build_model(variant, base, size)
        observations[name] = facts.probe_fine_tuning(
            built.model, base, variant.fine_tune_at, variant.freeze_batch_norm, scale_in_pipeline(variant, x), y,
            profile, recipe.architecture, variant.fine_tuning_summary)
    return observations


# --- Tables for the pages ---------------------------------------------------------------------------------------


def probe_table(observations: dict[str, facts.FineTuneObservation]) -> FactTable:
    """What a few fine-tuning steps changed in the base, per variant (a fact table: counts, deterministic)."""
    rows = [[name, f"{o.bn_layers_unfrozen} of {o.bn_layers}", o.bn_layers_moved, o.bn_layers_affine_updated,
             f"{o.kernels_updated} of {o.kernels_unfrozen}", facts.yes_no(bool(o.head_dropout_training))
             if o.head_dropout_training is not None else "no Dropout"]
            for name, o in observations.items()]
    return FactTable(["fine-tuning", "BN layers trainable", "BN layers whose statistics moved",
                      "BN layers whose gamma/beta moved", "base kernels updated", "head Dropout in training mode"],
                     rows)


def accuracy_table(results: dict[str, RunResult], recipes_by_name: dict[str, Recipe] | None = None) -> FactTable:
    """Validation accuracy before training, after phase 1 and after each fine-tuning variant; with recipes given,
    their published numbers beside the computed ones."""
    header = ["recipe", "fine-tuning", "before training", "after phase 1", "after fine-tuning", "test",
              "BN layers trainable", "BN layers moved"]
    if recipes_by_name:
        header += ["published (phase 1, fine-tuned)", "fine-tuned minus published"]
    rows = []
    for recipe_name, result in results.items():
        for variant, tuned in result.fine_tuning.items():
            row = [recipe_name, variant, f"{result.validation_accuracy_initial:.3f}",
                   f"{result.validation_accuracy_phase1:.3f}", f"{tuned.validation_accuracy:.3f}",
                   f"{tuned.test_accuracy:.3f}", tuned.bn_layers_trainable, tuned.bn_layers_moved]
            if recipes_by_name:
                published = recipes_by_name[recipe_name].published_validation_accuracy
                row += [", ".join(f"{p:.3f}" for p in published),
                        f"{100 * (tuned.validation_accuracy - published[1]):+.1f} points"]
            rows.append(row)
    return FactTable(header, rows)


def fine_tuning_sentences(observations: dict[str, facts.FineTuneObservation], keras_label: str) -> dict[str, str]:
    """A chapter's conclusions about its recipe's fine-tuning, each produced from the probe's counts.

    Keys: ``as_written`` (what the recipe as written did to BN statistics), ``training_false`` (whether a
    ``training=False`` call protected them; absent when the recipe already passes it) and ``remedy``.
    """
    def moved(o: facts.FineTuneObservation) -> str:
        if o.bn_layers_moved == 0:
            return "moved the statistics of none of its BatchNormalization layers"
        return (f"moved the statistics of {o.bn_layers_moved} of its {o.bn_layers} BatchNormalization layers "
                f"(the {o.bn_layers_unfrozen} it left trainable)" if o.bn_layers_moved == o.bn_layers_unfrozen
                else f"moved the statistics of {o.bn_layers_moved} of its {o.bn_layers} BatchNormalization layers")

    written = observations[recipes.AS_WRITTEN]
    sentences = {"as_written": f"On {keras_label}, fine-tuning as written ({written.variant_of_recipe}) "
                               f"{moved(written)}."}
    protected = observations.get(recipes.TRAINING_FALSE)
    if protected is not None:
        verdict = "did not protect them" if protected.bn_layers_moved else "protected them"
        sentences["training_false"] = (f"Calling the base with `training=False` instead {verdict}: it "
                                       f"{moved(protected)}.")
    elif written.bn_layers_moved:
        sentences["training_false"] = ("The recipe already calls the base with `training=False`, and on this "
                                       "Keras that did not protect the statistics.")
    else:
        sentences["training_false"] = ("The recipe already calls the base with `training=False`, and on this "
                                       "Keras that protected the statistics.")
    remedy = observations[recipes.BN_FROZEN]
    sentences["remedy"] = (f"With every BatchNormalization layer set to `trainable=False` after unfreezing, "
                           f"fine-tuning {moved(remedy)} and updated {remedy.kernels_updated} of the "
                           f"{remedy.kernels_unfrozen} unfrozen kernels and biases.")
    return sentences
