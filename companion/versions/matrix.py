"""The version matrix: the same fact suite under each Keras variant, each in its own process.

:func:`compute` runs the suite (:func:`measure`) in one child process per variant (:mod:`companion.core.child`, with
the environment :mod:`companion.core.variants` gives each one) and collects the columns.

Every row returns a typed value (:mod:`companion.checks.evidence`): a bool, an int, an enum member or a small frozen
dataclass. Text is made only where :meth:`Matrix.table` draws the table; the claims audit and the chapters read the
values (:meth:`Matrix.value`, :meth:`Matrix.where`, :meth:`Matrix.phrases`). The rows that are decisive checks come
from :mod:`companion.checks.decisive`, which defines them once for this matrix, the release matrix
(:mod:`companion.versions.releases`) and ``companion check``.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from typing import Any, Callable

from companion.checks import evidence, questions
from companion.core import cache, child, profiles, variants
from companion.core.tables import FactTable
from companion.flags import probes
from companion.suite import facts, layer_facts
from companion.tutorials import recipes


@dataclasses.dataclass(frozen=True)
class Row:
    id: str
    question: str
    measure: Callable[[profiles.Profile], Any]  # -> a typed value (companion.checks.evidence): shown only in a table


def _decisive(check_id: str) -> Row:
    """A row that is one of the decisive checks (:mod:`companion.checks.decisive`), defined there once."""
    check = questions.BY_ID[check_id]
    return Row(check.id, check.question, lambda p: questions.value(check_id))


def _architecture_row(architecture: str, remedy: bool, base_training: bool | None = False):
    def measure(profile):
        obs = facts.fine_tune_architecture(architecture, profile, base_training=base_training, remedy=remedy)
        return evidence.FineTuneCounts(evidence.Count(obs.bn_layers_moved, obs.bn_layers),
                                       evidence.Count(obs.kernels_updated, obs.kernels_unfrozen))

    return measure


@functools.lru_cache(maxsize=None)
def _nested(profile, remedy=False, base_training=False, base_trainable=True):
    """One fit of the small transfer model; several rows read the same report."""
    return facts.fine_tune_small(base_training, remedy, profile, base_trainable=base_trainable)


def _frozen_base(profile):
    report = _nested(profile, base_training=None, base_trainable=False)
    return evidence.FrozenBase(kernels=facts.base_kernels_changed(report),
                               statistics=bool(report.changed(probes.BN_MOVING)))


@functools.lru_cache(maxsize=None)
def _autoscale():
    return layer_facts.autoscale_dropout_facts()


def _autoscale_row(trainable: bool):
    def measure(profile):
        seen = _autoscale()[trainable]
        return evidence.AutoScale(seen.trainable_weights, seen.drops_in_training, seen.fit_changed_scale)

    return measure


def _frozen_weights(profile):
    counts = facts.trainable_variable_counts("MobileNetV2", profile)
    return evidence.TrainableWeights(counts["base frozen: the base's own trainable weights"], counts["base frozen"])


def _failed_on_error(measure: Callable[[profiles.Profile], Any]) -> Callable[[profiles.Profile], Any]:
    """A row whose step may raise on some Keras (an argument refused, an API missing): its value is then
    :class:`evidence.Failed` with the error's first line, and the other rows still run."""
    def guarded(profile):
        try:
            return measure(profile)
        except Exception as error:
            return evidence.Failed(evidence.first_line(error))

    return guarded


@functools.lru_cache(maxsize=None)
def _inference_mode_fit(profile):
    return facts.fit_in_inference_mode(profile)


def _mode_layers_changed(profile):
    changed = layer_facts.trainable_changes_mode()
    return evidence.Count(sum(changed.values()), len(changed))


def _statistics(trainable: bool, training: bool | None):
    return lambda p: evidence.Statistics(
        layer_facts.observe_batch_norm(trainable=trainable, training=training).normalised_with)


