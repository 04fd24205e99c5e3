"""The experiment's paired comparison: per variant, the remedy's gain over fine-tuning as written, paired by seed,
with its 95% t interval, and the phrase the chapter glues for it. The runs here are written by hand, so the expected
differences, intervals and phrases are derived by hand too (the real runs are in test_runner.py and
test_profiles_gpu.py)."""

import dataclasses
import json

import pytest

from companion.checks.ways import REMEDY_TRAINING_FALSE, TRAINING_FALSE, Way
from companion.core import plots, profiles
from companion.training.experiment import Column, Experiment, phase1_table
from companion.training.experiment import ways as compared_ways
from companion.tutorials import recipes
from companion.tutorials.results import (
    EarlyPoint,
    FineTuneResult,
    History,
    Phase1Result,
    RunResult,
)

PLAN = profiles.ExperimentPlan("MobileNetV2 2020", ("keras", "tf-keras"), (0, 1, 2), 25, 400, (2,), (2,), "a test")


def _run(way: Way, after_2: float, end: float, moved: bool, trainable: int) -> FineTuneResult:
    """One fine-tuning run as the experiment makes it (fit without validation data, epoch 11 after a phase 1 of
    10): validation accuracy after 2 batches and at the end; two BN layers, both moved or neither, ``trainable``
    of them trainable."""
    drift = [[0.1, 0.2] if moved else [0.0, 0.0]]
    return FineTuneResult(
        way=way, bn_layers_trainable=trainable,
        history=History([11], {"loss": [0.3], "accuracy": [end]}), early=[EarlyPoint(2, after_2, 2 if moved else 0)],
        bn_layers=["bn_a", "bn_b"], bn_mean_drift=drift, bn_variance_drift=drift, validation_accuracy=end,
        test_accuracy=end, seconds=1.0, steps_per_epoch=25)


def _column(variant: str, version: str, written: list, remedy: list, override: bool) -> Column:
    """``written`` and ``remedy``: per seed, (accuracy after 2 batches, at the end)."""
    return Column(variant, {"keras": version}, {
        TRAINING_FALSE: [_run(TRAINING_FALSE, a2, end, moved=override, trainable=2) for a2, end in written],
        REMEDY_TRAINING_FALSE: [_run(REMEDY_TRAINING_FALSE, a2, end, moved=False, trainable=0) for a2, end in remedy],
    }, seconds=1.0)


def _experiment(*columns: Column, plan=PLAN, phase1_epochs=10) -> Experiment:
    phase1 = Phase1Result(History([1], {"val_accuracy": [0.97]}), 0.5, 0.97, 0.97, 1.0)
    return Experiment("MobileNetV2 2020", {}, plan, phase1_epochs, phase1, {c.variant: c for c in columns})


# keras overrides training=False. Remedy minus as written, per seed, in points:
# after 2 batches 5, 4, 6: mean 5.0, s = 1.0, s / sqrt(3) = 0.57735, t_{0.975, 2} = 4.302653: 5.0 +- 2.484,
#   2.5 to 7.5: above zero, "costs";
# at the end 5, 2, 5: mean 4.0, s = sqrt(0.0006 / 2) = 1.732 points, s / sqrt(3) = 1.0: 4.0 +- 4.303, -0.3 to 8.3:
#   contains zero.
OVERRIDDEN = _column("keras", "3.15.1", written=[(0.90, 0.90), (0.90, 0.92), (0.90, 0.91)],
                     remedy=[(0.95, 0.95), (0.94, 0.94), (0.96, 0.96)], override=True)
# tf-keras keeps the statistics. After 2 batches -5, -4, -6: the remedy is behind, -7.5 to -2.5; at the end 0, 0, 0:
#   every seed the same, an interval of no width.
KEPT = _column("tf-keras", "2.21.0", written=[(0.95, 0.95), (0.94, 0.95), (0.96, 0.95)],
               remedy=[(0.90, 0.95), (0.90, 0.95), (0.90, 0.95)], override=False)


def test_the_remedys_gain_is_paired_by_seed_with_its_interval():
    experiment = _experiment(OVERRIDDEN, KEPT)
    gain = experiment.remedy_gain("keras", 2)
    assert (round(gain.mean, 3), round(gain.low, 3), round(gain.high, 3), gain.n) == (5.0, 2.516, 7.484, 3)
    assert experiment.overridden() == ["keras"] and experiment.kept_statistics() == ["tf-keras"]
    values = experiment.values()
    assert values["exp_keras_moved_written"] == 2 and values["exp_tf_keras_moved_written"] == 0
    assert experiment.table().rows == [
        ["keras 3.15.1", "updated, trained", "fixed, frozen", "costs 5.0 (2.5 to 7.5)",
         "none detected (+4.0; -0.3 to +8.3)"],
        ["tf-keras 2.21.0", "fixed, trained", "fixed, frozen", "gains 5.0 (2.5 to 7.5)",
         "none (the same in all 3 seeds)"]]


