"""Run profiles: one place that says how big every chapter's computations are.

- ``smoke``: what CI runs on 2 CPU cores: the packaged pretrained bases at small inputs, a subset of the shared
  ``cats_and_dogs_filtered`` images, a few epochs. Every fact the book states about the two flags is computed in
  this profile too (those facts do not depend on image size or step count).
- ``offline``: what ``make book`` runs on a CPU without internet: every recipe at its own architecture and input
  size on all the shared images, with the packaged bases. Each recipe keeps its own epochs where they fit the
  budget; where they do not, the profile says which epochs it uses instead, and why (:meth:`Profile.epochs_for`).
- ``full``: each tutorial's own data, input size, epochs and Keras' ImageNet weights (internet, or cached data and
  weights; meant for a GPU).

A chapter's ``profile`` parameter chooses; the environment variable ``COMPANION_PROFILE`` overrides it.
"""

from __future__ import annotations

import dataclasses
import json
import os

PROFILE_ENV = "COMPANION_PROFILE"


@dataclasses.dataclass(frozen=True)
class Epochs:
    """Epochs a recipe runs with under a profile, when they differ from the recipe's own, and why."""

    phase1: int
    fine_tuning: int
    why: str


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    description: str
    # Probes on the tutorials' architectures (which variables change does not depend on the image size).
    probe_batch_size: int
    probe_steps: int
    mobilenet_image_size: int
    xception_image_size: int
    # Data and weights for the experiments that learn (the tutorials' runs, the benchmark).
    images_per_class: int | None  # per class and split of cats_and_dogs_filtered; None: all
    weights: str  # "packaged" (offline, see companion.backbones) or "imagenet" (Keras' weights)
    recipe_data: bool  # the training runs read each tutorial's own dataset (else the shared cats_and_dogs_filtered)
    epochs: tuple[tuple[str, Epochs], ...]  # (recipe name or "*", epochs): where a recipe does not run its own
    # Validation accuracy is also measured after these many batches of the first fine-tuning epoch.
    early_batches: tuple[int, ...]
    # The Keras-variant experiment: fine-tuning runs per variant, each from the same phase-1 weights.
    experiment_seeds: tuple[int, ...]
    experiment_fine_tuning_epochs: int | None  # None: the recipe's (or the profile's) fine-tuning epochs
    # The project's accuracy targets under this profile: (recipe name, stage, validation accuracy at least), where
    # stage is "phase 1" or "fine-tuned with the remedy".
    targets: tuple[tuple[str, str, float], ...] = ()

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Profile:
        """The profile :meth:`to_json` wrote (tuples restored), so that a child process runs the same one."""
        raw = json.loads(text)
        raw["epochs"] = tuple((name, Epochs(**epochs)) for name, epochs in raw["epochs"])
        raw["targets"] = tuple(tuple(target) for target in raw["targets"])
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})

    def image_size(self, architecture: str) -> int:
        return self.mobilenet_image_size if architecture == "MobileNetV2" else self.xception_image_size

    def epochs_for(self, recipe) -> Epochs | None:
        """The epochs ``recipe`` runs with under this profile, or None when it runs its own."""
        chosen = dict(self.epochs)
        return chosen.get(recipe.name, chosen.get("*"))


SMOKE = Profile(
    name="smoke",
    description="CPU, offline: packaged pretrained bases at small inputs, 100 images per class, a few epochs "
                "(what CI runs)",
    probe_batch_size=4,
    probe_steps=2,
    mobilenet_image_size=96,
    xception_image_size=71,  # the smallest input Xception accepts
    images_per_class=100,
    weights="packaged",
    recipe_data=False,
    epochs=(("*", Epochs(3, 1, "the smoke profile checks that every code path runs, not accuracy")),),
    early_batches=(2, 4),
    experiment_seeds=(0,),
    experiment_fine_tuning_epochs=1,
)
OFFLINE = dataclasses.replace(
    SMOKE,
    name="offline",
    description="CPU, offline: every recipe at its own architecture and input size on all the shared images, "
                "packaged pretrained bases",
    mobilenet_image_size=160,
    xception_image_size=150,
    images_per_class=None,
    epochs=(
        ("Xception 2020", Epochs(2, 1, "the guide's 20 + 10 epochs of Xception take hours on 2 CPU cores; its own "
                                       "Keras 3 port uses 2 + 1")),
        ("*", Epochs(10, 2, "every way of fine-tuning for 10 epochs would take the offline build past its budget of 40 "
                            "minutes on 2 CPU cores, and fine-tuning's validation accuracy levels off within its "
                            "first epoch (the full profile runs all 10)")),
    ),
    early_batches=(2, 10, 20, 40),
    experiment_seeds=(0, 1),
    experiment_fine_tuning_epochs=1,
    targets=(("MobileNetV2 2019", "phase 1", 0.95), ("MobileNetV2 2019", "fine-tuned with the remedy", 0.96),
             ("MobileNetV2 2020", "phase 1", 0.95), ("MobileNetV2 2020", "fine-tuned with the remedy", 0.96),
             ("Xception 2020", "phase 1", 0.96)),
)
FULL = Profile(
    name="full",
    description="the tutorials' own data, model sizes, epochs and ImageNet weights; meant for a GPU",
    probe_batch_size=32,
    probe_steps=3,
    mobilenet_image_size=160,
    xception_image_size=150,
    images_per_class=None,
    weights="imagenet",
    recipe_data=True,
    epochs=(),
    early_batches=(2, 10, 20, 40),
    experiment_seeds=(0, 1, 2),
    experiment_fine_tuning_epochs=None,
)
PROFILES = {p.name: p for p in (SMOKE, OFFLINE, FULL)}


class UnknownProfileError(ValueError):
    pass


def get(name: str) -> Profile:
    """The profile called ``name`` (any case); ``$COMPANION_PROFILE``, when set, wins over ``name``."""
    chosen = os.environ.get(PROFILE_ENV) or name
    try:
        return PROFILES[chosen.lower()]
    except (KeyError, AttributeError):
        source = f" (from ${PROFILE_ENV})" if os.environ.get(PROFILE_ENV) else ""
        raise UnknownProfileError(
            f"unknown profile {chosen!r}{source}; valid profiles: {', '.join(PROFILES)}"
        ) from None