ROWS = [
    Row("dropout_inverted", "Dropout(0.5), training=True: about half zeroed, survivors x2",
        lambda p: layer_facts.dropout_is_inverted(layer_facts.observe_dropout(0.5))),
    Row("dropout_inference", "Dropout, training=False: output equals input",
        lambda p: layer_facts.observe_dropout(0.5, training=False).identity),
    Row("dropout_frozen_drops", "Dropout with trainable=False still drops under training=True",
        lambda p: layer_facts.observe_dropout(0.5, trainable=False).fraction_zeroed > 0),
    Row("forced_dropout_predict", "Dropout(0.5)(x, training=True) in a functional model: drops in predict",
        lambda p: facts.forced_dropout_drops_in_predict()),
    Row("bn_trainable_stats", "BN trainable=True, called with training=True, normalises with", _statistics(True, True)),
    Row("bn_inference_stats", "BN trainable=True, called with training=False, normalises with",
        _statistics(True, False)),
    Row("bn_default_stats", "BN called without a training argument normalises with", _statistics(True, None)),
    Row("bn_frozen_stats", "BN trainable=False, called with training=True, normalises with", _statistics(False, True)),
    Row("bn_frozen_updates", "BN trainable=False, a training step: moving statistics updated",
        lambda p: layer_facts.observe_batch_norm(trainable=False, training=True).moving_statistics_updated),
    Row("bn_trainable_updates", "BN trainable=True, a training step with training=True: moving statistics updated",
        lambda p: layer_facts.observe_batch_norm(trainable=True, training=True).moving_statistics_updated),
    Row("bn_inference_updates", "BN trainable=True, a training step with training=False: moving statistics updated",
        lambda p: layer_facts.observe_batch_norm(trainable=True, training=False).moving_statistics_updated),
    Row("bn_trainable_affine", "BN trainable=True, a training step with training=True: gamma/beta updated",
        lambda p: layer_facts.observe_batch_norm(trainable=True, training=True).gamma_beta_updated),
    Row("bn_variables", "BN per channel: parameters / moving statistics non-trainable / gamma,beta trainable",
        lambda p: layer_facts.batch_norm_variables()),
    Row("bn_batch_dependence", "one image's BN output depends on its batch: training=True / training=False",
        lambda p: evidence.ByTraining(*(layer_facts.batch_norm_output_depends_on_batch(t) for t in (True, False)))),
    Row("bn_moving_average", "BN training-mode call: new moving mean = momentum x old + (1 - momentum) x batch mean",
        lambda p: layer_facts.batch_norm_moving_average()),
    Row("predict_mode", "training value a layer's call receives in predict",
        lambda p: evidence.Training.of(layer_facts.training_value_received("predict"))),
    Row("evaluate_mode", "training value a layer's call receives in evaluate",
        lambda p: evidence.Training.of(layer_facts.training_value_received("evaluate"))),
    Row("call_mode", "training value a layer's call receives in model(x), no training argument",
        lambda p: evidence.Training.of(layer_facts.training_value_received("call"))),
    Row("fit_passes_true", "base(x) with no training argument: training value its BN received in fit",
        lambda p: evidence.Training.of(_nested(p, base_training=None).modes["base_bn"][0])),
    Row("inference_updates_bn", "predict / evaluate: BN statistics updated",
        lambda p: evidence.PredictEvaluate(**facts.inference_updates_batch_norm())),
    Row("frozen_weights", "MobileNetV2 base frozen: trainable weights of the base / of the tutorial model",
        _frozen_weights),
    Row("frozen_base", "base.trainable=False, base(x), fit: base kernels / BN statistics updated", _frozen_base),
    Row("frozen_predict_mode", "base.trainable=False, base(x), predict: training value the base's BN received",
        lambda p: evidence.Training.of(facts.frozen_base_predict_mode())),
    Row("inference_mode_received", "unfrozen base called with training=False inside a custom layer's call, fit: "
        "training value the base's BN received", lambda p: evidence.Training.of(
            _inference_mode_fit(p).modes["base_bn"][0])),
    Row("inference_mode_updates", "same model: base BN statistics / gamma,beta / kernels updated",
        lambda p: evidence.Updates(**facts.base_updates(_inference_mode_fit(p)))),
    Row("dense_training_ignored", "Dense called with training=True and with training=False: same output",
        _failed_on_error(lambda p: layer_facts.dense_ignores_training())),
    _decisive("nested_override"),
    Row("nested_kernels", "same model: base kernels updated",
        lambda p: facts.base_kernels_changed(_nested(p))),
    Row("nested_bn_mode", "same model: training value the base's BN received in fit",
        lambda p: evidence.Training.of(_nested(p).modes["base_bn"][0])),
    Row("dropout_inside_base", "same model: Dropout inside the base ran in training mode in fit",
        lambda p: bool(_nested(p).ran_in_training_mode("base_dropout"))),
    _decisive("dropout_leak_fit"),
    Row("dropout_leak_call", "same model called with training=True: Dropout after the base drops",
        lambda p: facts.dropout_after_base_active(False)),
    _decisive("remedy"),
    _decisive("remedy_dropout"),
    _decisive("remedy_alone"),
    _decisive("remedy_alone_dropout"),
    _decisive("recompile"),
    _decisive("none_override"),
    _decisive("none_dropout"),
    _decisive("augmented_call"),
    _decisive("trainable_setter"),
    _decisive("false_then_true"),
    _decisive("staged_unfreezing"),
    _decisive("remedy_inside_dropout"),
    _decisive("remedy_alone_inside_dropout"),
    Row("head_dropout_plain", "base(x) with no training argument, fit: Dropout after the base ran in training mode",
        lambda p: bool(_nested(p, base_training=None).ran_in_training_mode("head_dropout"))),
    Row("autoscale_trainable", "AutoScaleDropout trainable=True: trainable weights / drops in training / fit moved its scale",
        _autoscale_row(True)),
    Row("autoscale_frozen", "AutoScaleDropout trainable=False: trainable weights / drops in training / fit moved its scale",
        _autoscale_row(False)),
    Row("autoscale_frozen_fit_training", "AutoScaleDropout trainable=False, fit: ran in training mode (received "
        "training=True)", lambda p: _autoscale()[False].dropped_in_fit),
    Row("autoscale_forced_trainable", "AutoScaleDropout(0.5)(x, training=True) in a functional model: drops in predict",
        lambda p: layer_facts.autoscale_forced_drops_in_predict(True)),
    Row("autoscale_forced_frozen", "same, the layer frozen (trainable=False): drops in predict",
        lambda p: layer_facts.autoscale_forced_drops_in_predict(False)),
    Row("trainable_changes_mode", "layers other than BN whose output depends on training "
        f"({', '.join(layer_facts.MODE_LAYERS)}), called with training=True: trainable=False changed their mode",
        _mode_layers_changed),
    Row("tutorial_2019_call", "the 2019 MobileNetV2 recipe's model: training argument it passes to the base",
        lambda p: evidence.Training.of(facts.recipe_base_call(recipes.MOBILENET_V2_2019))),
    Row("tutorial_2020_call", "the 2020 MobileNetV2 recipe's model: training argument it passes to the base",
        lambda p: evidence.Training.of(facts.recipe_base_call(recipes.MOBILENET_V2_2020))),
    Row("tutorial_xception_call", "the Xception 2020 recipe's model: training argument it passes to the base",
        lambda p: evidence.Training.of(facts.recipe_base_call(recipes.XCEPTION_2020))),
    Row("mobilenet_2019", "MobileNetV2, fine_tune_at=100, base(x) (2019), fit",
        _architecture_row("MobileNetV2", remedy=False, base_training=None)),
    Row("mobilenet_as_written", "MobileNetV2, fine_tune_at=100, base(x, training=False), fit",
        _architecture_row("MobileNetV2", remedy=False)),
    Row("mobilenet_remedy", "MobileNetV2, fine_tune_at=100, remedy, fit", _architecture_row("MobileNetV2", True)),
    Row("xception_as_written", "Xception, fully unfrozen, base(x, training=False), fit",
        _architecture_row("Xception", remedy=False)),
    Row("xception_remedy", "Xception, fully unfrozen, remedy, fit", _architecture_row("Xception", True)),
]


