"""Run profiles: one place that says how big every chapter's computations are.

- ``smoke``: what CI runs on 2 CPU cores: the packaged pretrained bases at small inputs, a subset of the shared
  ``cats_and_dogs_filtered`` images, a few epochs. Every fact the book states about the two flags is computed in
  this profile too (those facts do not depend on image size or step count). Its matrix is narrowed
  (:attr:`Profile.narrow_matrix`): the real architectures' recommended ways run only where their other ways run.
- ``offline``: what ``make book`` runs on a CPU without internet: every recipe at its own architecture and input
  size, with the packaged bases; the MobileNetV2 recipes on all the shared images (their tutorials' own 2,000
  training and 1,000 validation images), Xception on the first 300 images per class of each split (all of them
  would take the build past its budget of 40 minutes on 2 CPU cores). Where a recipe's own epochs do not fit the
  budget either, the profile says which it uses instead, and why (:meth:`Profile.epochs_for`).
- ``gpu``: the packaged bases on all the shared images at each tutorial's own epochs, and the experiment at five
  seeds under every Keras variant for both recipes: for one GPU without internet (no ImageNet download, no TFDS).
- ``full``: each tutorial's own data, input size, epochs and Keras' ImageNet weights (internet, or cached data and
  weights; meant for a GPU).

Each profile also says how large the experiment of the Keras 3 chapter is (:class:`ExperimentPlan`): per recipe,
which Keras variants, how many seeds, how many fine-tuning batches and validation images, and which shorter
phase 1 it is repeated from; and how large its repetition over a whole fine-tuning is (:attr:`Profile.lasting`),
which the 2020 MobileNetV2 page runs.

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
class Target:
    """A tutorial page's validation accuracy at ``stage`` ("phase 1" or "fine-tuned with the remedy") may fall short
    of the number its tutorial publishes by at most ``allowed_miss`` (a fraction: 0.02 is 2 points); ``why`` says why
    the profile allows that much. ``companion run`` exits non-zero when a page misses by more."""

    recipe: str
    stage: str
    allowed_miss: float
    why: str


@dataclasses.dataclass(frozen=True)
class Reached:
    """What a page reached against one of its profile's targets (:class:`Target`)."""

    target: Target
    measured: float
    published: float

    @property
    def required(self) -> float:
        return self.published - self.target.allowed_miss

    @property
    def missed_by(self) -> float:
        """Points of accuracy short of the published number (negative: above it)."""
        return round((self.published - self.measured) * 100, 1)

    @property
    def met(self) -> bool:
        return self.measured >= self.required - 1e-9

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self.target), "measured": self.measured, "published": self.published,
                "met": self.met}

    @classmethod
    def from_dict(cls, raw: dict) -> Reached:
        target = Target(**{field.name: raw[field.name] for field in dataclasses.fields(Target)})
        return cls(target, raw["measured"], raw["published"])

    def said(self) -> str:
        """One sentence: the result against the published number, and what the profile allows and why."""
        stage, allowed = self.target.stage.capitalize(), f"{self.target.allowed_miss * 100:.0f}"
        if self.missed_by <= 0:
            return (f"{stage}: {self.measured:.3f} reaches the published {self.published:.4g} (this profile allows "
                    f"{allowed} points short: {self.target.why}).")
        verdict = "within" if self.met else "more than"
        return (f"{stage}: {self.measured:.3f} is {self.missed_by:.1f} points short of the published "
                f"{self.published:.4g}, {verdict} the {allowed} this profile allows: {self.target.why}.")


