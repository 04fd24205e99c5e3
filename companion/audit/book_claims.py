"""The book's own claims: sentences of its chapters that state what the flags do, each registered here by quotation
(its text is the chapter's sentence, word for word, claim links aside), with the reading tested, the checks it rests
on and the columns it speaks of. The self-audit (:mod:`companion.audit.prose`) fails on a sentence of a chapter that
states a behaviour of the flags and is neither registered here nor backed by a glued number;
``tests/test_chapters_audit.py`` fails on a registered sentence that is no longer in its chapter or whose verdict over
its scope is not "holds".
"""

from __future__ import annotations

from companion.audit.claim import Claim, all_of, in_inference_mode
from companion.checks import evidence
from companion.checks import registry as r
from companion.checks.evidence import AutoScale, BatchNormCall, Serving, Statistics, Training
from companion.checks.fine_tuning import (
    CUSTOM_BLOCKS,
    CUSTOM_LOOP,
    FLAT,
    OWN_DROPOUT,
    SUBCLASSED,
    SUBCLASSED_PASSING,
    departures,
)
from companion.checks.fine_tuning import check as fine_tuned
from companion.checks.ways import PLAIN, REMEDY, REMEDY_TRAINING_FALSE, REMEDY_WRAPPED, TRAINING_FALSE, WRAPPED
from companion.core.columns import (
    JAX,
    KERAS_3_ON_TENSORFLOW,
    NIGHTLY,
    NIGHTLY_AND_TF_KERAS,
    PYTORCH,
    RELEASES,
    RELEASES_AND_TF_KERAS,
    RELEASES_ON_JAX,
    TF_KERAS,
)
from companion.tutorials import recipes
from companion.tutorials.recipe_checks import CALLS

AS_WRITTEN, PLAIN_CALL, WRAPPED_CALL = (fine_tuned(FLAT, way) for way in (TRAINING_FALSE, PLAIN, WRAPPED))
BN = r.BN_CALLS
INFERENCE = BatchNormCall(Statistics.MOVING, False)  # a BatchNormalization call in inference mode


def tuned(values, check):
    return values[check].fine_tuning


def override(values) -> bool:
    """The flat base written as ``base(x, training=False)`` received training=True in fine-tuning and moved its
    statistics."""
    phase = tuned(values, AS_WRITTEN)
    return phase.bn_received is Training.TRUE and not phase.statistics.none


def kept(values) -> bool:
    """The same base received training=False and kept its statistics."""
    phase = tuned(values, AS_WRITTEN)
    return phase.bn_received is Training.FALSE and phase.statistics.none


def leaks(values) -> bool:
    """The fixed False reached the Dropout after the base: it did not drop in fine-tuning."""
    return tuned(values, AS_WRITTEN).dropout_after is False


def remedy_protects(values) -> bool:
    """With the remedy, whichever the call, the base's BN statistics and gamma/beta stayed fixed and its kernels
    trained (a flat base and one whose BN layers sit in custom blocks)."""
    return all(phase.statistics.none and not phase.affine and phase.kernels.all
               for kind in (FLAT, CUSTOM_BLOCKS) for way in (REMEDY, REMEDY_TRAINING_FALSE)
               for phase in [tuned(values, fine_tuned(kind, way))])


def two_by_two(values) -> bool:
    return values[BN[True, True]] == BatchNormCall(Statistics.BATCH, True) and all(
        values[BN[key]] == INFERENCE for key in ((True, False), (False, True), (False, False), (True, None)))


RELEASE_OVERRIDE = ("On every Keras 3 release, `base_model(x, training=False)` does not keep a pretrained base's "
                    "BatchNormalization in inference mode once the base is unfrozen: `fit` moves its statistics.")
OVERRIDE_READING = ("A base called as base(x, training=False) and unfrozen received training=True in fine-tuning and "
                    "moved its BN statistics.")
TIMING = ("The first three answers differ by Keras and backend: TensorFlow traces the train step at the first `fit` "
          "(tf-keras at `compile`) and keeps it, PyTorch reads `trainable_weights` at every step, and JAX raises an "
          "error rather than train a model whose trainable variables changed.")
