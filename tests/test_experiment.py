"""The experiment's verdict: what the override cost, measured against the noise between the two ways of
fine-tuning on the variants without it. The runs here are written by hand, so the expected sentences are derived by
hand too (the real runs are in test_runner.py)."""

from companion import recipes
from companion.experiment import Column, Experiment
from companion.results import EarlyPoint, FineTuneResult, History, Phase1Result


def _run(early: dict[int, float], end: float, moved: bool) -> FineTuneResult:
    """One fine-tuning run: validation accuracy after each early point and at the end; two BN layers, both moved
    or neither."""
    drift = [[0.1, 0.2] if moved else [0.0, 0.0]]
    return FineTuneResult(
        variant="", base_called_with="training=False", bn_layers_trainable=2,
        history=History([1], {"val_accuracy": [end]}),
        early=[EarlyPoint(batches, accuracy, 2 if moved else 0) for batches, accuracy in early.items()],
        bn_layers=["bn_a", "bn_b"], bn_mean_drift=drift, bn_variance_drift=drift, validation_accuracy=end,
        test_accuracy=end, seconds=1.0, steps_per_epoch=63)


def _column(variant: str, version: str, written: list, remedy: list, override: bool) -> Column:
    """``written`` and ``remedy``: per seed, (accuracy after 2 batches, after 10, at the end)."""
    return Column(variant, {"keras": version}, {
        recipes.AS_WRITTEN: [_run({2: a2, 10: a10}, end, moved=override) for a2, a10, end in written],
        recipes.BN_FROZEN: [_run({2: a2, 10: a10}, end, moved=False) for a2, a10, end in remedy],
    }, seconds=1.0)


def _experiment(*columns: Column) -> Experiment:
    phase1 = Phase1Result(History([1], {"val_accuracy": [0.97]}), 0.5, 0.97, 0.97, 1.0)
    return Experiment("MobileNetV2 2020", {}, (0, 1), phase1, {c.variant: c for c in columns})


# tf-keras has no override: the remedy's gains there are the noise. Seeds' gains, in points:
# after 2 batches -1.0 and +1.0 (noise 1.0), after 10 batches +0.5 and 0 (noise 0.5), at the end -1.5 and 0 (1.5).
WITHOUT_OVERRIDE = _column("tf-keras", "2.21.0",
                           written=[(0.96, 0.94, 0.97), (0.95, 0.94, 0.97)],
                           remedy=[(0.95, 0.945, 0.955), (0.96, 0.94, 0.97)], override=False)


def test_a_gain_is_stated_only_where_every_seed_exceeds_the_noise():
    # keras: gains +5.0 and +4.0 after 2 batches (> 1.0), +1.0 and +1.0 after 10 (> 0.5), +2.0 and +1.0 at the end
    # (not all > 1.5).
    override = _column("keras", "3.15.1",
                       written=[(0.90, 0.93, 0.95), (0.92, 0.93, 0.96)],
                       remedy=[(0.95, 0.94, 0.97), (0.96, 0.94, 0.97)], override=True)
    experiment = _experiment(override, WITHOUT_OVERRIDE)
    assert experiment.overridden() == ["keras"]
    assert experiment.verdict() == (
        "the remedy's gain under the override (keras 3.15.1) exceeded the noise after 2 batches and after 10 batches "
        "(after 2 batches: +4.0 to +5.0 points against up to 1.0 without it; after 10 batches: +1.0 points against "
        "up to 0.5 without it; at the end: +1.0 to +2.0 points against up to 1.5 without it)")
    values = experiment.values()
    assert round(values["exp_keras_gain_first"], 6) == 4.5
    assert values["exp_keras_ahead_first"] == "ahead in 2 of 2 seeds"
    assert values["exp_tf_keras_ahead_first"] == "ahead in 1, behind in 1 of 2 seeds"
    assert values["exp_keras_moved_written"] == 2 and values["exp_tf_keras_moved_written"] == 0


def test_gains_within_the_noise_are_no_cost():
    # keras: gains 0 and +1.0 after 2 batches (noise 1.0), 0 after 10 (0.5), +1.0 and 0 at the end (1.5).
    override = _column("keras", "3.15.1",
                       written=[(0.95, 0.94, 0.96), (0.95, 0.94, 0.97)],
                       remedy=[(0.95, 0.94, 0.97), (0.96, 0.94, 0.97)], override=True)
    assert _experiment(override, WITHOUT_OVERRIDE).verdict() == (
        "no cost of the override (keras 3.15.1) exceeded the noise: the remedy's gain stayed within the differences "
        "seen between the two ways on the variants without the override (after 2 batches: +0.0 to +1.0 points "
        "against up to 1.0 without it; after 10 batches: +0.0 points against up to 0.5 without it; at the end: "
        "+0.0 to +1.0 points against up to 1.5 without it)")


def test_no_comparison_without_a_variant_on_each_side():
    assert _experiment(WITHOUT_OVERRIDE).verdict() == (
        "no comparison: the override moved no statistics on any variant")