@dataclasses.dataclass(frozen=True)
class ExperimentPlan:
    """How large the paired experiment (:mod:`companion.training.experiment`) is for one recipe under a profile."""

    recipe: str
    variants: tuple[str, ...]  # Keras variants (companion.core.variants), each in its own process
    seeds: tuple[int, ...]  # one pair of runs (as written, remedy) per seed, on the same batches
    batches: int | None  # fine-tuning batches per run; None: one epoch of the training images
    validation_images: int | None  # validation (and test) images each accuracy is measured on; None: all
    early_batches: tuple[int, ...]  # accuracy is also measured after these many batches
    phase1_epochs: tuple[int, ...]  # shorter phase 1s the experiment is repeated from, under the first variant
    why: str  # why these sizes: the page shows it
    # A plan with no variants and no seeds runs nothing: ``why`` says why the profile leaves it out.
    # fit runs eagerly (compile(run_eagerly=True)) in the runs and in any phase 1 the experiment trains itself: for
    # runs of a few batches, where tracing the training step took longer than the batches. Both runs of a pair run
    # alike; what the recorder measures (snapshots of the BN statistics, accuracy) does not depend on tracing.
    eager: bool = False
    # fit's epochs over the pair's batches, the same batches in the same order each epoch (early_batches count
    # batches across them): more than one for the experiment over a whole fine-tuning (Profile.lasting).
    epochs: int = 1

    @property
    def runs(self) -> bool:
        return bool(self.variants and self.seeds)

    @classmethod
    def from_dict(cls, raw: dict) -> ExperimentPlan:
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})


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
    weights: str  # "packaged" (offline, see companion.tutorials.backbones) or "imagenet" (Keras' weights)
    recipe_data: bool  # the training runs read each tutorial's own dataset (else the shared cats_and_dogs_filtered)
    epochs: tuple[tuple[str, Epochs], ...]  # (recipe name or "*", epochs): where a recipe does not run its own
    # Validation accuracy is also measured after these many batches of the first fine-tuning epoch.
    early_batches: tuple[int, ...]
    # The paired experiment under each Keras variant, per recipe, each pair from the same phase-1 weights.
    experiments: tuple[ExperimentPlan, ...]
    # How far each tutorial page may fall short of its tutorial's published validation accuracy under this profile.
    targets: tuple[Target, ...] = ()
    # Alternating pairs of epochs a chapter times against each other (the guard's overhead): a median and a spread.
    timing_pairs: int = 3
    # The matrix narrowed for time: the checks whose scope has a narrower one (companion.core.columns.Scope.under)
    # run only there; the way the advice recommends for each real architecture, only where its other ways run.
    narrow_matrix: bool = False
    # The experiment again over a whole fine-tuning of the recipe's epochs (ExperimentPlan.epochs): does a cost
    # measured over the first batches last? Per recipe it plans (Profile.lasting_for).
    lasting: tuple[ExperimentPlan, ...] = ()
    # Recipes that train on all the shared images, where the others read images_per_class: every run of the recipe
    # (its page, the experiment's, the guard's chapter) reads the same images (Profile.images_for).
    all_images: tuple[str, ...] = ()

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Profile:
        """The profile :meth:`to_json` wrote (tuples restored), so that a child process runs the same one."""
        raw = json.loads(text)
        raw["epochs"] = tuple((name, Epochs(**epochs)) for name, epochs in raw["epochs"])
        raw["targets"] = tuple(Target(**target) for target in raw["targets"])
        for plans in ("experiments", "lasting"):
            raw[plans] = tuple(ExperimentPlan.from_dict(plan) for plan in raw[plans])
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()})

    def image_size(self, architecture: str) -> int:
        return self.mobilenet_image_size if architecture == "MobileNetV2" else self.xception_image_size

    def epochs_for(self, recipe) -> Epochs | None:
        """The epochs ``recipe`` runs with under this profile, or None when it runs its own."""
        chosen = dict(self.epochs)
        return chosen.get(recipe.name, chosen.get("*"))

    def images_for(self, recipe) -> int | None:
        """Images per class and split of the shared data ``recipe`` trains on under this profile (None: all)."""
        return None if recipe.name in self.all_images else self.images_per_class

    def experiment_for(self, recipe) -> ExperimentPlan:
        """The experiment's plan for ``recipe`` under this profile."""
        return _plan_for(recipe, self.experiments, f"the profile {self.name!r} plans no experiment")

    def lasting_for(self, recipe) -> ExperimentPlan:
        """The plan of the experiment over a whole fine-tuning (:attr:`lasting`) for ``recipe`` under this profile."""
        return _plan_for(recipe, self.lasting,
                         f"the profile {self.name!r} plans no experiment over a whole fine-tuning")


def _plan_for(recipe, plans: tuple[ExperimentPlan, ...], none: str) -> ExperimentPlan:
    """The plan of ``plans`` for ``recipe``; where there is none, a ValueError that starts with ``none`` and names
    the recipes planned."""
    for plan in plans:
        if plan.recipe == recipe.name:
            return plan
    planned = ", ".join(plan.recipe for plan in plans) or "none"
    raise ValueError(f"{none} for {recipe.name!r}; it plans: {planned}")


