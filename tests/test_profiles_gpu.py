"""The gpu profile's code paths at tiny size on the CPU: batches=None (one epoch of fine-tuning), every validation
image, a shorter phase 1, the tutorials' own epochs from the profile (here shrunk to one), packaged bases on the
shared images. The sizes are shrunk with dataclasses.replace; what runs is the profile's own plan otherwise.

The experiment runs here for MobileNetV2 under the pinned Keras only, from the profile's own phase 1: the loop over the
variants, the shorter phase 1 and the Xception recipe run the same code in CI already, in the smoke profile (the Keras
3 chapter runs MobileNetV2's experiment under all three variants and from a shorter phase 1, the Xception page runs
Xception's), and each costs minutes on 2 CPU cores."""

import dataclasses
import os

import pytest

from companion.checks import ways
from companion.core import profiles
from companion.core.statistics import Finding
from companion.training import experiment, runner
from companion.tutorials import recipes, setups

pytestmark = pytest.mark.skipif(not os.environ.get("COMPANION_DATA_DIR"),
                                reason="needs the real images: set COMPANION_DATA_DIR")

GPU = profiles.get("gpu")


def _tiny(plan: profiles.ExperimentPlan) -> profiles.ExperimentPlan:
    # Two seeds (the fewest with an interval), under the pinned Keras (see the module's docstring), fitting eagerly:
    # the traced runner.fine_tune they call runs in the chapter run's test below.
    return dataclasses.replace(plan, variants=plan.variants[:1], seeds=plan.seeds[:2], early_batches=(1, 2),
                               eager=True)


TINY_GPU = dataclasses.replace(GPU, mobilenet_image_size=32, xception_image_size=71, images_per_class=20,
                               epochs=(("*", profiles.Epochs(1, 1, "a unit test")),),
                               experiments=tuple(_tiny(plan) for plan in GPU.experiments))


def test_the_gpu_profile_needs_no_internet_and_plans_both_recipes_under_every_variant():
    assert (GPU.weights, GPU.recipe_data, GPU.images_per_class, GPU.epochs) == ("packaged", False, None, ())
    assert [plan.recipe for plan in GPU.experiments] == ["MobileNetV2 2020", "Xception 2020"]
    for plan in GPU.experiments:
        assert plan.variants == ("keras", "keras-nightly", "tf-keras") and len(plan.seeds) >= 5
        assert plan.batches is None and plan.validation_images is None and plan.phase1_epochs == (2,)
    # Each tutorial's own epochs, on the shared images.
    for recipe in recipes.RECIPES.values():
        s = setups.setup(recipe, GPU)
        assert (s.phase1_epochs, s.phase2_epochs) == (recipe.phase1_epochs, recipe.phase2_epochs)
        assert s.dataset == recipes.SHARED_DATASET and s.weights == "packaged"
    assert profiles.Profile.from_json(GPU.to_json()) == GPU


def test_the_gpu_profiles_experiment_runs_at_tiny_size(tmp_path):
    recipe = recipes.MOBILENET_V2_2020
    plan = TINY_GPU.experiment_for(recipe)
    exp = experiment.run(recipe, TINY_GPU, checkpoints=tmp_path / "kept", batch_size=8, progress=False)
    assert list(exp.columns) == ["keras"] and exp.seeds == (0, 1)
    # batches=None: one epoch of the 40 training images (20 per class) in batches of 8.
    runs = [r for c in exp.columns.values() for results in c.runs.values() for r in results]
    assert len(runs) == 2 * 2 and {r.steps_per_epoch for r in runs} == {5}
    for name in exp.columns:
        for point in exp.points:
            gain = exp.remedy_gain(name, point)
            assert gain.n == 2 and gain.low <= gain.mean <= gain.high and isinstance(gain.finding, Finding)
    # The pinned Keras overrides training=False: every BN layer of the unfrozen part moves as written.
    assert exp.overridden()[0] == "keras" and min(exp.bn_layers_moved("keras", exp.written)) > 0
    assert exp.phase1.history.epochs == [1] and plan.phase1_epochs == (2,)
    # The plan's shorter phase 1 (2 epochs) is trained and fine-tuned from by the same code as the smoke profile's,
    # which the Keras 3 chapter runs in CI; its table lists one row per phase 1 and variant, in the order given.
    longer = dataclasses.replace(exp, phase1_epochs=2)
    assert [row[0] for row in experiment.phase1_table([exp, longer]).rows] == ["1", "2"]


def test_the_gpu_profiles_chapter_run_trains_each_way_at_tiny_size(tmp_path):
    s = setups.setup(recipes.MOBILENET_V2_2019, TINY_GPU)
    result = runner.run(s, batch_size=8, checkpoints=tmp_path / "kept", early_batches=(1, 2), verbose=0)
    # The 2019 recipe as written (base(x)), with training=False, and with the remedy added.
    assert result.phase1.history.epochs == [1] and list(result.fine_tuning) == [ways.PLAIN, ways.TRAINING_FALSE,
                                                                                ways.REMEDY]
