"""The book's runner against a bare-Keras peer: does the companion's machinery cost time?

The peer is the 2020 MobileNetV2 tutorial's phase 1 as the tutorial writes it (``image_dataset_from_directory``,
augmentation and ``preprocess_input`` in the model, ``base_model(x, training=False)``, ``Adam(1e-4)``, ``fit`` with
the validation set), with nothing of the companion in it. The runner is :func:`companion.training.runner.train_phase1`
for the same recipe. Both read the same image files (the profile's share of ``cats_and_dogs_filtered``, linked into
a folder of the tutorial's layout for the peer), start from the same packaged base, run the same epochs on the same
machine, and alternate, each going first in every other pair, so that a machine that slows down during the
comparison, or a process's first run, slows both: the ratio of their times is the runner's overhead.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

from companion import data
from companion.core.profiles import Profile
from companion.core.tables import FactTable
from companion.core.variants import load_keras
from companion.training import runner
from companion.tutorials import recipes, setups

RECIPE = recipes.MOBILENET_V2_2020


@dataclasses.dataclass(frozen=True)
class PeerComparison:
    """Alternating runs of the runner's phase 1 and the peer's, on the same images."""

    profile: str
    images: dict[str, int]  # split -> images each side read
    epochs: int
    runner_seconds: tuple[float, ...]
    peer_seconds: tuple[float, ...]
    runner_accuracy: tuple[float, ...]  # validation accuracy after phase 1
    peer_accuracy: tuple[float, ...]

    @property
    def ratios(self) -> list[float]:
        """Each pair's runner time over the peer's."""
        return [r / p for r, p in zip(self.runner_seconds, self.peer_seconds)]

    @property
    def ratio(self) -> float:
        """The median of the pairs' ratios."""
        return statistics.median(self.ratios)

    def table(self) -> FactTable:
        rows = [[f"pair {i}", f"{r:.1f}", f"{p:.1f}", f"{r / p:.3f}", f"{ra:.3f}", f"{pa:.3f}"]
                for i, (r, p, ra, pa) in enumerate(zip(self.runner_seconds, self.peer_seconds, self.runner_accuracy,
                                                       self.peer_accuracy), start=1)]
        return FactTable(["run", "runner (s)", "bare Keras (s)", "runner / bare Keras", "runner: validation",
                          "bare Keras: validation"], rows,
                         caption=f"The 2020 MobileNetV2 tutorial's phase 1 ({self.epochs} epochs, profile "
                                 f"{self.profile}, {self.images['train']} training and {self.images['validation']} "
                                 f"validation images), the runner first in odd pairs and the peer in even ones; median "
                                 f"ratio {self.ratio:.3f}")


def tutorial_folder(s: setups.Setup, into: Path) -> Path:
    """The setup's share of the images (the same files :func:`companion.data.load_splits` reads) linked into
    ``into/{train,validation}/{cats,dogs}``, the layout ``image_dataset_from_directory`` reads."""
    layout = data.load_layout(data.dataset_root())
    for split in data.SPLITS:
        for path, label in layout.labelled(split, s.images_per_class):
            folder = into / split / data.CLASS_NAMES[label]
            folder.mkdir(parents=True, exist_ok=True)
            (folder / path.name).symlink_to(path)
    return into


def peer_phase1(folder: Path, s: setups.Setup, seed: int) -> tuple[float, float]:
    """The tutorial's phase 1, as it writes it (its variable names kept), on the images in ``folder``: its time in
    seconds, from reading the folder to the end of ``fit``, and its last validation accuracy."""
    keras = load_keras()
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    started = time.perf_counter()
    BATCH_SIZE, IMG_SIZE = 32, (s.image_size, s.image_size)  # the tutorial's names
    train_dataset = keras.utils.image_dataset_from_directory(folder / "train", shuffle=True, batch_size=BATCH_SIZE,
                                                             image_size=IMG_SIZE, seed=seed, verbose=False)
    validation_dataset = keras.utils.image_dataset_from_directory(folder / "validation", shuffle=True,
                                                                  batch_size=BATCH_SIZE, image_size=IMG_SIZE,
                                                                  seed=seed, verbose=False)
    val_batches = tf.data.experimental.cardinality(validation_dataset)
    validation_dataset = validation_dataset.skip(val_batches // 5)  # the tutorial's test set is the first fifth
    train_dataset = train_dataset.prefetch(buffer_size=tf.data.AUTOTUNE)
    validation_dataset = validation_dataset.prefetch(buffer_size=tf.data.AUTOTUNE)
    data_augmentation = keras.Sequential([keras.layers.RandomFlip("horizontal"), keras.layers.RandomRotation(0.2)])
    preprocess_input = keras.applications.mobilenet_v2.preprocess_input
    base_model = setups.load_base(s)  # the same packaged weights as the runner's
    base_model.trainable = False
    global_average_layer = keras.layers.GlobalAveragePooling2D()
    prediction_layer = keras.layers.Dense(1)
    inputs = keras.Input(shape=IMG_SIZE + (3,))
    x = data_augmentation(inputs)
    x = preprocess_input(x)
    x = base_model(x, training=False)
    x = global_average_layer(x)
    x = keras.layers.Dropout(0.2)(x)
    outputs = prediction_layer(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.0001),
                  loss=keras.losses.BinaryCrossentropy(from_logits=True),
                  metrics=[keras.metrics.BinaryAccuracy(threshold=0, name="accuracy")])
    model.evaluate(validation_dataset, verbose=0)  # the tutorial's accuracy before training
    history = model.fit(train_dataset, epochs=s.phase1_epochs, validation_data=validation_dataset, verbose=0)
    return time.perf_counter() - started, history.history["val_accuracy"][-1]


def compare(profile: Profile, pairs: int = 2, seed: int = 0) -> PeerComparison:
    """``pairs`` alternating runs of the runner's phase 1 and the peer's, for the 2020 tutorial under ``profile``."""
    if pairs < 1:
        raise ValueError(f"the comparison needs at least one pair of runs, not {pairs}")
    s = setups.setup(RECIPE, profile)
    found: dict[str, list[float]] = {"runner": [], "peer": [], "runner_accuracy": [], "peer_accuracy": []}
    with tempfile.TemporaryDirectory(prefix="companion-peer-") as temporary:
        folder = tutorial_folder(s, Path(temporary))
        images = {split: sum(1 for _ in (folder / split).rglob("*.*")) for split in data.SPLITS}

        def run_runner() -> None:
            started = time.perf_counter()
            d = runner.load_data(s, RECIPE.batch_size, seed)
            phase1 = runner.train_phase1(s, d, seed, verbose=0)
            found["runner"].append(time.perf_counter() - started)
            found["runner_accuracy"].append(phase1.result.validation_accuracy)

        def run_peer() -> None:
            seconds, accuracy = peer_phase1(folder, s, seed)
            found["peer"].append(seconds)
            found["peer_accuracy"].append(accuracy)

        # The first run of a process pays for its warm-up (TensorFlow's first graphs, the weights' first read): each
        # side goes first in every other pair.
        for pair in range(pairs):
            for side in ((run_runner, run_peer) if pair % 2 == 0 else (run_peer, run_runner)):
                side()
    return PeerComparison(profile.name, images, s.phase1_epochs, tuple(found["runner"]), tuple(found["peer"]),
                          tuple(found["runner_accuracy"]), tuple(found["peer_accuracy"]))
