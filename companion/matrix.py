"""The version matrix: the same fact suite under each Keras variant, each in its own process.

``python -m companion.matrix measure --profile smoke`` runs the suite under this process's Keras and prints
JSON; :func:`compute` starts one such process per variant (:mod:`companion.variants` sets each one's
environment) and collects the columns.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import subprocess
import sys
import time
from typing import Callable

from companion import cache, facts, probes, profiles, variants
from companion.tables import FactTable


@dataclasses.dataclass(frozen=True)
class Row:
    id: str
    question: str
    measure: Callable[[profiles.Profile], str]


def _architecture_row(architecture: str, remedy: bool, base_training: bool | None = False):
    def measure(profile):
        obs = facts.fine_tune_architecture(architecture, profile, base_training=base_training, remedy=remedy)
        return (f"{obs.bn_layers_moved} of {obs.bn_layers} BN moved, "
                f"{obs.kernels_updated} of {obs.kernels_unfrozen} kernels updated")

    return measure


@functools.lru_cache(maxsize=None)
def _nested(profile, remedy=False, base_training=False, base_trainable=True):
    """One fit of the small transfer model; several rows read the same report."""
    return facts.fine_tune_small(base_training, remedy, profile, base_trainable=base_trainable)


def _remedy_summary(profile, base_training=False):
    report = _nested(profile, remedy=True, base_training=base_training)
    parts = [bool(report.changed(kind)) for kind in (probes.BN_MOVING, probes.BN_AFFINE)]
    parts.append(facts.base_kernels_changed(report))
    return " / ".join(map(facts.yes_no, parts))


def _head_dropout_active(profile, remedy, base_training):
    return facts.yes_no(bool(_nested(profile, remedy=remedy, base_training=base_training)
                             .ran_in_training_mode("head_dropout")))


def _frozen_base(profile):
    report = _nested(profile, base_training=None, base_trainable=False)
    return " / ".join(map(facts.yes_no, [facts.base_kernels_changed(report), bool(report.changed(probes.BN_MOVING))]))


@functools.lru_cache(maxsize=None)
def _autoscale():
    return facts.autoscale_dropout_facts()


def _autoscale_row(trainable: bool):
    keys = ("len(layer.trainable_weights)", "drops under training=True", "fit changed the scale")
    return lambda p: " / ".join(_autoscale()[f"trainable={trainable}: {key}"] for key in keys)


ROWS = [
    Row("dropout_inverted", "Dropout(0.5), training=True: about half zeroed, survivors x2",
        lambda p: facts.yes_no(facts.dropout_is_inverted(facts.observe_dropout(0.5)))),
    Row("dropout_inference", "Dropout, training=False: output equals input",
        lambda p: facts.yes_no(facts.observe_dropout(0.5, training=False).identity)),
    Row("dropout_frozen_drops", "Dropout with trainable=False still drops under training=True",
        lambda p: facts.yes_no(facts.observe_dropout(0.5, trainable=False).fraction_zeroed > 0)),
    Row("forced_dropout_predict", "Dropout(0.5)(x, training=True) in a functional model: drops in predict",
        lambda p: facts.yes_no(facts.forced_dropout_drops_in_predict())),
    Row("bn_trainable_stats", "BN trainable=True, called with training=True, normalises with",
        lambda p: facts.observe_batch_norm(trainable=True, training=True).normalised_with),
    Row("bn_inference_stats", "BN trainable=True, called with training=False, normalises with",
        lambda p: facts.observe_batch_norm(trainable=True, training=False).normalised_with),
    Row("bn_default_stats", "BN called without a training argument normalises with",
        lambda p: facts.observe_batch_norm(trainable=True, training=None).normalised_with),
    Row("bn_frozen_stats", "BN trainable=False, called with training=True, normalises with",
        lambda p: facts.observe_batch_norm(trainable=False, training=True).normalised_with),
    Row("bn_frozen_updates", "BN trainable=False, a training step: moving statistics updated",
        lambda p: facts.yes_no(facts.observe_batch_norm(trainable=False, training=True).moving_statistics_updated)),
    Row("bn_trainable_updates", "BN trainable=True, a training step with training=True: moving statistics updated",
        lambda p: facts.yes_no(facts.observe_batch_norm(trainable=True, training=True).moving_statistics_updated)),
    Row("bn_trainable_affine", "BN trainable=True, a training step with training=True: gamma/beta updated",
        lambda p: facts.yes_no(facts.observe_batch_norm(trainable=True, training=True).gamma_beta_updated)),
    Row("bn_variables", "BN per channel: parameters / moving statistics non-trainable / gamma,beta trainable",
        lambda p: " / ".join(facts.batch_norm_variables().values())),
    Row("bn_batch_dependence", "one image's BN output depends on its batch: training=True / training=False",
        lambda p: " / ".join(facts.yes_no(facts.batch_norm_output_depends_on_batch(t)) for t in (True, False))),
    Row("predict_mode", "training value a layer's call receives in predict",
        lambda p: str(facts.training_value_in_predict())),
    Row("fit_passes_true", "base(x) with no training argument: training value its BN received in fit",
        lambda p: str(_nested(p, base_training=None).modes["base_bn"][0])),
    Row("inference_updates_bn", "predict / evaluate: BN statistics updated",
        lambda p: " / ".join(map(facts.yes_no, facts.inference_updates_batch_norm().values()))),
    Row("frozen_weights", "MobileNetV2 base frozen: trainable weights of the base / of the tutorial model",
        lambda p: "{} / {}".format(*(facts.trainable_variable_counts("MobileNetV2", p)[k] for k in (
            "base frozen: the base's own trainable weights", "base frozen")))),
    Row("frozen_base", "base.trainable=False, base(x), fit: base kernels / BN statistics updated", _frozen_base),
    Row("nested_override", "base(x, training=False), base unfrozen, fit: base BN statistics updated",
        lambda p: facts.yes_no(bool(_nested(p).changed(probes.BN_MOVING)))),
    Row("nested_kernels", "same model: base kernels updated",
        lambda p: facts.yes_no(facts.base_kernels_changed(_nested(p)))),
    Row("nested_bn_mode", "same model: training value the base's BN received in fit",
        lambda p: str(_nested(p).modes["base_bn"][0])),
    Row("dropout_inside_base", "same model: Dropout inside the base ran in training mode in fit",
        lambda p: facts.yes_no(bool(_nested(p).ran_in_training_mode("base_dropout")))),
    Row("dropout_leak_fit", "same model: Dropout after the base ran in training mode in fit",
        lambda p: facts.yes_no(bool(_nested(p).ran_in_training_mode("head_dropout")))),
    Row("dropout_leak_call", "same model called with training=True: Dropout after the base drops",
        lambda p: facts.yes_no(facts.dropout_after_base_active(False))),
    Row("remedy", "remedy (every BN trainable=False), fit: BN statistics / gamma,beta / kernels updated",
        _remedy_summary),
    Row("remedy_dropout", "same model with the remedy: Dropout after the base ran in training mode in fit",
        lambda p: _head_dropout_active(p, remedy=True, base_training=False)),
    Row("remedy_alone", "remedy with base(x) (no training argument), fit: BN statistics / gamma,beta / kernels updated",
        lambda p: _remedy_summary(p, base_training=None)),
    Row("remedy_alone_dropout", "remedy with base(x): Dropout after the base ran in training mode in fit",
        lambda p: _head_dropout_active(p, remedy=True, base_training=None)),
    Row("recompile", "trainable=False set after compile, no recompile / after a recompile: fit updates the layer",
        lambda p: " / ".join(map(facts.yes_no, facts.trainable_change_needs_recompile(p).values()))),
    Row("head_dropout_plain", "base(x) with no training argument, fit: Dropout after the base ran in training mode",
        lambda p: facts.yes_no(bool(_nested(p, base_training=None).ran_in_training_mode("head_dropout")))),
    Row("autoscale_trainable", "AutoScaleDropout trainable=True: trainable weights / drops in training / fit moved its scale",
        _autoscale_row(True)),
    Row("autoscale_frozen", "AutoScaleDropout trainable=False: trainable weights / drops in training / fit moved its scale",
        _autoscale_row(False)),
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
    """Run every row under this process's Keras; returns the column with the versions it ran on."""
    keras = variants.load_keras()
    values = {}
    for row in ROWS:
        keras.utils.set_random_seed(seed)
        values[row.id] = row.measure(profile)
    return {"versions": variants.versions(), "values": values}


