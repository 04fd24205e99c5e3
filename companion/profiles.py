"""Run profiles: one place that says how big every chapter's computations are.

- ``smoke``: CPU, offline, small models and few steps; what CI runs. Every fact the book states is
  computed in this profile too (facts do not depend on image size or step count). The tutorials' training runs
  use a subset of the shared ``cats_and_dogs_filtered`` images, the offline stand-in backbone and a few epochs.
- ``offline``: what a CPU can do without internet: the facts as in ``smoke``, and the training runs on all the
  shared ``cats_and_dogs_filtered`` images with each recipe's own epochs, on the stand-in backbone (minutes).
- ``full``: the tutorials' own sizes (MobileNetV2 alpha 1.0 at 160 px, Xception at 150 px, batch 32), and for
  the training runs each tutorial's own dataset, ImageNet weights and epochs (needs internet or cached data and
  weights; meant for a GPU).

A chapter's ``profile`` parameter chooses; the environment variable ``COMPANION_PROFILE`` overrides it.
"""

from __future__ import annotations

import dataclasses
import os

PROFILE_ENV = "COMPANION_PROFILE"


@dataclasses.dataclass(frozen=True)
class Profile:
    name: str
    description: str
    # Probes on the real architectures (random weights: the fact is which variables change).
    probe_batch_size: int
    probe_steps: int
    mobilenet_alpha: float
    mobilenet_image_size: int
    xception_image_size: int
    # Data and backbone for experiments that learn (the tutorials' runs, the benchmark).
    images_per_class: int | None  # per class and split of cats_and_dogs_filtered; None: all
    backbone: str  # "imagenet" (Keras' weights) or "standin" (the project's offline pretrained backbone)
    recipe_data: bool  # the training runs read each tutorial's own dataset (else the shared cats_and_dogs_filtered)
    epochs: tuple[int, int] | None  # (phase 1, fine-tuning) epochs of the training runs; None: the recipe's


SMOKE = Profile(
    name="smoke",
    description="CPU, offline, small inputs and few steps (what CI runs)",
    probe_batch_size=4,
    probe_steps=2,
    mobilenet_alpha=0.35,
    mobilenet_image_size=96,
    xception_image_size=71,  # the smallest input Xception accepts
    images_per_class=100,
    backbone="standin",
    recipe_data=False,
    epochs=(3, 2),
)
# The smoke profile's facts, with training runs worth looking at.
OFFLINE = dataclasses.replace(
    SMOKE,
    name="offline",
    description="CPU, offline: all the shared images and each recipe's epochs, on the stand-in backbone",
    images_per_class=None,
    epochs=None,
)
FULL = Profile(
    name="full",
    description="the tutorials' own data, model sizes, epochs and ImageNet weights; meant for a GPU",
    probe_batch_size=32,
    probe_steps=3,
    mobilenet_alpha=1.0,
    mobilenet_image_size=160,
    xception_image_size=150,
    images_per_class=None,
    backbone="imagenet",
    recipe_data=True,
    epochs=None,
)
PROFILES = {p.name: p for p in (SMOKE, OFFLINE, FULL)}


class UnknownProfileError(ValueError):
    pass


def get(name: str) -> Profile:
    """The profile called ``name``; ``$COMPANION_PROFILE``, when set, wins over ``name``."""
    chosen = os.environ.get(PROFILE_ENV) or name
    try:
        return PROFILES[chosen]
    except KeyError:
        source = f" (from ${PROFILE_ENV})" if os.environ.get(PROFILE_ENV) else ""
        raise UnknownProfileError(
            f"unknown profile {chosen!r}{source}; valid profiles: {', '.join(PROFILES)}"
        ) from None