SMOKE_EXPERIMENT_WHY = ("the smoke profile checks that every code path runs, not accuracy (its runs fit eagerly, "
                        "faster for a few batches)")
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
    # One pair takes the timing's every path; each pair compiles and traces the model twice (3 pairs: 58 s in CI).
    timing_pairs=1,
    # The real architectures' recommended ways on every column cost about 7.5 minutes of CPU (about 15 s per
    # release on TensorFlow, three minutes on JAX), more than CI's budget leaves; the same code runs in the columns
    # where their other ways run.
    narrow_matrix=True,
    experiments=(
        # Eager: a smoke run of 3 or 4 batches took 13 s eagerly against 21 s traced (MobileNetV2 at 96 x 96), 25 s
        # against 40 to 80 s (Xception at 71 x 71), on 2 CPU cores. The fewest that take every path: two seeds (an
        # interval), an early point before the end of the run, one batch of validation images.
        ExperimentPlan("MobileNetV2 2020", ("keras", "keras-nightly", "tf-keras"), (0, 1), 3, 32, (2,), (1,),
                       SMOKE_EXPERIMENT_WHY, eager=True),
        ExperimentPlan("Xception 2020", ("keras",), (0, 1), 2, 32, (1,), (),
                       SMOKE_EXPERIMENT_WHY, eager=True),
    ),
    # Two epochs of one batch: a point after the first epoch and one at the end of the run.
    lasting=(ExperimentPlan("MobileNetV2 2020", ("keras",), (0, 1), 1, 32, (1,), (), SMOKE_EXPERIMENT_WHY,
                            eager=True, epochs=2),),
)
OFFLINE_BUDGET = "to fit the offline build's 40 minutes on 2 CPU cores"
OFFLINE = dataclasses.replace(
    SMOKE,
    name="offline",
    description="CPU, offline: every recipe at its own architecture and input size, packaged pretrained bases; the "
                "MobileNetV2 recipes on all the shared images, Xception on 300 images per class of each split",
    mobilenet_image_size=160,
    xception_image_size=150,
    # Xception: 600 training and 600 validation images (the test set is a fifth of the latter). Its passes are
    # about four times as slow as MobileNetV2's at its input size, and every recipe on all 3,000 images once took
    # the build over an hour on 2 CPU cores, most of it in measuring validation accuracy during fine-tuning.
    images_per_class=300,
    # The MobileNetV2 tutorials' own data: all 2,000 training and 1,000 validation images (800 and the test set's
    # 200, as the 2020 tutorial splits them), for phase 1, fine-tuning and the experiment's phase 1.
    all_images=("MobileNetV2 2019", "MobileNetV2 2020"),
    epochs=(
        ("Xception 2020", Epochs(2, 1, "the guide's 20 + 10 epochs of Xception take hours on 2 CPU cores; its own "
                                       "Keras 3 port uses 2 + 1")),
        # Phase 1 runs the MobileNetV2 tutorials' own 10 epochs on all their images; fine-tuning, one epoch of them.
        ("*", Epochs(10, 1, "every way of fine-tuning for the tutorial's 10 epochs would take the offline build far "
                            "past its budget of 40 minutes on 2 CPU cores (the 2020 page's last section runs pairs "
                            "over the 10 epochs on fewer images; the full and gpu profiles run the tutorials' own "
                            "epochs)")),
    ),
    early_batches=(2, 10),  # an epoch is 63 batches of MobileNetV2's 2,000 training images, 19 of Xception's 600
    timing_pairs=3,
    narrow_matrix=False,
    experiments=(
        # 30 runs from the chapter's 10-epoch phase 1 and 10 from a 2-epoch one, two variants' children at a time.
        # Sized by the power table of the build of 7e64530 (three seeds from the 10-epoch phase 1): under the pinned
        # Keras the paired differences spread by up to 1.0 point (SD), at which three pairs detect 3.1 points four
        # times in five and five detect 1.7; its "none detected" (+1.7 at the end, -0.2 to +3.6) could not rule out
        # 2 points. These runs take the other lane, which finished 335 s before the tutorial pages' in that build.
        ExperimentPlan("MobileNetV2 2020", ("keras", "keras-nightly", "tf-keras"), (0, 1, 2, 3, 4), 12, 200, (2, 6),
                       (2,), "five seeds, sized from the spread of the paired differences an earlier build measured "
                             "under the pinned Keras so that a difference of 2 points is detected four times in five "
                             "(the power table below gives this build's); the first 12 fine-tuning batches and 200 "
                             "validation images per run, to fit the offline build's 40 minutes on 2 CPU cores"),
        # Not run: its earlier plan (three seeds of 5 batches, 96 validation images) took 513 s of a 42-minute build.
        ExperimentPlan("Xception 2020", (), (), 5, 96, (2,), (),
                       "fine-tuning all of Xception runs at about 11 images/s on 2 CPU cores, so the pairs that "
                       "could detect a difference of 2 points do not fit the offline build's 40 minutes "
                       "(the gpu and full profiles run five seeds on all the validation images)"),
    ),
    # The tutorial's 10 epochs of fine-tuning on 4 batches (128 images) each, under the pinned Keras, where fit
    # overrides training=False: five seeds, since the first 12 batches' paired differences spread by up to 1.3 points
    # (SD) in the build of f1ac0a8, and at that spread five pairs detect about 2 points four times in five where
    # three detect about 4.
    lasting=(ExperimentPlan("MobileNetV2 2020", ("keras",), (0, 1, 2, 3, 4), 4, 200, (4, 8, 20), (),
                            "five seeds of the tutorial's 10 fine-tuning epochs, each epoch the same 4 batches (128 "
                            "training images) where the tutorial's epoch is 63 batches of 2,000, and 200 validation "
                            f"images, under the pinned Keras only, {OFFLINE_BUDGET}", epochs=10),),
    targets=(
        Target("MobileNetV2 2019", "phase 1", 0.02, "the project's bar, on all 2,000 training images of "
                                                    "cats_and_dogs_filtered for the tutorial's 10 epochs, where the "
                                                    "tutorial trained on 80% of TFDS cats_vs_dogs"),
        Target("MobileNetV2 2020", "phase 1", 0.02, "the project's bar, on the tutorial's own images and epochs"),
        Target("Xception 2020", "phase 1", 0.04, "phase 1 trains on 600 images of cats_and_dogs_filtered for 2 of the "
                                                 "guide's 20 epochs, as its Keras 3 port does, where the guide trained "
                                                 "on 40% of TFDS cats_vs_dogs"),
        *(Target(recipe, "fine-tuned with the remedy", 0.02, "the project's bar")
          for recipe in ("MobileNetV2 2019", "MobileNetV2 2020", "Xception 2020")),
    ),
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
    experiments=tuple(
        ExperimentPlan(recipe, ("keras", "keras-nightly", "tf-keras"), (0, 1, 2, 3, 4), None, None, (2, 10, 20, 40),
                       (2,), "five seeds, one epoch of fine-tuning per run, every variant")
        for recipe in ("MobileNetV2 2020", "Xception 2020")),
    # The tutorial's whole fine-tuning: 10 epochs of 62 batches of 32 (1,984 of its 2,000 training images: the
    # early points are whole epochs), under the pinned Keras, where fit overrides training=False.
    lasting=(ExperimentPlan("MobileNetV2 2020", ("keras",), (0, 1, 2, 3, 4), 62, None, (62, 124, 310), (),
                            "five seeds of the tutorial's 10 fine-tuning epochs on 62 batches (1,984 of its 2,000 "
                            "training images) each, every validation image, under the pinned Keras", epochs=10),),
    targets=tuple(Target(recipe, stage, 0.02, "the project's bar, at the tutorial's own epochs")
                  for recipe in ("MobileNetV2 2019", "MobileNetV2 2020", "Xception 2020")
                  for stage in ("phase 1", "fine-tuned with the remedy")),
)
GPU = dataclasses.replace(
    FULL,
    name="gpu",
    description="one GPU without internet: packaged pretrained bases on all the shared images at each tutorial's "
                "own epochs; the experiment at five seeds under every variant for both recipes",
    weights="packaged",
    recipe_data=False,
)
PROFILES = {p.name: p for p in (SMOKE, OFFLINE, FULL, GPU)}


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
