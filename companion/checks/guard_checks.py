"""The reader's guard (:mod:`companion.versions.guard`) judged in the matrix: for each kind of model, over every way
it is fine-tuned and both phases (:mod:`companion.checks.fine_tuning`, where the guard watches the same training step),
whether it fired exactly where a layer did not behave as the model states.

What the model states, from the way it is fine-tuned and the phase: with the base frozen (first phase) or the remedy
applied, no BatchNormalization statistic moves and, under the remedy, no gamma or beta; with the base called with
``training=False`` (directly or inside the ``InferenceMode`` wrapper), no BatchNormalization statistic moves and the
base's own Dropout does not drop; the Dropout after the base, which the model leaves to ``fit``, drops.
"""

from __future__ import annotations

import functools

from companion.checks import evidence, fine_tuning
from companion.checks.check import Check, result
from companion.checks.fine_tuning import ModelKind
from companion.checks.ways import Call, Way

# The calls that state inference mode for the base.
STATES_INFERENCE = (Call.TRAINING_FALSE, Call.WRAPPED)


def broke_what_is_stated(phase: evidence.Phase, way: Way, frozen: bool) -> bool:
    """Whether a layer did not behave as the model states in ``phase`` (see the module's docstring)."""
    inference = way.call in STATES_INFERENCE
    statistics_fixed = frozen or way.remedy or inference
    return bool((statistics_fixed and phase.statistics.changed)
                or ((frozen or way.remedy) and phase.affine)
                or (inference and phase.dropout_inside is True)
                or phase.dropout_after is False)


def guarded(keras, kind: ModelKind) -> evidence.Guarded | evidence.NotApplicable | evidence.Failed:
    """The guard over ``kind``'s fine-tunings (their results, computed once per process, are shared with the
    fine-tuning checks)."""
    broken = fired_on_broken = as_stated = silent = 0
    for way in kind.ways:
        value = result(fine_tuning.check(kind, way).scenario)
        if isinstance(value, (evidence.NotApplicable, evidence.Failed)):
            return value
        for phase, frozen in ((value.frozen_phase, True), (value.fine_tuning, False)):
            fired = phase.guard_flagged > 0
            if broke_what_is_stated(phase, way, frozen):
                broken, fired_on_broken = broken + 1, fired_on_broken + fired
            else:
                as_stated, silent = as_stated + 1, silent + (not fired)
    return evidence.Guarded(broken, fired_on_broken, as_stated, silent)


CHECKS: dict[ModelKind, Check] = {
    kind: Check(f"guard.{kind.key}", f"{kind.name}: the guard fired where the model broke what it states, only there",
                functools.partial(guarded, kind=kind), documented=lambda value: value.exact, scope=kind.scope,
                short=f"guard: {kind.name}")
    for kind in fine_tuning.KINDS}