def test_the_power_table_says_what_the_seeds_could_detect_and_how_many_2_points_need():
    """From the differences above, in points. keras after 2 batches (5, 4, 6): s = 1.0, detected 80% of the time
    from (4.302653 + 1.060660) / sqrt(3) = 3.1, and 2 points need 5 pairs (test_paired.py works both out). At the end
    (5, 2, 5): s = sqrt(3) = 1.732, 5.363313 * 1.732 / 1.732 = 5.4; 2 points need 8 pairs: 7 give (2.446912 +
    0.905654) * 1.732051 / 2.645751 = 2.19, 8 give (2.364624 + 0.896345) * 1.732051 / 2.828427 = 1.997. tf-keras at
    the end (0, 0, 0): every seed agreed, so any difference is detected, from 2 pairs."""
    rows = _experiment(OVERRIDDEN, KEPT).power_table().rows
    assert rows == [["keras 3.15.1", "after 2 batches", "3", "1.0", "3.1", "5"],
                    ["keras 3.15.1", "at the end", "3", "1.7", "5.4", "8"],
                    ["tf-keras 2.21.0", "after 2 batches", "3", "1.0", "3.1", "5"],
                    ["tf-keras 2.21.0", "at the end", "3", "0.0", "0.0", "2"]]


def test_the_override_alone_is_measured_against_a_variant_that_kept_the_statistics():
    # As written under tf-keras minus as written under keras: after 2 batches 5, 4, 6 (2.5 to 7.5, as above); at
    # the end 5, 3, 4: mean 4.0, s = 1.0, 4.0 +- 2.484: 1.5 to 6.5.
    both = _experiment(OVERRIDDEN, KEPT)
    assert both.columns[both.reference()].label == "tf-keras 2.21.0"
    assert both.override_table().rows == [["keras 3.15.1", "tf-keras 2.21.0", "costs 5.0 (2.5 to 7.5)",
                                           "costs 4.0 (1.5 to 6.5)"]]
    assert _experiment(OVERRIDDEN).override_table().rows == []  # no variant kept the statistics


def test_one_seed_gives_no_interval():
    one = _column("keras", "3.15.1", written=[(0.90, 0.90)], remedy=[(0.95, 0.95)], override=True)
    experiment = _experiment(one, plan=dataclasses.replace(PLAN, seeds=(0,)))
    assert experiment.table().rows[0][3] == "+5.0 (one seed: no interval)"


def test_the_phase1_table_puts_each_phase1_length_side_by_side():
    long, short = _experiment(OVERRIDDEN, KEPT), _experiment(OVERRIDDEN, phase1_epochs=2)
    assert phase1_table([long, short]).rows == [
        ["10", "0.970", "keras 3.15.1", "costs 5.0 (2.5 to 7.5)", "none detected (+4.0; -0.3 to +8.3)"],
        ["2", "0.970", "keras 3.15.1", "costs 5.0 (2.5 to 7.5)", "none detected (+4.0; -0.3 to +8.3)"]]


def test_a_run_without_validation_data_in_fit_ends_its_curve_at_its_final_accuracy():
    run = _run(TRAINING_FALSE, 0.90, 0.95, moved=True, trainable=2)
    assert run.validation_curve == [(2 / 25, 0.90), (1.0, 0.95)]  # 2 of 25 batches, then the one epoch's end
    figure = plots.experiment(_experiment(OVERRIDDEN, KEPT), "a test")
    assert figure.axes


def test_the_experiment_compares_the_recipe_as_written_with_the_remedy_added_and_round_trips():
    # One change to the tutorial's code: its call of the base stays as written.
    assert compared_ways(recipes.MOBILENET_V2_2020) == (TRAINING_FALSE, REMEDY_TRAINING_FALSE)
    assert compared_ways(recipes.MOBILENET_V2_2019)[1].label == "remedy + base(x)"
    experiment = _experiment(OVERRIDDEN, KEPT)
    assert (experiment.written, experiment.remedied) == (TRAINING_FALSE, REMEDY_TRAINING_FALSE)
    assert Column.from_dict(OVERRIDDEN.to_dict()) == OVERRIDDEN
    assert list(OVERRIDDEN.to_dict()["runs"]) == ["training_false", "remedy_training_false"]


def test_a_run_result_round_trips_through_json_with_its_ways():
    """What a tutorial page keeps: the phase-1 result and one fine-tuning result per way, read back typed."""
    phase1 = Phase1Result(History([1], {"val_accuracy": [0.97]}), 0.5, 0.97, 0.97, 1.0)
    tuned = {way: _run(way, 0.9, 0.95, moved=False, trainable=0) for way in (TRAINING_FALSE, REMEDY_TRAINING_FALSE)}
    result = RunResult({"recipe": "MobileNetV2 2020"}, "packaged", "80 image files", phase1, tuned,
                       {"keras": "3.15.1"}, [], [], "")
    raw = json.loads(result.to_json())
    assert list(raw["fine_tuning"]) == ["training_false", "remedy_training_false"]
    assert RunResult.from_json(result.to_json()) == result


