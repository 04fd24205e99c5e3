"""Every check, defined once, in the order of the matrix's table. The claims, the figures, ``companion check`` and the
pages refer to these objects; the matrix (:mod:`companion.versions.matrix`) runs them in every column of their scope.

A check reads one scenario's result (several checks may read the same scenario, which runs once per process):

- one layer's behaviour (:mod:`companion.checks.layer_checks`);
- calling a model with augmentation inside outside ``fit`` (:mod:`companion.checks.calls`);
- when a ``trainable`` change counts, and ``base.trainable = True`` (:mod:`companion.checks.trainable_checks`);
- every kind of model fine-tuned every way (:mod:`companion.checks.fine_tuning`).
"""

from __future__ import annotations

import operator

from companion.checks import calls, fine_tuning, guard_checks, layer_checks, trainable_checks
from companion.checks.check import Check
from companion.checks.evidence import (
    AutoScale,
    BatchNormCall,
    BatchNormVariables,
    ByTraining,
    PredictEvaluate,
    Serving,
    Statistics,
    TrainableWeights,
    Training,
)


def _item(*keys):
    """Reads ``result[k1][k2]...``."""
    def read(result):
        for key in keys:
            result = result[key]
        return result

    return read


# --- One layer ----------------------------------------------------------------------------------------------------

DROPOUT_INVERTED = Check(
    "dropout_inverted", "Dropout(0.5), training=True: about half zeroed, survivors x2", layer_checks.dropout_calls,
    lambda r: r["training=True"].inverted(0.5), documented=True, short="Dropout(0.5), training=True: inverted dropout")
DROPOUT_INFERENCE = Check(
    "dropout_inference", "Dropout, training=False: output equals input", layer_checks.dropout_calls,
    lambda r: r["training=False"].identity, documented=True, short="Dropout, training=False: identity")
DROPOUT_FROZEN_DROPS = Check(
    "dropout_frozen_drops", "Dropout called alone with trainable=False still drops under training=True",
    layer_checks.dropout_calls, lambda r: r["trainable=False, training=True"].fraction_zeroed > 0, documented=True,
    short="frozen Dropout, training=True: drops")
FORCED_DROPOUT_PREDICT = Check(
    "forced_dropout_predict", "Dropout(0.5)(x, training=True) in a functional model: drops in predict",
    layer_checks.forced_dropout_in_predict, documented=True, short="Dropout(x, training=True): drops in predict")
BN_CALLS = {
    (trainable, training): Check(
        f"bn_{'trainable' if trainable else 'frozen'}_{str(training).lower()}",
        f"BN trainable={trainable}, called with training={training}: normalised with / moving statistics moved",
        layer_checks.batch_norm_calls, _item((trainable, training)),
        documented=BatchNormCall(Statistics.BATCH, True) if trainable and training
        else BatchNormCall(Statistics.MOVING, False),
        short=f"BN trainable={trainable}, training={training}")
    for trainable, training in ((True, True), (True, False), (False, True), (False, False), (True, None))}
BN_VARIABLES = Check(
    "bn_variables", "BN per channel: parameters / moving statistics non-trainable / gamma,beta trainable",
    layer_checks.batch_norm_variables, documented=BatchNormVariables(4, True, True), short="BN's variables")
BN_BATCH_DEPENDENCE = Check(
    "bn_batch_dependence", "one image's BN output depends on its batch: training=True / training=False",
    layer_checks.batch_norm_batch_dependence, documented=ByTraining(True, False), short="BN output depends on batch")
BN_MOVING_AVERAGE = Check(
    "bn_moving_average", "BN training-mode call: new moving mean = momentum x old + (1 - momentum) x batch mean",
    layer_checks.batch_norm_moving_average, documented=True, short="BN moving mean: exponential average")
PREDICT_MODE, EVALUATE_MODE, CALL_MODE = (
    Check(f"{how}_mode", f"training value a layer's call receives in {words}", layer_checks.modes_received,
          _item(how), documented=documented, short=f"{words}: training received")
    for how, words, documented in (
        ("predict", "predict", Training.FALSE), ("evaluate", "evaluate", Training.FALSE),
        ("call", "model(x), no training argument", lambda value: value in (Training.FALSE, Training.NONE))))
INFERENCE_MOVES_BN = Check(
    "inference_moves_bn", "predict / evaluate: BN statistics moved", layer_checks.inference_moves_batch_norm,
    documented=PredictEvaluate(False, False), short="predict / evaluate: BN statistics moved")
DENSE_IGNORES_TRAINING = Check(
    "dense_training_ignored", "Dense called with training=True and with training=False: same output",
    layer_checks.dense_ignores_training, documented=True, short="Dense ignores training")
FLATTEN_LAYERS = Check(
    "flatten_layers", "the remedy's walk, base._flatten_layers(include_self=True, recursive=True), reaches the 2 BN "
    "layers custom blocks hold", layer_checks.flatten_layers_reaches_held_layers, documented=True,
    short="_flatten_layers reaches the layers blocks hold")
