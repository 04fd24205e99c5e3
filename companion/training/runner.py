"""The training runner: one function trains any recipe under any profile, as the tutorials do.

Phase 1 trains the head on the frozen base; phase 2 unfreezes the base (all but ``layers[:fine_tune_at]``) and
fine-tunes with a lower learning rate. Phase 2 runs once per way of fine-tuning it is given (by default the page's,
:func:`companion.tutorials.recipes.ways_compared`), each from the same phase-1 weights, and records validation
accuracy after the first few batches and after every epoch, and how far each BatchNormalization layer's moving
statistics have moved.

Phase-1 weights travel as plain arrays (base, then head), so a child process running another Keras variant can
fine-tune from exactly the same weights (:mod:`companion.training.experiment`). With a checkpoint folder each phase is kept
as soon as it exists and reused by a later run with the same key: settings, versions, code, the data's identity, the
weights' hash and the seed (:mod:`companion.core.cache`).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path

import numpy as np

from companion import data
from companion.checks.ways import Way
from companion.core import cache, timing
from companion.core.variants import load_keras, versions
from companion.flags import probes
from companion.flags.walk import batch_norm_layers
from companion.tutorials import backbones, recipe_models, recipes
from companion.tutorials.results import (
    EarlyPoint,
    FineTuneResult,
    History,
    Phase1Result,
    RunResult,
)
from companion.tutorials.setups import Setup, load_base

# --- Data -------------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Data:
    train: object  # tf.data.Dataset of (images, labels), scaled in the pipeline where the recipe does so
    validation: object
    test: object
    report: str  # what the scan of the image files found
    identity: str  # which images, as a page shows them (the key holds the fingerprint)
    fingerprint: str

    @functools.cached_property
    def train_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The training images and labels in the order of the first pass over ``train``, kept: later passes
        reshuffle, and the experiment's pairs must not depend on how many passes came before."""
        pairs = [(np.asarray(x), np.asarray(y)) for x, y in self.train]
        return np.concatenate([x for x, _ in pairs]), np.concatenate([y for _, y in pairs])

    def paired(self, seed: int, batches: int | None, validation_images: int | None, batch_size: int) -> Data:
        """The data of one pair of the experiment's runs: ``batches`` batches of the training images in an order
        drawn with ``seed`` (all of them when None), the same on every pass and every call, so that both runs of a
        pair see the same batches; and the first ``validation_images`` of the validation and test images (their
        order is fixed; None: all)."""
        import tensorflow as tf

        images, labels = self.train_arrays
        order = np.random.default_rng(seed).permutation(len(images))
        chosen = order if batches is None else order[:batches * batch_size]
        if batches is not None and len(chosen) < batches * batch_size:
            raise ValueError(f"{batches} batches of {batch_size} need {batches * batch_size} training images, and "
                             f"there are {len(images)}: plan fewer batches")
        train = tf.data.Dataset.from_tensor_slices((images[chosen], labels[chosen])).batch(batch_size)
        first = (lambda d: d) if validation_images is None else (
            lambda d: d.unbatch().take(validation_images).batch(batch_size))
        return dataclasses.replace(self, train=train, validation=first(self.validation), test=first(self.test))


def load_data(s: Setup, batch_size: int, seed: int) -> Data:
    """The setup's datasets (train reshuffled every epoch with ``seed``; validation and test in a fixed order)."""
    with timing.phase("loading data"):
        size = (s.image_size, s.image_size)
        if s.dataset.tfds:
            train, validation, test = (
                data.load_tfds_cats_vs_dogs(split, size, batch_size, shuffle=(i == 0), seed=seed)
                for i, split in enumerate(s.dataset.splits))
            identity = f"TFDS {s.dataset.name} ({', '.join(s.dataset.splits)})"
            report = "TFDS cats_vs_dogs: TFDS leaves out the archive's corrupt JPEGs itself when preparing the data"
            fingerprint = identity
        else:
            splits = data.load_splits(size, batch_size, seed, limit_per_class=s.images_per_class)
            train, validation, test = splits.train, splits.validation, splits.test
            report, identity, fingerprint = splits.report.summary(), splits.identity.label, splits.identity.fingerprint
        scaled = (d.map(lambda x, y: (recipe_models.scale_in_pipeline(s.recipe, x), y))
                  for d in (train, validation, test))
        return Data(*scaled, report, identity, fingerprint)