def test_a_plan_without_runs_trains_nothing_and_its_tables_say_why():
    """The offline profile leaves the Xception experiment out: ``run`` returns at once (no data loaded, no child
    process, no phase 1 trained), with no columns, and the page's three tables say why instead of showing numbers."""
    from companion.training import experiment

    xception = recipes.get("Xception 2020")
    plan = profiles.get("offline").experiment_for(xception)
    assert not plan.runs and plan.variants == () and plan.seeds == ()
    left_out = experiment.run(xception, profiles.get("offline"), progress=False)
    assert left_out.columns == {} and left_out.phase1 is None
    assert left_out.plan_table().rows == [["pairs of runs (one per seed)", "none"], ["why", plan.why]]
    for table in (left_out.table(), left_out.accuracy_table()):
        assert table.rows == [] and table.caption == f"not run under this profile: {plan.why}"
    # Every other plan of every profile runs: at least one variant and one seed.
    assert [(p.name, plan.recipe) for p in profiles.PROFILES.values() for plan in p.experiments if not plan.runs] == [
        ("offline", "Xception 2020")]


# Over several epochs of the same batch (Profile.lasting): 4 epochs of 1 batch, accuracy after 2 batches, which is
# the end of epoch 2, and at the end of epoch 4.
OVER_EPOCHS = dataclasses.replace(PLAN, batches=1, epochs=4, early_batches=(2,))


def test_a_plan_over_several_epochs_names_its_points_by_epoch():
    experiment = _experiment(OVERRIDDEN, plan=OVER_EPOCHS)
    assert [experiment.where(point) for point in experiment.points] == ["after epoch 2 (2 batches)",
                                                                        "at the end (epoch 4)"]
    # Within the first epoch of a longer plan, and in a one-epoch plan, a point is a count of batches.
    longer = _experiment(OVERRIDDEN, plan=dataclasses.replace(OVER_EPOCHS, batches=4))
    assert longer.where(2) == "after 2 batches" and _experiment(OVERRIDDEN).where("end") == "at the end"
    plan = dict(longer.plan_table().rows)
    assert plan["fine-tuning per run"] == "4 epochs of the same 4 batches, in the same order (16 batches)"
    assert plan["accuracy measured"] == "after 2 batches, at the end (epoch 4)"


def test_the_course_says_whether_a_cost_lasted_faded_or_was_never_detected():
    # OVERRIDDEN: costs 5.0 (2.5 to 7.5) after 2 batches, none detected at the end (worked out above): faded.
    assert _experiment(OVERRIDDEN, plan=OVER_EPOCHS).course("keras") == (
        "Under keras 3.15.1, what fine-tuning as written cost against the remedy, in points of validation accuracy: "
        "after epoch 2 (2 batches), costs 5.0 (2.5 to 7.5); at the end (epoch 4), none detected (+4.0; -0.3 to "
        "+8.3). The cost detected after epoch 2 (2 batches) was no longer detected at the end of the run, at this "
        "sample size.")
    # The same differences after 2 batches and at the end (5, 4, 6): the cost lasted.
    lasted = _column("keras", "3.15.1", written=[(0.90, 0.90)] * 3,
                     remedy=[(0.95, 0.95), (0.94, 0.94), (0.96, 0.96)], override=True)
    assert _experiment(lasted, plan=OVER_EPOCHS).course("keras").endswith(
        "at the end (epoch 4), costs 5.0 (2.5 to 7.5). The cost lasted to the end of the run.")
    # KEPT: the remedy behind after 2 batches (-5, -4, -6), no difference at the end: no cost at any point.
    assert _experiment(KEPT, plan=OVER_EPOCHS).course("tf-keras").endswith(
        "No cost was detected at any point, at this sample size.")
    one = _column("keras", "3.15.1", written=[(0.90, 0.90)], remedy=[(0.95, 0.95)], override=True)
    assert _experiment(one, plan=dataclasses.replace(OVER_EPOCHS, seeds=(0,))).course("keras").endswith(
        "With one seed there is no interval, so whether a cost lasted is not measured.")


def test_every_profile_plans_the_2020_fine_tuning_over_the_tutorials_epochs_on_images_it_has():
    """Each profile's plan over a whole fine-tuning: the tutorial's own 10 fine-tuning epochs (smoke: 2), each
    epoch's batches within the profile's training images (smoke: 100 per class, 200; the others: the tutorial's
    2,000), every early point the end of an epoch, under the pinned Keras, with an interval."""
    recipe = recipes.MOBILENET_V2_2020
    training_images = {"smoke": 200, "offline": 2000, "gpu": 2000, "full": 2000}
    for name, profile in profiles.PROFILES.items():
        plan = profile.lasting_for(recipe)
        assert plan.epochs == (2 if name == "smoke" else recipe.phase2_epochs) and recipe.phase2_epochs == 10
        assert plan.batches * recipe.batch_size <= training_images[name]
        assert all(point % plan.batches == 0 for point in plan.early_batches)
        assert plan.variants == ("keras",) and len(plan.seeds) >= 2
    assert profiles.get("offline").lasting_for(recipe).seeds == (0, 1, 2, 3, 4)
    with pytest.raises(ValueError, match="plans no experiment over a whole fine-tuning"):
        profiles.get("offline").lasting_for(recipes.MOBILENET_V2_2019)