def measure(profile: profiles.Profile, seed: int = 0) -> dict:
    """Run every row under this process's Keras; returns the column (typed values) with the versions it ran on."""
    keras = variants.load_keras()
    values = {}
    for row in ROWS:
        keras.utils.set_random_seed(seed)
        values[row.id] = row.measure(profile)
    return {"versions": variants.versions(), "values": values}


def _column_to_json(column: dict) -> dict:
    return {"versions": column["versions"], "values": evidence.values_to_json(column["values"])}


def _column_from_json(data: dict) -> dict:
    return {"versions": data["versions"], "values": evidence.values_from_json(data["values"])}


REMEDY_WORKS = questions.REMEDY_WORKS

# The conclusions the chapters draw from the matrix: what a reader of Keras' documentation and guides expects, and
# the rows' values that say it held.
@dataclasses.dataclass
class Matrix:
    columns: dict[str, dict]  # variant name -> measure()'s result: {"versions": ..., "values": row id -> typed value}
    seconds: dict[str, float]

    def value(self, variant: str, row_id: str):
        """The typed value (:mod:`companion.checks.evidence`) of one row under one variant."""
        return self.columns[variant]["values"][row_id]

    def text(self, variant: str, row_id: str) -> str:
        """The value as the table shows it."""
        return evidence.show(self.value(variant, row_id))

    def label(self, variant: str) -> str:
        return f"{variant} {self.columns[variant]['versions']['keras']}"

    def where(self, **expected) -> list[str]:
        """The variants under which every given row has the given value, e.g.
        ``where(nested_override=True)`` or ``where(remedy_alone=REMEDY_WORKS, remedy_alone_dropout=True)``."""
        return [name for name in self.columns
                if all(self.value(name, row) == value for row, value in expected.items())]

    def table(self, anchors: bool = False) -> FactTable:
        """One row per check, one column per variant; with ``anchors`` each row can be linked to
        (``#evidence-nested_override``: the claims audit's evidence links)."""
        names = list(self.columns)
        header = ["check", *map(self.label, names)]
        rows = [[row.question, *(self.text(n, row.id) for n in names)] for row in ROWS]
        return FactTable(header, rows, row_ids=[f"evidence-{row.id}" for row in ROWS] if anchors else None)


