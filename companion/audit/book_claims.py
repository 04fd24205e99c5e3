"""The book's own claims: what its chapters state about the flags, audited like the sources' (the self-audit: each is
cited next to its sentence as ``[C54](claims_audit.ipynb#claim-C54)``).
"""

from __future__ import annotations

from companion.audit.claim import (
    Claim,
    all_of,
    equals,
    in_inference_mode,
    no_bn_moved,
    not_training_mode,
    some_bn_moved,
)
from companion.checks.evidence import (
    AutoScale,
    Recompile,
    Statistics,
    Training,
)
from companion.versions.matrix import REMEDY_WORKS

_INFERENCE_MODE_WHEN_FROZEN = all_of(equals("bn_frozen_stats", Statistics.MOVING), equals("bn_frozen_updates", False))
# The book's recommendation (C66, C68, C69: freeze every BN layer after unfreezing, call the base without training):
# its reading, evidence and test.
_RECOMMENDED = ("Every BN layer frozen after unfreezing and the base called without training: statistics and "
                "gamma/beta kept, kernels trained and the head's Dropout in training mode (small model), no BN "
                "statistics moved (MobileNetV2, Xception).",
                ("remedy_alone", "remedy_alone_dropout", "mobilenet_remedy", "xception_remedy"),
                all_of(equals("remedy_alone", REMEDY_WORKS), equals("remedy_alone_dropout", True),
                       no_bn_moved("mobilenet_remedy"), no_bn_moved("xception_remedy")))
_TWO_BY_TWO = all_of(equals("bn_trainable_stats", Statistics.BATCH), equals("bn_inference_stats", Statistics.MOVING),
                   equals("bn_frozen_stats", Statistics.MOVING), equals("bn_trainable_updates", True),
                   equals("bn_inference_updates", False), equals("bn_frozen_updates", False))