TRAINABLE_CHANGES_MODE = Check(
    "trainable_changes_mode", "layers other than BN whose output depends on training "
    f"({', '.join(layer_checks.MODE_LAYERS)}), called with training=True: trainable=False changed their mode",
    layer_checks.trainable_changes_mode, documented=lambda count: count.none,
    short="trainable=False changed another layer's mode")
AUTOSCALE = {
    trainable: Check(
        f"autoscale_{'trainable' if trainable else 'frozen'}",
        f"AutoScaleDropout trainable={trainable}: trainable weights / drops in training / fit moved its scale / fit "
        "ran it in training mode", layer_checks.autoscale_dropout_facts, _item(trainable),
        documented=AutoScale(int(trainable), True, trainable, True), short=f"AutoScaleDropout trainable={trainable}")
    for trainable in (True, False)}
AUTOSCALE_FORCED = {
    trainable: Check(
        f"autoscale_forced_{'trainable' if trainable else 'frozen'}",
        f"AutoScaleDropout(0.5)(x, training=True) in a functional model, trainable={trainable}: drops in predict",
        layer_checks.autoscale_forced_in_predict, _item(trainable), documented=True,
        short=f"AutoScaleDropout(x, training=True), trainable={trainable}: drops in predict")
    for trainable in (True, False)}
FROZEN_WEIGHTS = Check(
    "frozen_weights", "base frozen: trainable weights of the base / of the tutorial model around it",
    layer_checks.frozen_trainable_weights, documented=TrainableWeights(0, 2), short="frozen base: trainable weights")

# --- Calls outside fit ------------------------------------------------------------------------------------------------

SERVING = {
    how: Check(f"serving_{key}", f"Input -> RandomFlip -> BN -> Dropout, {how}: augmented / BN statistics moved / "
               "Dropout dropped", calls.serving_calls, _item(how), documented=Serving(False, False, False),
               short=f"augmentation inside, {how}")
    for how, key in zip(calls.SERVING, ("call", "call_false", "predict"))}

# --- trainable -------------------------------------------------------------------------------------------------------

TRAINABLE_TIMING = Check(
    "trainable_timing", "trainable=False set on a layer before the first fit / after a fit / then "
    "make_train_function(force=True) / then compile: the next fit left the layer alone",
    trainable_checks.trainable_timing, documented=operator.attrgetter("after_recompile"),
    short="trainable changed after compile: honoured")
OPTIMIZER_REUSE = Check(
    "optimizer_reuse", "base unfrozen, then compiled with phase 1's optimizer instance / not compiled, "
    "make_train_function(force=True) / compiled with a new optimizer: fit trained the base",
    trainable_checks.optimizer_reuse, documented=lambda value: value.new_instance is True,
    short="unfreezing: optimizer reused / train step remade / new optimizer")
TRAINABLE_AGAIN = Check(
    "trainable_setter", "base.trainable = True on a trainable base whose layers were frozen one by one: unfreezes "
    "them", trainable_checks.trainable_again, documented=True, short="base.trainable = True again: unfroze them")
FALSE_THEN_TRUE = Check(
    "false_then_true", "same base, base.trainable = False then True: unfreezes them", trainable_checks.false_then_true,
    documented=True, short="base.trainable = False, then True: unfroze them")
STAGED_UNFREEZING = Check(
    "staged_unfreezing", "unfreeze, refreeze the first layers, fit; base.trainable = True, compile, fit: the second "
    "fit trained the refrozen layers", trainable_checks.staged_unfreezing, documented=True,
    short="staged unfreezing: trained them")

CHECKS: tuple[Check, ...] = (
    DROPOUT_INVERTED, DROPOUT_INFERENCE, DROPOUT_FROZEN_DROPS, FORCED_DROPOUT_PREDICT, *BN_CALLS.values(),
    BN_VARIABLES, BN_BATCH_DEPENDENCE, BN_MOVING_AVERAGE, PREDICT_MODE, EVALUATE_MODE, CALL_MODE, INFERENCE_MOVES_BN,
    DENSE_IGNORES_TRAINING, FLATTEN_LAYERS, TRAINABLE_CHANGES_MODE, *AUTOSCALE.values(), *AUTOSCALE_FORCED.values(),
    FROZEN_WEIGHTS,
    *SERVING.values(), TRAINABLE_TIMING, OPTIMIZER_REUSE, TRAINABLE_AGAIN, FALSE_THEN_TRUE, STAGED_UNFREEZING,
    *fine_tuning.CHECKS.values(), *guard_checks.CHECKS.values())


def by_id(checks=CHECKS) -> dict[str, Check]:
    """Check id -> check; refuses two checks with one id, which would share a value in JSON."""
    found: dict[str, Check] = {}
    for check in checks:
        if check.id in found:
            raise ValueError(f"two checks have the id {check.id!r}")
        found[check.id] = check
    return found


BY_ID = by_id()