SERVING_INSIDE = r.SERVING["model(x)"]
NIGHTLY_SUMMARY = ("Keras' nightly build (keras-nightly, from the main branch after keras-team/keras PR #23364) and "
                   "tf-keras keep it; on keras-nightly the fixed `False` then also reaches the Dropout after the base, "
                   "which stops dropping.")

BOOK_CLAIMS = [
    # --- trainable_versus_training ---
    Claim("C55", "trainable_versus_training", "`predict` and `evaluate` pass `training=False` to the layers of a "
          "model in every column of the matrix.",
          "The training value a layer's call receives in predict and in evaluate is False.",
          (r.PREDICT_MODE, r.EVALUATE_MODE),
          lambda v: v[r.PREDICT_MODE] is Training.FALSE and v[r.EVALUATE_MODE] is Training.FALSE),
    Claim("C70", "trainable_versus_training", "On Keras 3's TensorFlow backend the assignment leaves the layers frozen "
          "one by one as they were.",
          "base.trainable = True on a trainable base whose layers were frozen one by one leaves them frozen.",
          (r.TRAINABLE_AGAIN,), lambda v: v[r.TRAINABLE_AGAIN] is False, scope=KERAS_3_ON_TENSORFLOW),
    Claim("C71", "trainable_versus_training", "Setting `base_model.trainable = False` first, then `True`, unfreezes "
          "them in every column of the matrix.",
          "base.trainable = False, then True, unfreezes the layers frozen one by one.",
          (r.FALSE_THEN_TRUE,), lambda v: v[r.FALSE_THEN_TRUE] is True),
    Claim("C56", "trainable_versus_training", "Keras' Dropout is *inverted* dropout: in training mode it zeroes each "
          "input with probability `rate` and multiplies the survivors by `1/(1-rate)`, so that the expected output "
          "equals the input and nothing is rescaled at inference.",
          "Dropout(0.5) under training=True zeroes about half of its inputs and doubles the rest; under "
          "training=False it is the identity.",
          (r.DROPOUT_INVERTED, r.DROPOUT_INFERENCE),
          lambda v: v[r.DROPOUT_INVERTED] is True and v[r.DROPOUT_INFERENCE] is True),
    Claim("C57", "trainable_versus_training", "With `trainable=False` the layer still drops.",
          "A Dropout layer called on its own with trainable=False still drops under training=True.",
          (r.DROPOUT_FROZEN_DROPS,), lambda v: v[r.DROPOUT_FROZEN_DROPS] is True,
          why="'the layer' is the Dropout called on its own in the cell; inside a model, whether a frozen base's own "
              "Dropout drops depends on the call and the Keras (C28)"),
    Claim("C58", "trainable_versus_training", "Called on its own without a `training` argument, a layer runs in "
          "inference mode.",
          "A Dropout called without training receives False or None, and a BN layer called so normalises with its "
          "moving statistics and leaves them.",
          (r.CALL_MODE, BN[True, None]),
          lambda v: v[r.CALL_MODE] in (Training.FALSE, Training.NONE) and v[BN[True, None]] == INFERENCE),
    Claim("C72", "trainable_versus_training", "An augmentation layer's own `call` defaults to `training=True`, so a "
          "direct `model(x)` augments its input in every column of the matrix.",
          "model(x) on Input -> RandomFlip -> BN -> Dropout runs the RandomFlip in training mode.",
          (SERVING_INSIDE,), lambda v: v[SERVING_INSIDE].augmented is True),
    Claim("C73", "trainable_versus_training", "On every Keras 3 release that default also reaches the layers after the "
          "augmentation, so that a BatchNormalization after it moves its statistics.",
          "model(x) on Input -> RandomFlip -> BN -> Dropout moves the BN statistics.",
          (SERVING_INSIDE,), lambda v: v[SERVING_INSIDE].statistics_moved is True, scope=RELEASES),
    Claim("C74", "trainable_versus_training", "Keras' nightly build (keras-nightly), which contains keras-team/keras "
          "PR #23166 (\"Don't leak a layer's signature-default call-context arg to sibling layers\"), and tf-keras "
          "keep the default inside the augmentation layer.",
          "model(x) on Input -> RandomFlip -> BN -> Dropout leaves the BN statistics and the Dropout in inference "
          "mode.",
          (SERVING_INSIDE,),
          lambda v: v[SERVING_INSIDE].statistics_moved is False and v[SERVING_INSIDE].dropout is False,
          scope=NIGHTLY_AND_TF_KERAS),
    Claim("C75", "trainable_versus_training", "Serve such a model with `model(x, training=False)` or `predict`: "
          "neither of them augmented or moved a statistic in any column.",
          "model(x, training=False) and predict on that model neither augment, nor move BN statistics, nor drop.",
          (r.SERVING["model(x, training=False)"], r.SERVING["predict"]),
          lambda v: v[r.SERVING["model(x, training=False)"]] == Serving(False, False, False)
          and v[r.SERVING["predict"]] == Serving(False, False, False)),
    Claim("C59", "trainable_versus_training", "`trainable=False` empties `trainable_weights` and freezes the scale, "
          "yet the layer keeps dropping whenever it runs in training mode: the two flags act independently, as the "
          "FAQ says.",
          "A frozen AutoScaleDropout has no trainable weights, fit leaves its scale, and it drops in training mode "
          "(called so, and in fit).",
          (r.AUTOSCALE[False],), lambda v: v[r.AUTOSCALE[False]] == AutoScale(0, True, False, True)),
    Claim("C60", "trainable_versus_training", "It has trainable weights (`gamma`, `beta`) and non-trainable state: "
          "the moving mean and variance, which training-mode calls update as an exponential moving average of the "
          "batches' statistics, not by backpropagation.",
          "gamma/beta are trainable and the moving statistics are not; a training-mode call updates the moving mean "
          "as momentum x old + (1 - momentum) x batch mean; fit's gradient step leaves them where the layer runs in "
          "inference mode.",
          (r.BN_VARIABLES, r.BN_MOVING_AVERAGE, WRAPPED_CALL),
          lambda v: v[r.BN_VARIABLES].gamma_beta_trainable and v[r.BN_VARIABLES].moving_statistics_non_trainable
          and v[r.BN_MOVING_AVERAGE] is True and in_inference_mode(v, WRAPPED_CALL).statistics.none),
    Claim("C61", "trainable_versus_training", "Only `trainable=True` with `training=True` normalises with the batch's "
          "own statistics and moves the moving statistics.",
          "A BN layer normalises with the batch statistics and updates its moving statistics when trainable and "
          "called with training=True, and in no other case (nor without a training argument).",
          tuple(BN.values()), two_by_two),
    Claim("C62", "trainable_versus_training", "A frozen layer called with `training=True` still normalises with its "
          "moving statistics: this is the FAQ's special case, `trainable=False` makes BatchNormalization run in "
          "inference mode, so the Stack Exchange answer's reading of `training` holds for a trainable layer only.",
          "A frozen BN layer called with training=True normalises with its moving statistics and does not update "
          "them.",
          (BN[False, True],), lambda v: v[BN[False, True]] == INFERENCE),
    Claim("C54", "trainable_versus_training", "Compiling again after changing `trainable` made the next `fit` honour "
          "the change in every column of the matrix.",
          "trainable=False set after a fit, then compile: the next fit leaves the layer alone.",
          (r.TRAINABLE_TIMING,), lambda v: v[r.TRAINABLE_TIMING].after_recompile is True),
    Claim("C76", "trainable_versus_training", TIMING,
          "On Keras 3 on TensorFlow, a change between compile and the first fit is honoured, one after a fit is not.",
          (r.TRAINABLE_TIMING,),
          lambda v: v[r.TRAINABLE_TIMING].before_first_fit is True and v[r.TRAINABLE_TIMING].after_fit is False,
          scope=KERAS_3_ON_TENSORFLOW),
    Claim("C77", "trainable_versus_training", TIMING,
          "On tf-keras, a change after compile is not honoured, before or after the first fit.",
          (r.TRAINABLE_TIMING,),
          lambda v: v[r.TRAINABLE_TIMING].before_first_fit is False and v[r.TRAINABLE_TIMING].after_fit is False,
          scope=TF_KERAS),
    Claim("C78", "trainable_versus_training", TIMING,
          "On PyTorch, a change is honoured at the next fit, whenever it is made.",
          (r.TRAINABLE_TIMING,),
          lambda v: all(getattr(v[r.TRAINABLE_TIMING], moment) is True for moment in (
              "before_first_fit", "after_fit", "after_make_train_function")), scope=PYTORCH),
    Claim("C79", "trainable_versus_training", TIMING,
          "On JAX, fit raises after a change made after a fit, until the model is compiled again.",
          (r.TRAINABLE_TIMING,), lambda v: isinstance(v[r.TRAINABLE_TIMING].after_fit, evidence.Failed), scope=JAX),
    Claim("C80", "trainable_versus_training", "A new optimizer trained the unfrozen base in every column; phase 1's "
          "instance, built for the head's variables only, refused the base's variables (the error is listed under "
          "{ref}`the matrix <matrix-errors>`).",
          "After unfreezing, compiling with a new optimizer trains the base; compiling with phase 1's instance "
          "raises.",
          (r.OPTIMIZER_REUSE,),
          lambda v: v[r.OPTIMIZER_REUSE].new_instance is True
          and isinstance(v[r.OPTIMIZER_REUSE].same_instance, evidence.Failed)),
    # --- keras3_surprise ---
    Claim("C82", "keras3_surprise", "On every Keras 3 release, `fit`'s `training=True` therefore reached the "
          "BatchNormalization of a base written as `base(x, training=False)` and moved its statistics.",
          OVERRIDE_READING, (AS_WRITTEN,), override, scope=RELEASES),
    Claim("C83", "keras3_surprise", "On keras-nightly the base called as `base(x, training=False)` received "
          "`training=False` during `fit` and its statistics stayed fixed.",
          "A base called as base(x, training=False) and unfrozen received training=False in fine-tuning and kept its "
          "BN statistics.", (AS_WRITTEN,), kept, scope=NIGHTLY),
    Claim("C84", "keras3_surprise", "Keras' private `_flatten_layers` reached the BatchNormalization layers that "
          "custom blocks hold in every column of the matrix, and a check of the matrix fails on the first Keras "
          "where it does not.",
          "_flatten_layers(include_self=True, recursive=True) reaches the two BN layers of the custom-block base, and "
          "the remedy froze every BN layer of it.",
          (r.FLATTEN_LAYERS, fine_tuned(CUSTOM_BLOCKS, REMEDY)),
          lambda v: v[r.FLATTEN_LAYERS] is True
          and v[fine_tuned(CUSTOM_BLOCKS, REMEDY)].remedy_froze
          == tuned(v, fine_tuned(CUSTOM_BLOCKS, REMEDY)).statistics.total),
    Claim("C63", "keras3_surprise", "A frozen BatchNormalization layer runs in inference mode whatever `training` it "
          "receives.",
          "A frozen BN layer called with training=True normalises with its moving statistics and leaves them; frozen "
          "inside an unfrozen base, fine-tuning leaves them, with or without training=False.",
          (BN[False, True], fine_tuned(FLAT, REMEDY), fine_tuned(FLAT, REMEDY_TRAINING_FALSE)),
          lambda v: v[BN[False, True]] == INFERENCE and all(
              tuned(v, fine_tuned(FLAT, way)).statistics.none for way in (REMEDY, REMEDY_TRAINING_FALSE))),
    Claim("C81", "keras3_surprise", "Kept beside the remedy, `training=False` makes no difference to "
          "BatchNormalization in any column of the matrix; what it does to the other layers, the base's own Dropout "
          "and the head's, depends on the Keras (the table further down).",
          "With the remedy, the base's BN statistics and gamma/beta do the same with base(x, training=False) as with "
          "base(x), in both phases.",
          (fine_tuned(FLAT, REMEDY), fine_tuned(FLAT, REMEDY_TRAINING_FALSE)),
          lambda v: all((getattr(v[fine_tuned(FLAT, REMEDY)], phase).statistics,
                         getattr(v[fine_tuned(FLAT, REMEDY)], phase).affine)
                        == (getattr(v[fine_tuned(FLAT, REMEDY_TRAINING_FALSE)], phase).statistics,
                            getattr(v[fine_tuned(FLAT, REMEDY_TRAINING_FALSE)], phase).affine)
                        for phase in ("frozen_phase", "fine_tuning"))),
    # --- is_my_model_affected ---
    Claim("C85", "is_my_model_affected", "On the JAX backend of the Keras 3 releases, the layers inside a subclassed "
          "transfer model whose `call` passes nothing on ran in inference mode during `fit`, and those of one whose "
          "`call` passes its `training` on did not.",
          "In fit, the subclassed model that passes nothing on: its base's BN kept its statistics and the head's "
          "Dropout did not drop; the one that passes training on: BN statistics moved and the Dropout dropped.",
          (fine_tuned(SUBCLASSED, PLAIN), fine_tuned(SUBCLASSED_PASSING, PLAIN)),
          lambda v: tuned(v, fine_tuned(SUBCLASSED, PLAIN)).statistics.none
          and tuned(v, fine_tuned(SUBCLASSED, PLAIN)).dropout_after is False
          and not tuned(v, fine_tuned(SUBCLASSED_PASSING, PLAIN)).statistics.none
          and tuned(v, fine_tuned(SUBCLASSED_PASSING, PLAIN)).dropout_after is True, scope=RELEASES_ON_JAX),
    Claim("C86", "is_my_model_affected", "A custom training loop calling `model(x, training=True)` departed from the "
          "tutorials' intent exactly where `fit` did, in every column: the override is the functional model's, not "
          "`fit`'s.",
          "The tutorial model fine-tuned by a custom loop departs from the tutorials' intent as the same model fitted "
          "does, for base(x, training=False) and for the remedy with base(x).",
          (fine_tuned(CUSTOM_LOOP, TRAINING_FALSE), AS_WRITTEN, fine_tuned(CUSTOM_LOOP, REMEDY),
           fine_tuned(FLAT, REMEDY)),
          lambda v: all(departures(v[fine_tuned(CUSTOM_LOOP, way)], way.remedy)
                        == departures(v[fine_tuned(FLAT, way)], way.remedy) for way in (TRAINING_FALSE, REMEDY))),
    Claim("C87", "is_my_model_affected", "On every Keras 3 release, the `InferenceMode` wrapper with the remedy kept "
          "the base's own Dropout off, its statistics fixed and the head's Dropout dropping.",
          "A base with its own Dropout, fine-tuned through the InferenceMode wrapper with the remedy, behaves as the "
          "tutorials intend in both phases.",
          (fine_tuned(OWN_DROPOUT, REMEDY_WRAPPED),),
          lambda v: not departures(v[fine_tuned(OWN_DROPOUT, REMEDY_WRAPPED)], True), scope=RELEASES),
    # --- summary ---
    Claim("C88", "summary", RELEASE_OVERRIDE, OVERRIDE_READING, (AS_WRITTEN,), override, scope=RELEASES),
    Claim("C89", "summary", NIGHTLY_SUMMARY,
          "A base called as base(x, training=False) and unfrozen kept its BN statistics in fine-tuning.",
          (AS_WRITTEN,), kept, scope=NIGHTLY_AND_TF_KERAS),
    Claim("C90", "summary", NIGHTLY_SUMMARY,
          "On keras-nightly, the Dropout after a base called as base(x, training=False) does not drop in fit.",
          (AS_WRITTEN,), leaks, scope=NIGHTLY),
    Claim("C67", "summary", "Only trainable=True with training=True trains the layer's statistics; a frozen layer "
          "behaves as in inference whatever training it receives.",
          "A BN layer updates its moving statistics (and normalises with the batch) only when trainable and called "
          "with training=True; frozen, it normalises with its moving statistics under training=True.",
          tuple(BN.values()), two_by_two),
    # --- introduction ---
    Claim("C91", "introduction", RELEASE_OVERRIDE, OVERRIDE_READING, (AS_WRITTEN,), override, scope=RELEASES),
    Claim("C92", "introduction", "On Keras' main branch (keras-nightly here), keras-team/keras PR #23364 keeps the "
          "fixed value, and no release contains it yet; there the fixed `False` also reaches the Dropout after the "
          "base, which stops dropping.",
          "On keras-nightly, a base called as base(x, training=False) kept its BN statistics in fine-tuning, and the "
          "Dropout after it did not drop.", (AS_WRITTEN,), all_of(kept, leaks), scope=NIGHTLY),
    Claim("C93", "introduction", "tf-keras, the Keras 2 line that `tf.keras` was until TensorFlow 2.16, keeps it.",
          "On tf-keras, a base called as base(x, training=False) kept its BN statistics in fine-tuning, and the "
          "Dropout after it dropped.", (AS_WRITTEN,), lambda v: kept(v) and tuned(v, AS_WRITTEN).dropout_after is True,
          scope=TF_KERAS),
    Claim("C69", "introduction", "The fix, on every Keras: after unfreezing the base, freeze every BatchNormalization "
          "layer in it, at any depth, then compile.",
          "With every BN layer frozen after unfreezing, fine-tuning moves no BN statistics and no gamma/beta while "
          "the kernels train, whichever the call of the base (a flat base, and one whose BN layers sit in custom "
          "blocks).",
          tuple(fine_tuned(kind, way) for kind in (FLAT, CUSTOM_BLOCKS) for way in (REMEDY, REMEDY_TRAINING_FALSE)),
          remedy_protects),
    # --- upstream_reports ---
    Claim("C94", "upstream_reports", "It is a regression of the main branch, from keras-team/keras PR #23364 (\"Make "
          "use of `Layer`'s propagation of call context arguments in `Model`s too\"): the functional model no longer "
          "passes its own `training` to every layer, and the explicit `False` resolved for the base stays in the "
          "shared call context, where the Dropout, called without `training`, finds it.",
          "On keras-nightly, a base called as base(x, training=False) received training=False in fine-tuning, and the "
          "Dropout after it did not drop.", (AS_WRITTEN,), all_of(kept, leaks), scope=NIGHTLY),
    Claim("C95", "upstream_reports", "In a functional model whose base (a nested model) is called as "
          "`base(x, training=False)`, the `Dropout` that follows the base receives `training=False` during `fit` and "
          "drops nothing, on Keras' main branch (keras-nightly).",
          "On keras-nightly, the Dropout after a base called as base(x, training=False) did not drop in fit, in either "
          "phase.", (AS_WRITTEN,), lambda values: all(phase.dropout_after is False for phase in (
              values[AS_WRITTEN].frozen_phase, values[AS_WRITTEN].fine_tuning)), scope=NIGHTLY),
    Claim("C96", "upstream_reports", "The released Keras 3 versions give it `training=True`, as `fit` should; so does "
          "tf-keras.",
          "On the Keras 3 releases and tf-keras, the Dropout after a base called as base(x, training=False) dropped in "
          "fit, in both phases.", (AS_WRITTEN,), lambda values: all(phase.dropout_after is True for phase in (
              values[AS_WRITTEN].frozen_phase, values[AS_WRITTEN].fine_tuning)), scope=RELEASES_AND_TF_KERAS),
    # --- the tutorial pages ---
    Claim("C64", "mobilenet_v2_2019", "It never passes a `training` argument.",
          "The 2019 recipe's model calls its base without a training argument.",
          (CALLS[recipes.MOBILENET_V2_2019],), lambda v: v[CALLS[recipes.MOBILENET_V2_2019]] is Training.NONE),
    Claim("C65", "mobilenet_v2_2019", "The base receives the `training` value of the outer call, so during `fit` its "
          "unfrozen BatchNormalization layers run in training mode: they normalise with each batch's statistics and "
          "update their moving statistics.",
          "A base called without a training argument receives fit's training=True, and its unfrozen BN layers move "
          "their statistics; a trainable BN layer called with training=True normalises with the batch.",
          (PLAIN_CALL, BN[True, True]),
          lambda v: tuned(v, PLAIN_CALL).bn_received is Training.TRUE and not tuned(v, PLAIN_CALL).statistics.none
          and v[BN[True, True]].normalised_with is Statistics.BATCH),
]