BOOK_CLAIMS = [
    Claim("C54", "trainable_versus_training", "a change made after compile takes effect at the next compile",
          "A trainable change made after compile is ignored by fit until the next compile, and honoured after.",
          ("recompile",), equals("recompile", Recompile(without_recompile=True, after_recompile=False))),
    Claim("C55", "trainable_versus_training", "fit passes training=True to the layers, predict and evaluate pass "
          "training=False",
          "The training value a layer's call receives is True in fit, also inside a base called with "
          "training=False, and False in predict and in evaluate.",
          ("fit_passes_true", "nested_bn_mode", "predict_mode", "evaluate_mode"),
          all_of(equals("fit_passes_true", Training.TRUE), equals("nested_bn_mode", Training.TRUE),
               equals("predict_mode", Training.FALSE), equals("evaluate_mode", Training.FALSE)),
          why="'the layers' read as every layer, those of a base called with training=False included: where that "
              "training=False is honoured (keras-nightly, tf-keras) they receive False in fit"),
    Claim("C56", "trainable_versus_training", "in training mode it zeroes each input with probability rate and "
          "multiplies the survivors by 1/(1-rate), so that the expected output equals the input and nothing is "
          "rescaled at inference",
          "Dropout(0.5) under training=True zeroes about half of its inputs and doubles the rest; under "
          "training=False it is the identity.",
          ("dropout_inverted", "dropout_inference"),
          all_of(equals("dropout_inverted", True), equals("dropout_inference", True))),
    Claim("C57", "trainable_versus_training", "With trainable=False the layer still drops",
          "A Dropout layer with trainable=False still drops under training=True.",
          ("dropout_frozen_drops",), equals("dropout_frozen_drops", True)),
    Claim("C58", "trainable_versus_training", "Called directly without a training argument, a layer runs in "
          "inference mode, and so do the layers of a model called so, unless an augmentation layer before them "
          "defaults to training=True",
          "A model or layer called without a training argument runs its layers in inference mode: they receive "
          "False or None, and BN normalises with its moving statistics. (The exception, a model with RandomFlip "
          "before its BN called as model(x), is measured per variant by augmented_call.)",
          ("call_mode", "bn_default_stats", "augmented_call"),
          all_of(not_training_mode("call_mode"), equals("bn_default_stats", Statistics.MOVING)),
          why="RandomFlip's call defaults to training=True, and on some Keras releases that value reaches the layers "
              "after it: the chapter states the exception with augmented_call's value for the variant it ran on."),
    Claim("C59", "trainable_versus_training", "trainable=False empties trainable_weights and freezes the scale, yet "
          "the layer keeps dropping whenever it runs in training mode",
          "A frozen AutoScaleDropout has no trainable weights, fit leaves its scale, and it drops in training mode "
          "(called so, and in fit).",
          ("autoscale_frozen", "autoscale_frozen_fit_training"),
          all_of(equals("autoscale_frozen", AutoScale(trainable_weights=0, drops_in_training=True, fit_moved_scale=False)),
               equals("autoscale_frozen_fit_training", True))),
    Claim("C60", "trainable_versus_training", "the moving mean and variance, which training-mode calls update as an "
          "exponential moving average of the batches' statistics, not by backpropagation",
          "The moving statistics are non-trainable; a training-mode call updates the moving mean as "
          "momentum x old + (1 - momentum) x batch mean; fit's gradient step leaves them in inference mode.",
          ("bn_variables", "bn_moving_average", "inference_mode_received", "inference_mode_updates"),
          all_of(lambda v: v["bn_variables"].moving_statistics_non_trainable is True, equals("bn_moving_average", True),
               lambda v: not in_inference_mode(v).statistics)),
    Claim("C61", "trainable_versus_training", "Only trainable=True with training=True normalises with the batch's own "
          "statistics and moves the moving statistics",
          "A BN layer normalises with the batch statistics and updates its moving statistics when trainable and "
          "called with training=True, and not when called with training=False or frozen.",
          ("bn_trainable_stats", "bn_inference_stats", "bn_frozen_stats", "bn_trainable_updates",
           "bn_inference_updates", "bn_frozen_updates"), _TWO_BY_TWO),
    Claim("C62", "trainable_versus_training", "trainable=False makes BatchNormalization run in inference mode",
          "A frozen BN layer called with training=True normalises with its moving statistics and does not update "
          "them.",
          ("bn_frozen_stats", "bn_frozen_updates"), _INFERENCE_MODE_WHEN_FROZEN),
    Claim("C63", "keras3_surprise", "A frozen BatchNormalization layer runs in inference mode whatever training it "
          "receives",
          "A frozen BN layer called with training=True normalises with its moving statistics and does not update "
          "them; frozen inside an unfrozen base, fit leaves them (with or without training=False).",
          ("bn_frozen_stats", "bn_frozen_updates", "remedy", "remedy_alone"),
          all_of(_INFERENCE_MODE_WHEN_FROZEN, lambda v: not v["remedy"].statistics,
               lambda v: not v["remedy_alone"].statistics)),
    Claim("C64", "mobilenet_v2_2019", "It never passes a training argument",
          "The 2019 recipe's model calls its base without a training argument.",
          ("tutorial_2019_call",), equals("tutorial_2019_call", Training.NONE)),
    Claim("C65", "mobilenet_v2_2019", "the base receives the training value of the outer call, so during fit its "
          "unfrozen BatchNormalization layers run in training mode",
          "A base called without a training argument receives fit's training=True: its unfrozen BN layers "
          "normalise with the batch and update their moving statistics (MobileNetV2 from layer 100).",
          ("fit_passes_true", "bn_trainable_stats", "mobilenet_2019"),
          all_of(equals("fit_passes_true", Training.TRUE), equals("bn_trainable_stats", Statistics.BATCH),
               some_bn_moved("mobilenet_2019"))),
    Claim("C66", "side_by_side", "the recipe that does not depend on how a Keras version passes training through "
          "nested models",
          *_RECOMMENDED),
    Claim("C67", "summary", "Only trainable=True with training=True trains the layer's statistics; a frozen layer "
          "behaves as in inference whatever training it receives",
          "A BN layer updates its moving statistics (and normalises with the batch) only when trainable and called "
          "with training=True; frozen, it normalises with its moving statistics under training=True.",
          ("bn_trainable_stats", "bn_inference_stats", "bn_frozen_stats", "bn_trainable_updates",
           "bn_inference_updates", "bn_frozen_updates"), _TWO_BY_TWO),
    Claim("C68", "summary", "set trainable = False on every BatchNormalization layer in it, call the base without "
          "training=False, then compile",
          *_RECOMMENDED),
    Claim("C69", "introduction", "The fix on all of them: after unfreezing the base, set trainable = False on every "
          "BatchNormalization layer in it, at any depth, call the base without training=False, then compile",
          *_RECOMMENDED),
]