def measured(profile: str) -> dict:
    """In a variant's child process (:func:`run_variant`): every row's value under this process's Keras, as JSON."""
    return _column_to_json(measure(profiles.get(profile)))


def run_variant(name: str, profile: profiles.Profile) -> dict:
    """Measure one variant in a child process with that variant's environment."""
    env = variants.environment(variants.get(name))
    # The child must not inherit a profile override that differs from the one we pass explicitly.
    env.pop(profiles.PROFILE_ENV, None)
    try:
        return _column_from_json(child.call("companion.versions.matrix:measured", env, profile=profile.name))
    except child.ChildFailed as failed:
        raise RuntimeError(f"the fact suite failed under {name}:\n{failed.stderr[-4000:]}") from None


def compute(profile: profiles.Profile, names: list[str] | None = None, progress: bool = True) -> Matrix:
    """Every variant's column; a column computed before with the same settings, versions and code is reused
    (:mod:`companion.core.cache`), so the chapters that show the matrix compute it once per build."""
    names = names or list(variants.VARIANTS)
    this_process = variants.versions()

    def column(name: str) -> tuple[dict, float]:
        with cache.Folder.locked(cache.cache_dir() / "matrix" / f"{profile.name}-{name}", {
                "profile": repr(profile), "variant": repr(variants.get(name)), "this process": this_process}) as kept:
            stored = kept.read_json("column.json")
            if stored is not None:
                return _column_from_json(stored["column"]), stored["seconds"]
            start = time.perf_counter()
            found = run_variant(name, profile)
            seconds = time.perf_counter() - start
            kept.write_json("column.json", {"column": _column_to_json(found), "seconds": seconds})
            return found, seconds

    results = dict(zip(names, child.two_at_a_time(column, names, "Keras variants", progress)))
    return Matrix({n: r[0] for n, r in results.items()}, {n: r[1] for n, r in results.items()})