class Accuracy:
    """Accuracy of a model on a fixed dataset, from ``predict`` (which, unlike ``evaluate``, leaves the compiled
    metrics alone, so it can run in the middle of an epoch)."""

    def __init__(self, dataset, threshold: float):
        self.dataset = dataset
        self.threshold = threshold
        self.labels = np.concatenate([np.asarray(y) for _, y in dataset]).reshape(-1)

    def __call__(self, model) -> float:
        with timing.phase("accuracy passes"):
            predicted = np.asarray(model.predict(self.dataset, verbose=0)).reshape(-1) > self.threshold
        return float(np.mean(predicted == (self.labels > 0.5)))


# --- What fine-tuning does to BatchNormalization --------------------------------------------------------------


class BatchNormDrift:
    """How far each BN layer's moving statistics have moved since the start of fine-tuning (the companion's one
    snapshot, :class:`companion.flags.probes.Snapshot`, of the base)."""

    def __init__(self, base):
        self.layers = batch_norm_layers(base)
        self.snapshot = probes.Snapshot(base)
        self.mean: list[list[float]] = []
        self.variance: list[list[float]] = []

    def _changes(self) -> tuple[list[float], list[float]]:
        """Per BN layer, the largest change of its moving mean, and of its moving variance."""
        moved = {(v.layer, v.name): v.max_abs_change for v in self.snapshot.variables if v.kind == probes.BN_MOVING}
        return ([moved[layer.name, "moving_mean"] for layer in self.layers],
                [moved[layer.name, "moving_variance"] for layer in self.layers])

    def moved_now(self) -> int:
        """BN layers whose moving statistics have changed since the start."""
        mean, variance = self._changes()
        return sum(1 for m, v in zip(mean, variance) if m > 0 or v > 0)

    def record(self) -> None:
        mean, variance = self._changes()
        self.mean.append(mean)
        self.variance.append(variance)


class FineTuningRecorder:
    """What one fine-tuning run does, measured around the ``fit`` that runs it: pass ``callbacks=recorder.callbacks``
    to ``fit``, then :meth:`result`. Validation accuracy after ``early_batches`` batches of fine-tuning, counted
    across its epochs (and how many BN layers had moved by then), and after every epoch how far each BN layer's
    moving statistics moved.

    Without ``curves`` (the paired experiment, which compares accuracy after the early batches and at the end
    only) the test set is not measured.
    """

    def __init__(self, way: Way, base, d: Data, threshold: float, early_batches: tuple[int, ...] = (),
                 curves: bool = True):
        self.way, self.curves = way, curves
        self.drift = BatchNormDrift(base)
        self.validation = Accuracy(d.validation, threshold)
        self.test = Accuracy(d.test, threshold) if curves else None
        self.early: list[EarlyPoint] = []
        self.steps_per_epoch = int(d.train.cardinality())
        self.started = time.perf_counter()
        self.callbacks = self._callbacks(early_batches)

    def _callbacks(self, early_batches: tuple[int, ...]) -> list:
        keras = load_keras()
        drift, accuracy, early = self.drift, self.validation, self.early

        class Record(keras.callbacks.Callback):
            batches = 0  # of this fit, across its epochs: fit numbers the batches of each epoch from 0

            def on_train_batch_end(self, batch, logs=None):
                self.batches += 1
                if self.batches in early_batches:
                    early.append(EarlyPoint(self.batches, accuracy(self.model), drift.moved_now()))

            def on_epoch_end(self, epoch, logs=None):
                drift.record()

        return [Record()]

    def result(self, model, history) -> FineTuneResult:
        """The run's result, once its ``fit`` (which returned ``history``) is done."""
        return FineTuneResult(
            way=self.way,
            bn_layers_trainable=sum(layer.trainable for layer in self.drift.layers),
            history=History.of(history), early=self.early, bn_layers=[layer.name for layer in self.drift.layers],
            bn_mean_drift=self.drift.mean, bn_variance_drift=self.drift.variance,
            validation_accuracy=self.validation(model), test_accuracy=self.test(model) if self.test else None,
            seconds=time.perf_counter() - self.started, steps_per_epoch=self.steps_per_epoch)


# --- The runner -------------------------------------------------------------------------------------------------


def checkpoint_dir(s: Setup, seed: int) -> Path:
    """Where the chapters keep this setup's phases: the cache folder / runs / recipe / profile-seed-data."""
    slug = lambda text: "".join(c if c.isalnum() else "-" for c in text.lower())  # noqa: E731
    return cache.cache_dir() / "runs" / slug(s.recipe.name) / f"{s.profile}-seed{seed}-{slug(s.dataset.name)}"


