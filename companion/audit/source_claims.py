"""The claims of the texts the book answers (the Stack Exchange question and answer, the blog, the Keras FAQ, the
three tutorials, the Keras 3 guide), each with its reading and the checks it rests on; and the statements about the
flags in those texts that are not claims, each with why (:data:`NOT_AUDITED`).
"""

from __future__ import annotations

from companion.audit.claim import Claim, all_of, in_inference_mode
from companion.checks import registry as r
from companion.checks.evidence import AutoScale, ByTraining, PredictEvaluate, Statistics, TrainableWeights, Training
from companion.checks.fine_tuning import CUSTOM_BLOCKS, FLAT, MOBILENET, OWN_DROPOUT, XCEPTION, check
from companion.checks.ways import PLAIN, REMEDY_TRAINING_FALSE, TRAINING_FALSE, WRAPPED
from companion.core.columns import REAL_MODELS
from companion.tutorials import recipes
from companion.tutorials.recipe_checks import CALLS

# The fine-tuning checks the claims read most: the flat base fine-tuned as the 2020 tutorials write it, called plainly
# (as the 2019 tutorial does), and through the InferenceMode wrapper, whose explicit training=False every Keras honours.
AS_WRITTEN, PLAIN_CALL, WRAPPED_CALL = (check(FLAT, way) for way in (TRAINING_FALSE, PLAIN, WRAPPED))
BN = r.BN_CALLS  # (trainable, training) -> the check of one BatchNormalization call


def tuned(check_):
    """The fine-tuning phase of a fine-tuning check's value."""
    return lambda v: v[check_].fine_tuning


def frozen(check_):
    """The phase with the base frozen."""
    return lambda v: v[check_].frozen_phase


def normalised(key, statistics: Statistics):
    return lambda v: v[BN[key]].normalised_with is statistics


def moved(key, expected: bool):
    return lambda v: v[BN[key]].statistics_moved is expected


def frozen_base_untouched(v) -> bool:
    """With the base frozen (``base.trainable = False``), fit changed neither its kernels nor its BN statistics."""
    phase = frozen(PLAIN_CALL)(v)
    return phase.kernels.none and phase.statistics.none