@dataclasses.dataclass
class Matrix:
    columns: dict[str, dict]  # variant name -> measure()'s result
    seconds: dict[str, float]

    def value(self, variant: str, row_id: str) -> str:
        return self.columns[variant]["values"][row_id]

    def label(self, variant: str) -> str:
        return f"{variant} {self.columns[variant]['versions']['keras']}"

    def _listing(self, names: list[str]) -> str:
        labels = [f"`{self.label(n)}`" for n in names]
        return " and ".join(labels) if len(labels) < 3 else ", ".join(labels[:-1]) + " and " + labels[-1]

    def verdict_sentences(self) -> dict[str, str]:
        """The chapter's conclusions as Markdown sentences, each produced from the measured values."""
        names = list(self.columns)
        overridden = [n for n in names if self.value(n, "nested_override") == "yes"]
        protected = [n for n in names if self.value(n, "nested_override") == "no"]
        leaking = [n for n in names if self.value(n, "dropout_leak_fit") == "no"]
        remedy_works = [n for n in names if self.value(n, "remedy") == "no / no / yes"]
        override = (f"Under {self._listing(overridden)}, `base(x, training=False)` did not protect the base's "
                    "BatchNormalization statistics: `fit` moved them" if overridden
                    else "No variant moved the base's statistics")
        override += f"; under {self._listing(protected)} it did protect them." if protected else "."
        leak = (f"Under {self._listing(leaking)}, the Dropout layer *after* the base received `training=False` "
                "during `fit` and dropped nothing: the fixed value reached layers outside the base." if leaking
                else "On every variant the Dropout after the base ran in training mode during `fit`.")
        failing = [n for n in names if n not in remedy_works]
        remedy = ("Setting every BatchNormalization layer's `trainable=False` kept the statistics and `gamma`/`beta` "
                  f"fixed while the kernels trained under {self._listing(remedy_works)}"
                  + (f", but not under {self._listing(failing)}." if failing else "."))
        alone = [n for n in names if self.value(n, "remedy_alone") == "no / no / yes"
                 and self.value(n, "remedy_alone_dropout") == "yes"]
        rest = [n for n in names if n not in alone]
        recommendation = (
            "Setting every BatchNormalization layer's `trainable=False` and calling the base *without* "
            "`training=False` kept the statistics and `gamma`/`beta` fixed, trained the kernels and left the head's "
            f"Dropout in training mode under {self._listing(alone)}"
            + (f", but not under {self._listing(rest)}." if rest else "."))
        return {"verdict_override": override, "verdict_leak": leak, "verdict_remedy": remedy,
                "verdict_recommendation": recommendation}

    def table(self, anchors: bool = False, only: tuple[str, ...] | None = None) -> FactTable:
        """One row per check (``only`` these row ids, if given), one column per variant; with ``anchors`` each row
        can be linked to."""
        names = list(self.columns)
        header = ["check", *map(self.label, names)]
        chosen = [row for row in ROWS if only is None or row.id in only]
        rows = [[row.question, *(self.value(n, row.id) for n in names)] for row in chosen]
        return FactTable(header, rows, row_ids=[f"evidence-{row.id}" for row in chosen] if anchors else None)