def weights_fingerprint(s: Setup) -> str:
    return backbones.PACKAGED[s.architecture].sha256 if s.weights == "packaged" else s.weights


@dataclasses.dataclass
class Phase1:
    """Phase 1's result and the weights it ended with, as arrays (base, then head)."""

    result: Phase1Result
    base_weights: list[np.ndarray]
    head_weights: list[np.ndarray]


def train_phase1(s: Setup, d: Data, seed: int, verbose="auto", run_eagerly: bool = False) -> Phase1:
    """Phase 1 as the recipe writes it: the base frozen, the head trained with the first optimizer.
    ``run_eagerly``: for runs of a few batches, where tracing the step takes longer than the batches."""
    keras = load_keras()
    keras.utils.set_random_seed(seed)
    started = time.perf_counter()
    with timing.phase("building models"):
        built = recipe_models.build(s.recipe, load_base(s), s.image_size)
    with timing.phase("phase 1"):
        built.base.trainable = False
        recipe_models.compile_phase(s.recipe, built.model, s.recipe.phase1_optimizer, run_eagerly)
        validation = Accuracy(d.validation, s.recipe.accuracy_threshold)
        initial = validation(built.model)
        # The dataset reshuffles itself every epoch (seeded); fit's own shuffle does not apply to a dataset.
        history = History.of(built.model.fit(d.train, epochs=s.phase1_epochs, validation_data=d.validation,
                                             shuffle=False, verbose=verbose))
        # fit's last validation is the final one: the same weights, images and threshold (compile_phase) as a
        # predict pass would count (tests/test_runner.py holds them equal), without a second pass over the images.
        result = Phase1Result(history, initial, history.metrics["val_accuracy"][-1],
                              Accuracy(d.test, s.recipe.accuracy_threshold)(built.model),
                              time.perf_counter() - started)
    return Phase1(result, built.base.get_weights(), built.head.get_weights())


def fine_tune(s: Setup, way: Way, phase1: Phase1, d: Data, seed: int, early_batches=(), epochs: int | None = None,
              verbose="auto", curves: bool = True, run_eagerly: bool = False) -> FineTuneResult:
    """Phase 2 fine-tuned ``way``, from phase 1's weights: unfreeze as the way says, compile, fit, measure.

    Without ``curves`` (the paired experiment) ``fit`` gets no validation data and the test set is not measured:
    on 2 CPU cores those two passes were a fifth of each run. ``run_eagerly``: the experiment plan's ``eager``."""
    keras = load_keras()
    keras.utils.set_random_seed(seed + 1)
    variant = s.recipe.with_way(way)
    with timing.phase("building models"):
        built = recipe_models.build(variant, load_base(s), s.image_size)
        built.base.set_weights(phase1.base_weights)
        built.head.set_weights(phase1.head_weights)
    with timing.phase("fine-tuning"):
        recipe_models.prepare_fine_tuning(variant, built.base)
        recipe_models.compile_phase(variant, built.model, variant.phase2_optimizer, run_eagerly)
        recorder = FineTuningRecorder(way, built.base, d, variant.accuracy_threshold, early_batches, curves)
        # The tutorials continue the epoch count; as written, the 2019 and 2020 ones restart one epoch early.
        initial_epoch = s.phase1_epochs - (1 if variant.phase2_initial_epoch_overlaps else 0)
        epochs = s.phase2_epochs if epochs is None else epochs
        history = built.model.fit(d.train, epochs=initial_epoch + epochs, initial_epoch=initial_epoch,
                                  validation_data=d.validation if curves else None, callbacks=recorder.callbacks,
                                  shuffle=False, verbose=verbose)
        return recorder.result(built.model, history)


def kept_phase1(kept: cache.Folder) -> Phase1 | None:
    """Phase 1 as :func:`phase1_or_resume` kept it (its arrays hash-checked), or None where it is not kept."""
    record = kept.read_json("phase1.json")
    arrays = kept.read_arrays("phase1.npz", record["sha256"]) if record else None
    if arrays is None:
        return None
    split = record["base_arrays"]
    return Phase1(Phase1Result.from_dict(record["result"]), arrays[:split], arrays[split:])


def phase1_or_resume(s: Setup, d: Data, seed: int, kept: cache.Folder | None, verbose="auto",
                     run_eagerly: bool = False) -> tuple[Phase1, bool]:
    """Phase 1 from the checkpoint folder if it holds it, else trained now (and kept); whether it was resumed."""
    kept_result = None if kept is None else kept_phase1(kept)
    if kept_result is not None:
        return kept_result, True
    phase1 = train_phase1(s, d, seed, verbose, run_eagerly)
    if kept is not None:
        keep_phase1(kept, phase1)
    return phase1, False