SOURCE_CLAIMS = [
    # --- The Stack Exchange question (000/001) ---
    Claim("C1", "SE question", "we set the training argument to False to maintain the pre-trained values of Batch "
          "Normalization",
          "Calling an unfrozen base with training=False keeps its BN moving statistics fixed during fit.",
          (AS_WRITTEN,), lambda v: tuned(AS_WRITTEN)(v).statistics.none),
    Claim("C2", "SE question", "the trainable attribute to False to freeze the weights",
          "With base.trainable=False, fit changes neither the base's kernels nor its BN statistics.",
          (PLAIN_CALL,), frozen_base_untouched),
    Claim("C3", "SE question", "Afterwards for fine-tuning, we can re-train the weights and set the trainable "
          "attribute to True",
          "After unfreezing (and recompiling), fit updates the base's kernels, even with base(x, training=False) "
          "(a flat base, and a base whose layers sit in custom blocks).",
          (AS_WRITTEN, check(CUSTOM_BLOCKS, TRAINING_FALSE)),
          lambda v: tuned(AS_WRITTEN)(v).kernels.all and tuned(check(CUSTOM_BLOCKS, TRAINING_FALSE))(v).kernels.all),
    Claim("C4", "SE question", "When the argument training is True, that, to me, implies ... the BN mean and "
          "variance are being updated",
          "A trainable BN layer called with training=True updates its moving statistics.",
          (BN[True, True],), moved((True, True), True), why="a frozen BN layer is the FAQ's exception (C45)"),
    Claim("C5", "SE question", "[training=True implies] Dropout is being applied",
          "A Dropout layer called with training=True drops (and scales) its inputs.",
          (r.DROPOUT_INVERTED,), lambda v: v[r.DROPOUT_INVERTED] is True),
    Claim("C6", "SE question", "[training=True implies] the weights are from the backwards pass",
          "Whether fit updates a layer's weights follows the training argument: a layer that runs in training mode "
          "has its weights updated by backpropagation, a layer that runs in inference mode does not.",
          (r.AUTOSCALE[False], WRAPPED_CALL),
          lambda v: (not v[r.AUTOSCALE[False]].fit_ran_training_mode or v[r.AUTOSCALE[False]].fit_moved_scale)
          and in_inference_mode(v, WRAPPED_CALL).kernels.none and not in_inference_mode(v, WRAPPED_CALL).affine,
          why="tested on a frozen AutoScaleDropout that ran in training mode in fit, and on a base whose layers "
              "received training=False in fit (called so by the InferenceMode wrapper, which every Keras honours)"),
    Claim("C7", "SE question", "Both models have BN",
          "Keras' MobileNetV2 and Xception both contain BatchNormalization layers.",
          (check(MOBILENET, TRAINING_FALSE), check(XCEPTION, TRAINING_FALSE)),
          lambda v: all(tuned(check(kind, TRAINING_FALSE))(v).statistics.total > 0 for kind in (MOBILENET, XCEPTION)),
          scope=REAL_MODELS),
    Claim("C8", "SE question", "in the second tutorial, they pass the training=False argument in the base_model ... "
          "Whereas in the first they make no mention of training=False",
          "The 2020 Xception guide calls its base with training=False; the 2019 MobileNetV2 tutorial calls it without "
          "a training argument.",
          (CALLS[recipes.XCEPTION_2020], CALLS[recipes.MOBILENET_V2_2019]),
          lambda v: v[CALLS[recipes.XCEPTION_2020]] is Training.FALSE
          and v[CALLS[recipes.MOBILENET_V2_2019]] is Training.NONE,
          why="the question's premise; checked on the recipes' models, which transcribe the tutorials' commits and "
              "whose pages' code is tested to build the same layers"),
    # --- The answer (000-002): its own words ---
    Claim("C9", "SE answer", "γ, β are learned ... learned in Backpropagation",
          "A trainable BN layer's gamma and beta are trainable weights that a training step updates.",
          (r.BN_VARIABLES, PLAIN_CALL),
          lambda v: v[r.BN_VARIABLES].gamma_beta_trainable is True and tuned(PLAIN_CALL)(v).affine),
    Claim("C10", "SE answer", "if you will not set it False it will continue updating μ and σ with every batch of "
          "test data",
          "At test time, without training=False, BN updates its moving statistics with the test batches: predict and "
          "evaluate update them, and a call without the argument normalises with the batch.",
          (r.INFERENCE_MOVES_BN, BN[True, None]),
          lambda v: v[r.INFERENCE_MOVES_BN] != PredictEvaluate(predict=False, evaluate=False)
          or v[BN[True, None]].normalised_with is Statistics.BATCH),
    Claim("C11", "SE answer", "By default, it is False and fit method set it to True.",
          "A BN layer called without training runs in inference mode; fit passes training=True to it.",
          (BN[True, None], PLAIN_CALL),
          all_of(normalised((True, None), Statistics.MOVING),
                 lambda v: tuned(PLAIN_CALL)(v).bn_received is Training.TRUE)),
    Claim("C12", "SE answer", "We need this Flag here so that we can compensate(during testing) the loss to the "
          "Output value",
          "Keras' Dropout compensates at test time for the units it switched off in training.",
          (r.DROPOUT_INVERTED, r.DROPOUT_INFERENCE),
          lambda v: v[r.DROPOUT_INVERTED] is False and v[r.DROPOUT_INFERENCE] is False,
          why="the answer's own words; the passage it then quotes gives the alternative Keras uses (C19)"),
    # --- Quoted in the answer: the Keras documentation of BatchNormalization ---
    Claim("C13", "SE answer", "training=True: The layer will normalize its inputs using the mean and variance of the "
          "current batch",
          "A trainable BN layer called with training=True normalises with the batch statistics.",
          (BN[True, True],), normalised((True, True), Statistics.BATCH), said_by="Keras BN documentation",
          why="the documentation states the frozen case separately (C45)"),
    Claim("C14", "SE answer", "training=False: The layer will normalize its inputs using the mean and variance of its "
          "moving statistics, learned during training",
          "A BN layer called with training=False normalises with its moving statistics, which training-mode calls "
          "update.",
          (BN[True, False], BN[True, True]),
          all_of(normalised((True, False), Statistics.MOVING), moved((True, True), True)),
          said_by="Keras BN documentation"),
    # --- Quoted in the answer: d2l.ai ---
    Claim("C15", "SE answer", "BN(x)= γ⊙(x−μ)/σ + β",
          "A BN layer outputs gamma*(x - mu)/sigma + beta per channel (sigma = sqrt(variance + epsilon)), with mu and "
          "sigma of the batch in training mode and the moving statistics in inference mode.",
          (BN[True, True], BN[True, False]),
          all_of(normalised((True, True), Statistics.BATCH), normalised((True, False), Statistics.MOVING)),
          said_by="d2l.ai", why="the two checks compare the layer's output with this formula"),
    # --- Quoted in the answer: Géron ---
    Claim("C16", "SE answer", "each BN layer adds four parameters per input: γ, β, μ, and σ",
          "A BN layer holds four numbers per channel (Keras stores the moving variance rather than sigma).",
          (r.BN_VARIABLES,), lambda v: v[r.BN_VARIABLES].parameters_per_channel == 4, said_by="Géron"),
    Claim("C17", "SE answer", "μ and σ, are the moving averages; they are not affected by backpropagation, so Keras "
          "calls them \u201cnon-trainable\u201d. However, they are estimated during training",
          "The moving statistics are non-trainable weights updated by an exponential moving average in "
          "training-mode calls, and fit's gradient step leaves them alone even where they shape the loss (inference "
          "mode).",
          (r.BN_VARIABLES, BN[True, True], r.BN_MOVING_AVERAGE, WRAPPED_CALL),
          all_of(lambda v: v[r.BN_VARIABLES].moving_statistics_non_trainable is True, moved((True, True), True),
                 lambda v: v[r.BN_MOVING_AVERAGE] is True,
                 lambda v: in_inference_mode(v, WRAPPED_CALL).statistics.none),
          said_by="Géron"),
    Claim("C18", "SE answer", "In Keras, \u201cnon-trainable\u201d really means \u201cuntouched by backpropagation",
          "fit's gradient step changes no non-trainable variable: neither a frozen base's weights and statistics nor "
          "the moving statistics of a BN layer in inference mode, although they shape its output.",
          (PLAIN_CALL, WRAPPED_CALL),
          all_of(frozen_base_untouched, lambda v: in_inference_mode(v, WRAPPED_CALL).statistics.none),
          said_by="Géron"),
    Claim("C19", "SE answer", "we need to multiply each neuron\u2019s input connection weights by 0.5 after training "
          "... Alternatively, we can divide each neuron\u2019s output by the keep probability during training",
          "Dropout's zeros must be compensated, by scaling weights after training or by dividing outputs by the keep "
          "probability during training; Keras does the second (survivors x 1/(1 - rate) in training, identity in "
          "inference), so nothing is rescaled after training.",
          (r.DROPOUT_INVERTED, r.DROPOUT_INFERENCE),
          lambda v: v[r.DROPOUT_INVERTED] is True and v[r.DROPOUT_INFERENCE] is True, said_by="Géron",
          why="read as the two alternatives the passage offers, not as a statement that Keras takes the first"),
    # --- The blog article (003) ---
    Claim("C20", "blog", "Specifically, it disables the application of dropout layers and batch normalization's "
          "training-time statistics updates",
          "Passed to a pretrained base during fit, training=False stops the Dropout inside the base from dropping and "
          "its BN layers from updating their statistics.",
          (check(OWN_DROPOUT, TRAINING_FALSE),),
          lambda v: tuned(check(OWN_DROPOUT, TRAINING_FALSE))(v).dropout_inside is False
          and tuned(check(OWN_DROPOUT, TRAINING_FALSE))(v).statistics.none,
          why="the article's opening sentence, about training=False 'applied during transfer learning'"),
    Claim("C21", "blog", "When training=False is set for a pre-trained model, the weights of all layers are frozen",
          "Layers that run in inference mode because training=False was passed to them are not updated by fit "
          "(their kernels stay unchanged).",
          (WRAPPED_CALL, AS_WRITTEN),
          lambda v: in_inference_mode(v, WRAPPED_CALL).kernels.none and tuned(AS_WRITTEN)(v).kernels.none,
          why="tested on a base whose layers received training=False in fit (so the override of some versions "
              "cannot decide it), and on base(x, training=False) as the tutorials write it"),
    Claim("C22", "blog", "This means the gradient calculations bypass these layers completely",
          "No gradient update reaches layers that run in inference mode because of training=False: their kernels "
          "and BN gamma/beta stay unchanged in fit.",
          (WRAPPED_CALL,),
          lambda v: in_inference_mode(v, WRAPPED_CALL).kernels.none and not in_inference_mode(v, WRAPPED_CALL).affine),
    Claim("C23", "blog", "Setting training=False disables this dropout",
          "A Dropout layer called with training=False is the identity.",
          (r.DROPOUT_INFERENCE,), lambda v: v[r.DROPOUT_INFERENCE] is True,
          why="the paragraph describes the layers themselves; passed to a pretrained base during fit, see C20"),
    Claim("C24", "blog", "batch normalization layers maintain running means and variances of activations computed "
          "during the training phase",
          "Training-mode calls of a trainable BN layer update its moving mean and variance, as an exponential "
          "moving average of the batches' statistics.",
          (BN[True, True], r.BN_MOVING_AVERAGE),
          all_of(moved((True, True), True), lambda v: v[r.BN_MOVING_AVERAGE] is True)),
    Claim("C25", "blog", "With training=False, these running statistics are used for normalization instead of the "
          "batch statistics",
          "A BN layer called with training=False normalises with its moving statistics.",
          (BN[True, False],), normalised((True, False), Statistics.MOVING),
          why="the paragraph describes the layers themselves; passed to a pretrained base during fit, see C20"),
    Claim("C26", "blog", "using batch statistics during inference could lead to inconsistent results, depending on "
          "the batch size",
          "With training=True an image's BN output depends on the rest of its batch; with training=False it does "
          "not.",
          (r.BN_BATCH_DEPENDENCE,),
          lambda v: v[r.BN_BATCH_DEPENDENCE] == ByTraining(training_true=True, training_false=False)),
    Claim("C27", "blog", "Effectively, setting training=False ensures consistent and deterministic behavior during the "
          "inference or prediction phase",
          "With training=False, Dropout is the identity and an image's BN output does not depend on its batch.",
          (r.DROPOUT_INFERENCE, r.BN_BATCH_DEPENDENCE),
          lambda v: v[r.DROPOUT_INFERENCE] is True and v[r.BN_BATCH_DEPENDENCE].training_false is False),
    Claim("C28", "blog", "Setting training=False for the frozen layers is crucial for efficiency and consistency",
          "With the base frozen, training=False changes what its layers do in fit: called as base(x), its BN layers "
          "would move their statistics or its own Dropout would drop; called as base(x, training=False), neither.",
          (check(OWN_DROPOUT, PLAIN), check(OWN_DROPOUT, TRAINING_FALSE)),
          lambda v: (frozen(check(OWN_DROPOUT, PLAIN))(v).dropout_inside is True
                     or not frozen(check(OWN_DROPOUT, PLAIN))(v).statistics.none)
          and frozen(check(OWN_DROPOUT, TRAINING_FALSE))(v).dropout_inside is False
          and frozen(check(OWN_DROPOUT, TRAINING_FALSE))(v).statistics.none,
          why="consistency only: efficiency is not measured (see the statements not audited); 'the frozen layers' "
              "read as a frozen base with a Dropout of its own, called in a functional model as the tutorials do"),
    Claim("C29", "blog", "Failing to do so can lead to unexpected behavior",
          "Leaving out training=False can change a pretrained base during fit: with the base unfrozen and called "
          "without a training argument, fit moves its BN statistics.",
          (PLAIN_CALL,), lambda v: not tuned(PLAIN_CALL)(v).statistics.none,
          why="'can' read as a possibility, in the article's own fine-tuning example; frozen layers keep their "
              "statistics either way (C45)"),
    Claim("C30", "blog", "Training loop (training=True implicitly applied here for the added classifier)",
          "In fit, a Dropout in the head after a base called as base(x) runs in training mode.",
          (PLAIN_CALL,), lambda v: tuned(PLAIN_CALL)(v).dropout_after is True),
    Claim("C31", "blog", "base_model.trainable = False effectively sets training=False for all layers within "
          "base_model during the prediction phase",
          "In predict, layers run in inference mode (they receive training=False).",
          (r.PREDICT_MODE,), lambda v: v[r.PREDICT_MODE] is Training.FALSE,
          why="limited to the prediction phase, as the sentence says; predict passes training=False to every layer, "
              "frozen or not"),
    Claim("C32", "blog", "Compile and train the model (training=True for trainable layers)",
          "In fit, the unfrozen layers of a base called as base(x) receive training=True.",
          (PLAIN_CALL,), lambda v: tuned(PLAIN_CALL)(v).bn_received is Training.TRUE),
    Claim("C33", "blog", "Layers up to a certain point are frozen, implicitly utilizing training=False during both "
          "training and inference",
          "Frozen BN layers behave as in inference mode in training and inference: called with training=True they "
          "normalise with their moving statistics and do not update them, and fit with a frozen base leaves them.",
          (BN[False, True], PLAIN_CALL),
          all_of(normalised((False, True), Statistics.MOVING), moved((False, True), False),
                 lambda v: frozen(PLAIN_CALL)(v).statistics.none),
          why="the article's model, ResNet50, has no Dropout: its mode-dependent layers are BatchNormalization; a "
              "frozen Dropout would still drop (C43)"),
    Claim("C34", "blog", "x = self.dense(inputs, training=training) # Explicitly pass training flag",
          "Passing training to the example's Dense layer changes what it computes.",
          (r.DENSE_IGNORES_TRAINING,), lambda v: v[r.DENSE_IGNORES_TRAINING] is False,
          why="a Dense layer has no training mode: Keras accepts the argument and the output is the same"),
    Claim("C35", "blog", "This shows how to explicitly manage the training flag within a custom layer",
          "Inside a custom layer, a training value passed explicitly to a sublayer decides the sublayer's mode, also "
          "during fit.",
          (WRAPPED_CALL,), lambda v: tuned(WRAPPED_CALL)(v).bn_received is Training.FALSE),
    Claim("C36", "blog", "During inference, training=None (or False if explicitly passed) will be used, influencing "
          "dropout and batch normalization accordingly",
          "At inference layers never receive training=True: predict passes False and a call without the argument "
          "None or False; Dropout is then the identity and BN keeps its statistics.",
          (r.PREDICT_MODE, r.CALL_MODE, r.DROPOUT_INFERENCE, r.INFERENCE_MOVES_BN),
          lambda v: v[r.PREDICT_MODE] in (Training.FALSE, Training.NONE)
          and v[r.CALL_MODE] in (Training.FALSE, Training.NONE) and v[r.DROPOUT_INFERENCE] is True
          and v[r.INFERENCE_MOVES_BN] == PredictEvaluate(predict=False, evaluate=False),
          why="read as 'not training mode'; the literal value is False in predict and depends on the Keras in a "
              "plain call"),
    # --- The Keras FAQ (004) ---
    Claim("C37", "Keras FAQ", "training is a boolean argument in call that determines whether the call should be run "
          "in inference mode or training mode",
          "The same layer behaves differently under training=True and training=False: Dropout drops or not, BN uses "
          "batch or moving statistics.",
          (r.DROPOUT_INVERTED, r.DROPOUT_INFERENCE, BN[True, True], BN[True, False]),
          lambda v: v[r.DROPOUT_INVERTED] is True and v[r.DROPOUT_INFERENCE] is True
          and v[BN[True, True]].normalised_with is Statistics.BATCH
          and v[BN[True, False]].normalised_with is Statistics.MOVING),
    Claim("C38", "Keras FAQ", "in training mode, a Dropout layer applies random dropout and rescales the output. In "
          "inference mode, the same layer does nothing",
          "Dropout drops and rescales under training=True and is the identity under training=False.",
          (r.DROPOUT_INVERTED, r.DROPOUT_INFERENCE),
          lambda v: v[r.DROPOUT_INVERTED] is True and v[r.DROPOUT_INFERENCE] is True),
    Claim("C39", "Keras FAQ", "Dropout(0.5)(x, training=True) # Applies dropout at training time *and* inference time",
          "A Dropout called with training=True inside a functional model also drops during predict.",
          (r.FORCED_DROPOUT_PREDICT,), lambda v: v[r.FORCED_DROPOUT_PREDICT] is True),
    Claim("C40", "Keras FAQ", "trainable is a boolean layer attribute that determines the trainable weights of the "
          "layer should be updated to minimize the loss during training",
          "fit updates the weights of an unfrozen base and not those of a frozen one.",
          (AS_WRITTEN, PLAIN_CALL),
          lambda v: tuned(AS_WRITTEN)(v).kernels.all and frozen(PLAIN_CALL)(v).kernels.none),
    Claim("C41", "Keras FAQ", "If layer.trainable is set to False, then layer.trainable_weights will always be an "
          "empty list ... len(model.trainable_weights) == 2",
          "A frozen layer has no trainable weights (a base; AutoScaleDropout); the tutorial model around the frozen "
          "base then has 2 (the Dense layer's).",
          (r.FROZEN_WEIGHTS, r.AUTOSCALE[False]),
          lambda v: v[r.FROZEN_WEIGHTS] == TrainableWeights(base=0, model=2)
          and v[r.AUTOSCALE[False]].trainable_weights == 0),
    Claim("C42", "Keras FAQ", "model.fit(...) # Train Dense while excluding ResNet50Base",
          "fit with the base frozen changes neither its kernels nor its BN statistics.",
          (PLAIN_CALL,), frozen_base_untouched),
    Claim("C43", "Keras FAQ", "the trainable attribute and the training call argument are independent",
          "Each flag does its own job whatever the other says: a frozen Dropout or AutoScaleDropout still drops in "
          "training mode, and a layer in inference mode still has its weights trained.",
          (r.DROPOUT_FROZEN_DROPS, r.AUTOSCALE[False], WRAPPED_CALL),
          lambda v: v[r.DROPOUT_FROZEN_DROPS] is True and v[r.AUTOSCALE[False]].drops_in_training is True
          and in_inference_mode(v, WRAPPED_CALL).affine and in_inference_mode(v, WRAPPED_CALL).kernels.all),
    Claim("C44", "Keras FAQ", "a dropout layer where the scaling factor is learned during training ... with a "
          "*frozen* scaling factor",
          "AutoScaleDropout has one trainable weight, which fit moves; frozen, it has none and fit leaves its scale; "
          "called with training=True in a model, trainable or frozen, it drops at training time and in predict.",
          (r.AUTOSCALE[True], r.AUTOSCALE[False], r.AUTOSCALE_FORCED[True], r.AUTOSCALE_FORCED[False]),
          lambda v: v[r.AUTOSCALE[True]] == AutoScale(1, True, True, True)
          and v[r.AUTOSCALE[False]] == AutoScale(0, True, False, True)
          and v[r.AUTOSCALE_FORCED[True]] is True and v[r.AUTOSCALE_FORCED[False]] is True,
          why="the FAQ's comments say the forced layer applies dropout 'at training time *and* inference time'"),
    Claim("C45", "Keras FAQ", "setting bn.trainable = False will also make its training call argument default to "
          "False, meaning that the layer will no update its state during training",
          "A frozen BN layer called with training=True normalises with its moving statistics and does not update "
          "them, also inside a model trained with fit.",
          (BN[False, True], PLAIN_CALL),
          all_of(normalised((False, True), Statistics.MOVING), moved((False, True), False),
                 lambda v: frozen(PLAIN_CALL)(v).statistics.none)),
    Claim("C46", "Keras FAQ", "This behavior only applies for BatchNormalization. For every other layer, weight "
          "trainability and \u201cinference vs training mode\u201d remain independent",
          "trainable=False puts a BN layer in inference mode, and changes the mode of none of the other layers "
          "tested whose output depends on training: five dropout and noise layers, two augmentation layers, an "
          "LSTM with dropout, and AutoScaleDropout.",
          (BN[False, True], r.TRAINABLE_CHANGES_MODE),
          all_of(normalised((False, True), Statistics.MOVING), lambda v: v[r.TRAINABLE_CHANGES_MODE].none)),
    # --- The tutorials (their advice paraphrased; see the recipes) ---
    Claim("C47", "MobileNetV2 2020", "[paraphrase] pass training=False when calling the base so that its "
          "BatchNormalization layers stay in inference mode after unfreezing for fine-tuning",
          "Fine-tuning MobileNetV2 from layer 100 with base(x, training=False) moves no BN statistics.",
          (check(MOBILENET, TRAINING_FALSE),), lambda v: tuned(check(MOBILENET, TRAINING_FALSE))(v).statistics.none,
          scope=REAL_MODELS),
    Claim("C48", "Xception 2020", "[paraphrase] the base is called with training=False so that unfreezing it later "
          "does not update the BatchNormalization statistics",
          "Fine-tuning the fully unfrozen Xception with base(x, training=False) moves no BN statistics.",
          (check(XCEPTION, TRAINING_FALSE),), lambda v: tuned(check(XCEPTION, TRAINING_FALSE))(v).statistics.none,
          scope=REAL_MODELS),
    Claim("C49", "Xception 2020", "[paraphrase] with base_model.trainable = False the BatchNormalization layers run "
          "in inference mode and do not update their statistics",
          "A frozen BN layer runs in inference mode under training=True, and fit with a frozen base changes neither "
          "its kernels nor its BN statistics.",
          (BN[False, True], PLAIN_CALL), all_of(normalised((False, True), Statistics.MOVING), frozen_base_untouched)),
    Claim("C50", "Xception 2020", "[paraphrase] recompile the model after changing trainable",
          "Compiling again after a trainable change makes the next fit honour it.",
          (r.TRAINABLE_TIMING,), lambda v: v[r.TRAINABLE_TIMING].after_recompile is True,
          why="read as the advice it is: whether fit also honours the change without compiling again depends on "
              "the backend (the book's C54)"),
    # --- The Keras guide after PR #20298 ---
    Claim("C51", "Keras 3 guide", "set layer.trainable = False on those layers specifically after unfreezing the "
          "outer model",
          "With every BN layer frozen after unfreezing, and the base still called with training=False as the guide "
          "does, fine-tuning moves no BN statistics and no gamma/beta, while the kernels train.",
          (check(FLAT, REMEDY_TRAINING_FALSE),),
          lambda v: (lambda phase: phase.statistics.none and not phase.affine and phase.kernels.all)(
              tuned(check(FLAT, REMEDY_TRAINING_FALSE))(v))),
    Claim("C52", "Keras 3 guide", "or otherwise call the model with training=False",
          "Instead of freezing the BN layers, calling the unfrozen base with training=False keeps their statistics "
          "fixed during fine-tuning.",
          (AS_WRITTEN,), lambda v: tuned(AS_WRITTEN)(v).statistics.none),
    Claim("C53", "Keras 3 guide", "still running in inference mode since we passed training=False",
          "After base_model.trainable = True, a base called with training=False runs its BN layers in inference mode "
          "during fit: they receive training=False and keep their statistics.",
          (AS_WRITTEN,),
          lambda v: tuned(AS_WRITTEN)(v).bn_received is Training.FALSE and tuned(AS_WRITTEN)(v).statistics.none),
]


