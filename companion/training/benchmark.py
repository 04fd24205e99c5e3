"""Is the input pipeline fast enough? Images/s of loading+decoding+resizing next to the model's training speed.

The pipeline decodes in parallel, caches decoded images in memory and prefetches, so from the second epoch on it
serves images from memory. The check is that the cached pipeline delivers at least :data:`REQUIRED_RATIO` times
what training consumes, so that training never waits for data.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from companion import data
from companion.checks import models
from companion.checks.ways import Call
from companion.core.profiles import Profile
from companion.core.tables import FactTable
from companion.core.variants import load_keras
from companion.tutorials import backbones

REQUIRED_RATIO = 5.0


@dataclasses.dataclass(frozen=True)
class Benchmark:
    profile: str
    image_size: int
    batch_size: int
    pipeline: data.Throughput
    training: dict[str, float]  # setting -> images/s

    @property
    def ratio(self) -> float:
        """Cached pipeline images/s over the fastest training setting's images/s."""
        return self.pipeline.second_pass / max(self.training.values())

    def table(self) -> FactTable:
        rows = [["pipeline, first pass (read, decode, resize)", f"{self.pipeline.first_pass:.0f}"],
                ["pipeline, cached pass", f"{self.pipeline.second_pass:.0f}"]]
        rows += [[f"training: {setting}", f"{speed:.0f}"] for setting, speed in self.training.items()]
        rows.append(["cached pipeline / fastest training", f"{self.ratio:.1f}x (required {REQUIRED_RATIO:g}x)"])
        return FactTable(["images per second", "value"], rows,
                         caption=f"profile {self.profile}: {self.image_size} px, batch {self.batch_size}")


def training_images_per_second(model, image_size: int, batch_size: int, steps: int = 8) -> float:
    """``fit`` speed on in-memory batches (the first step, which traces the graph, is not timed)."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, size=(batch_size * steps, image_size, image_size, 3)).astype("float32")
    y = rng.integers(0, 2, size=(batch_size * steps, 1)).astype("float32")
    model.fit(x[:batch_size], y[:batch_size], batch_size=batch_size, epochs=1, verbose=0)
    started = time.perf_counter()
    model.fit(x, y, batch_size=batch_size, epochs=1, verbose=0, shuffle=False)
    return batch_size * steps / (time.perf_counter() - started)


def run(profile: Profile, batch_size: int = 32, seed: int = 0) -> Benchmark:
    """Measure the pipeline on the profile's share of the data and MobileNetV2 training (the profile's weights and
    input size)."""
    keras = load_keras()
    size = profile.mobilenet_image_size
    splits = data.load_splits((size, size), batch_size, seed, limit_per_class=profile.images_per_class)
    pipeline = data.pipeline_images_per_second(splits.train)
    base = backbones.load(profile.weights, "MobileNetV2", size)
    model = models.tutorial_model(keras, base, Call.TRAINING_FALSE, pool=True, dropout=0.2)
    training = {}
    for setting, trainable in (("base frozen", False), ("base unfrozen", True)):
        base.trainable = trainable
        model.compile(keras.optimizers.RMSprop(1e-5), keras.losses.BinaryCrossentropy(from_logits=True))
        training[setting] = training_images_per_second(model, size, batch_size)
    return Benchmark(profile.name, size, batch_size, pipeline, training)