def keep_phase1(kept: cache.Folder, phase1: Phase1) -> None:
    """Keep ``phase1`` where :func:`kept_phase1` reads it (a child process fine-tunes from it)."""
    kept.write_arrays("phase1.npz", phase1.base_weights + phase1.head_weights)
    kept.write_json("phase1.json", {"result": dataclasses.asdict(phase1.result), "base_arrays": len(phase1.base_weights),
                                    "sha256": kept.sha256("phase1.npz")})


def offer_phase1(s: Setup, d: Data, seed: int, batch_size: int, phase1: Phase1) -> bool:
    """Keep ``phase1``, trained elsewhere as the setup says (a tutorial page's), as the setup's phase 1 where none is
    kept, so that the experiment (:mod:`companion.training.experiment`) fine-tunes from it instead of training the
    same phase 1 again; whether it was kept. A phase 1 already kept stays: results kept under its hash stay valid."""
    kept = phase1_folder(s, d, seed, batch_size)
    if kept_phase1(kept) is not None:
        return False
    keep_phase1(kept, phase1)
    return True


def phase1_folder(s: Setup, d: Data, seed: int, batch_size: int, checkpoints: Path | None = None,
                  suffix: str = "") -> cache.Folder:
    """Where the setup's phase 1 is kept: ``checkpoints/phase1`` (by default in :func:`checkpoint_dir`), with
    ``suffix`` for a phase 1 other than the setup's own."""
    return cache.Folder(Path(checkpoints or checkpoint_dir(s, seed)) / f"phase1{suffix}",
                        run_key(s, d, seed, batch_size))


def run_key(s: Setup, d: Data, seed: int, batch_size: int, **extra) -> dict:
    """Everything a kept result depends on (the code's fingerprint is added by :class:`companion.core.cache.Folder`)."""
    return {"setup": repr(s), "seed": seed, "batch_size": batch_size, "versions": versions(),
            "weights": weights_fingerprint(s), "data": d.fingerprint, **extra}


def run(s: Setup, seed: int = 0, batch_size: int | None = None, checkpoints: Path | None = None,
        ways: tuple[Way, ...] | None = None, early_batches: tuple[int, ...] = (), verbose="auto",
        run_eagerly: bool = False) -> RunResult:
    """Train the setup's recipe: phase 1 once, then phase 2 fine-tuned each way from the phase-1 weights.

    ``ways`` defaults to :func:`companion.tutorials.recipes.ways_compared`. With ``checkpoints`` (a folder),
    finished phases are kept (phase 1 in ``phase1/``, fine-tuning in ``fine-tuning/``) and reused by a later call
    with the same key; phase 1 is also what :mod:`companion.training.experiment` fine-tunes from.
    ``run_eagerly``: every ``fit`` runs eagerly (tiny runs, whose steps take less time than tracing them).
    """
    batch_size = batch_size or s.recipe.batch_size
    ways = ways or recipes.ways_compared(s.recipe)
    d = load_data(s, batch_size, seed)
    key = run_key(s, d, seed, batch_size)
    kept_phase1 = None if checkpoints is None else phase1_folder(s, d, seed, batch_size, checkpoints)
    kept = None if checkpoints is None else cache.Folder(Path(checkpoints) / "fine-tuning", {
        **key, "ways": [way.key for way in ways], "early_batches": early_batches})
    phase1, resumed_phase1 = phase1_or_resume(s, d, seed, kept_phase1, verbose, run_eagerly)
    resumed = ["phase 1"] if resumed_phase1 else []
    results = {}
    for way in ways:
        file = f"{way.key}.json"
        kept_result = kept.read_json(file) if kept else None
        if kept_result is not None:
            results[way] = FineTuneResult.from_dict(kept_result)
            resumed.append(way.label)
            continue
        results[way] = fine_tune(s, way, phase1, d, seed, early_batches, verbose=verbose, run_eagerly=run_eagerly)
        if kept:
            kept.write_json(file, results[way].to_dict())
    recovered = [*(kept_phase1.recovered if kept_phase1 else []), *(kept.recovered if kept else [])]
    return RunResult(setup=dict(s.rows()), weights=s.weights_label, data=d.identity, phase1=phase1.result,
                     fine_tuning=results, versions=versions(), resumed=resumed, recovered=recovered,
                     data_report=d.report)