# Statements about the flags in the shared sources that are not claims above: (source, quote, why).
NOT_AUDITED = [
    ("SE question", "The Keras FAQ states it just means inference is being performed",
     "a report of what the FAQ says; the FAQ's own statements are C37 to C46"),
    ("SE question", "I see the first one is copyrighted in 2019 and the second one in 2020, which might imply the "
     "discrepancy",
     "a guess at why the tutorials differ: their history is not a behaviour code can run (the recipes cite the "
     "commits; how each calls its base is C8)"),
    ("SE answer", "These are initialized just like normal weights",
     "not about the flags, and vague: true if it means 'ordinary variables with an initialiser', false if it means "
     "'the kernels' initialiser' (gamma starts at ones, beta at zeros)"),
    ("SE answer", "for example, the first BN layer adds 3,136 parameters, which is 4 × 784",
     "about a model in Géron's book, which is not among the sources"),
    ("SE answer", "so arguably they are trainable", "an opinion about a word"),
    ("SE answer", "We want it to use the values from the Training phase", "an aim, not a statement of behaviour"),
    ("SE answer", "Suppose p = 50%, in which case during testing a neuron would be connected to twice as many input "
     "neurons as it would be (on average) during training",
     "describes dropout without compensation, which no Keras layer implements; the compensation is C19"),
    ("SE answer", "these alternatives are not perfectly equivalent, but they work equally well",
     "about training outcomes of two conventions, of which Keras implements one"),
    ("SE answer", "So the logic stated to keep it Flase in 2019 example might not hold too strong every time",
     "an opinion about when to fine-tune; the 2019 example it names passes no training argument (C8)"),
    ("blog", "This has crucial implications for the accuracy and performance of the fine-tuning process",
     "no measurable statement; what the Keras 3 override costs in accuracy is measured in the Keras 3 chapter"),
    ("blog", "However, this freezing only applies to the *weights*. Other operations within the layers are still "
     "executed",
     "rests on the freezing of C21, which fails; that the forward pass runs is true of every call"),
    ("blog", "It prevents unnecessary computations",
     "an efficiency statement: time on shared CPU cores gives no stable yes or no, and a frozen BN layer computes the "
     "same normalisation with or without training=False (C28)"),
    ("blog", "leading to a more stable and accurate model", "vague: no measurable statement"),
    ("blog", "Compile the model, ensuring training=False is implicitly used for base_model during inference",
     "restates C31"),
    ("blog", "Inference (training=False implicitly applied here for the base_model)", "restates C31"),
    ("blog", "Inference (training=False implicitly for frozen layers, but layer specific behavior is determined by "
     "trainable flag)",
     "its two halves pull apart: predict passes training=False to every layer (C31), and trainable decides the mode "
     "only of BatchNormalization (C46)"),
    ("blog", "with training=True impacting both forward and backward passes",
     "'impacting the backward pass' has no yes or no form (gradients follow whatever the forward pass computed); the "
     "forward part is C32"),
    ("blog", "This is valuable when you need more granular control over the behavior of specific components",
     "an opinion; what explicit passing does is C35"),
    ("Keras FAQ", "\u201cinference mode vs training mode\u201d and \u201clayer weight trainability\u201d are two very "
     "different concepts",
     "a summary; the independence it states is C43 and C46"),
    ("Keras FAQ", "This layer would have simultaneously a trainable state, and a different behavior in inference and "
     "training",
     "describes the imagined layer, which the companion implements: C44"),
    ("Keras FAQ", "ResNet50Base(input_shape=(32, 32, 3), weights='pretrained')",
     "a hypothetical class (Keras has none of this name); its assertions are tested on MobileNetV2 (C41)"),
]