def run_variant(name: str, profile: profiles.Profile) -> dict:
    """Measure one variant in a child process with that variant's environment."""
    variant = variants.get(name)
    env = variants.environment(variant)
    # The child must not inherit a profile override that differs from the one we pass explicitly.
    env.pop(profiles.PROFILE_ENV, None)
    command = [sys.executable, "-m", "companion.matrix", "measure", "--profile", profile.name]
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"the fact suite failed under {name}:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def compute(profile: profiles.Profile, names: list[str] | None = None, progress: bool = True) -> Matrix:
    """Every variant's column; a column computed before with the same settings, versions and code is reused
    (:mod:`companion.cache`), so the chapters that show the matrix compute it once per build."""
    from tqdm.auto import tqdm

    names = names or list(variants.VARIANTS)
    columns, seconds = {}, {}
    for name in tqdm(names, desc="Keras variants", disable=not progress):
        kept = cache.Folder(cache.cache_dir() / "matrix" / f"{profile.name}-{name}", {
            "profile": repr(profile), "variant": repr(variants.get(name)), "this process": variants.versions()})
        if kept.has("column.json"):
            columns[name], seconds[name] = json.loads(kept.file("column.json").read_text())
            continue
        start = time.perf_counter()
        columns[name] = run_variant(name, profile)
        seconds[name] = time.perf_counter() - start
        kept.file("column.json").write_text(json.dumps([columns[name], seconds[name]]))
    return Matrix(columns, seconds)


if __name__ == "__main__":
    # A child process started by run_variant(): measure this process's Keras and print one JSON line.
    parser = argparse.ArgumentParser(prog="python -m companion.matrix")
    parser.add_argument("command", choices=["measure"])
    parser.add_argument("--profile", default="smoke")
    print(json.dumps(measure(profiles.get(parser.parse_args().profile))))
