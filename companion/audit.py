"""The claims audit: statements about ``training``, ``trainable``, BatchNormalization and Dropout, each with the reading
tested and a verdict computed per Keras variant. The statements come from the texts the book answers and from the
book's own chapters: the book audits itself.

A claim's ``check`` reads one column of the version matrix (:mod:`companion.matrix`: the typed values measured
under one Keras variant, see :mod:`companion.evidence`) and says whether the claim held there. Across the variants
the verdict is "holds", "fails" or "depends on the version". A check whose evidence does not test the reading on a
variant (e.g. layers meant to run in inference mode that did not) raises :class:`Untested`: that variant then shows
"not tested" and does not count towards the verdict.

Every claim names who said it (``said_by``, when a source quotes someone else) and where it was read (``source``).
Quotes are brief; where the source is a tutorial whose text is not reproduced here, the advice is paraphrased and
marked as such. The statements about the flags that are not audited are listed, each with why (:data:`NOT_AUDITED`).

A chapter refers to one of its own claims with a visible marker next to the sentence: ``{doc}`C12 <claims_audit>```
(:data:`MARKER`). :func:`unsupported_statements` finds the sentences of a chapter's Markdown that state a behaviour
of the flags without a glued value or such a marker; the tests fail on any.
"""

from __future__ import annotations

import collections
import dataclasses
import re
from typing import Callable

from companion.evidence import (AutoScale, ByTraining, FrozenBase, PredictEvaluate, Recompile, Statistics, Training,
                                TrainableWeights, Updates)
from companion.matrix import REMEDY_WORKS, Matrix
from companion.tables import FactTable

SOURCES = {
    "SE question": "Data Science Stack Exchange, question 78053 ('what does training=True do?')",
    "SE answer": "Data Science Stack Exchange, the answer to question 78053 (post 78093)",
    "blog": "Blog article 'What effect does training=False have on TensorFlow transfer learning?' (2025-01-30)",
    "Keras FAQ": "Keras FAQ, 'training' argument in call() versus the 'trainable' attribute",
    "MobileNetV2 2020": "TensorFlow tutorial 'Transfer learning and fine-tuning', tensorflow/docs adae1941 (2020)",
    "Xception 2020": "Keras guide 'Transfer learning & fine-tuning', keras-io guides/transfer_learning.py (2020)",
    "Keras 3 guide": "Keras guide 'Transfer learning & fine-tuning' as revised in 2024: the documentation change of "
                     "keras-team/keras PR #20298 and a follow-up commit to it in keras-team/keras-io, which brought "
                     "the wording 'set the BatchNormalization layers' trainable = False'; its end-to-end example "
                     "still says the base keeps running in inference mode 'since we passed training=False' (C53). "
                     "Quoted as the project's issues quote it: its text is not among the shared sources",
}
# Authors a source quotes: their words are claims of theirs, read in the source that quotes them.
QUOTED = {
    "Géron": "Aurélien Géron, 'Hands-On Machine Learning with Scikit-Learn, Keras and TensorFlow'",
    "Keras BN documentation": "Keras documentation of the BatchNormalization layer",
    "d2l.ai": "'Dive into Deep Learning' (d2l.ai)",
}
# The book's chapters: what their Markdown states about the flags is audited like the sources.
CHAPTERS = {
    "introduction": "this book, 'training versus trainable' (introduction)",
    "trainable_versus_training": "this book, chapter '`trainable` versus `training`'",
    "keras3_surprise": "this book, chapter 'The Keras 3 surprise'",
    "keras_versions": "this book, chapter 'Which Keras versions are affected?'",
    "offline_weights": "this book, chapter on the offline weights",
    "mobilenet_v2_2019": "this book, chapter 'MobileNetV2, 2019'",
    "mobilenet_v2_2020": "this book, chapter 'MobileNetV2, 2020'",
    "xception_2020": "this book, chapter 'Xception, 2020'",
    "side_by_side": "this book, chapter 'Side by side'",
    "claims_audit": "this book, chapter 'Claims audit'",
    "summary": "this book, 'In a hurry: the answer on one page'",
    "is_my_model_affected": "this book, chapter 'Is my model affected?'",
    "upstream_reports": "this book, appendix 'Upstream reports'",
    "how_it_is_verified": "this book, appendix 'How the book is verified'",
}

HOLDS, FAILS, DEPENDS = "holds", "fails", "depends on the version"
NOT_TESTED = "not tested"


class Untested(Exception):
    """Raised by a check whose evidence, on this variant, does not test the claim's reading."""


@dataclasses.dataclass(frozen=True)
class Claim:
    id: str  # "C12": stable, cited by the chapters' markers
    source: str  # a key of SOURCES or CHAPTERS: where the statement is read
    quote: str  # brief quote, or a paraphrase in [brackets]
    reading: str  # the reading that was tested
    evidence: tuple[str, ...]  # matrix row ids the check reads
    check: Callable[[dict], bool]  # one variant's values (row id -> typed value) -> did the claim hold there?
    said_by: str = ""  # a key of QUOTED when the source quotes someone else's words
    why: str = ""  # why this reading, where the statement can be read several ways

    @property
    def speaker(self) -> str:
        """Who made the statement: the quoted author, else the source."""
        return self.said_by or self.source

    @property
    def by_the_book(self) -> bool:
        return self.source in CHAPTERS

    @property
    def attribution(self) -> str:
        """"SE answer"; "Géron, quoted in the SE answer"; "this book: keras3_surprise"."""
        if self.by_the_book:
            return f"this book: {self.source}"
        return f"{self.said_by}, quoted in the {self.source}" if self.said_by else self.source


def _is(row: str, expected) -> Callable[[dict], bool]:
    return lambda v: v[row] == expected


def _all(*checks: Callable[[dict], bool]) -> Callable[[dict], bool]:
    return lambda v: all(check(v) for check in checks)


def _no_bn_moved(row: str) -> Callable[[dict], bool]:
    """An architecture row moved no BN layer's statistics."""
    return lambda v: v[row].bn_moved.none


def _some_bn_moved(row: str) -> Callable[[dict], bool]:
    return lambda v: v[row].bn_moved.changed > 0


def _all_kernels(row: str) -> Callable[[dict], bool]:
    """An architecture row updated every one of its unfrozen kernels (at least one)."""
    return lambda v: v[row].kernels_updated.all


def _has_bn(row: str) -> Callable[[dict], bool]:
    return lambda v: v[row].bn_moved.total > 0


def _in_inference_mode(v: dict) -> Updates:
    """What fit updated in a base whose BN received ``training=False`` (the custom-layer route); :class:`Untested`
    where the base did not run in inference mode, so that no verdict rests on layers that were in training mode."""
    if v["inference_mode_received"] is not Training.FALSE:
        raise Untested("the base's layers did not receive training=False")
    return v["inference_mode_updates"]


def _not_training_mode(row: str) -> Callable[[dict], bool]:
    """Layers received False or None: not training mode."""
    return lambda v: v[row] in (Training.FALSE, Training.NONE)


CLAIMS = [
    # --- The Stack Exchange question (000/001) ---
    Claim("C1", "SE question", "we set the training argument to False to maintain the pre-trained values of Batch "
          "Normalization",
          "Calling an unfrozen base with training=False keeps its BN moving statistics fixed during fit.",
          ("nested_override",), _is("nested_override", False)),
    Claim("C2", "SE question", "the trainable attribute to False to freeze the weights",
          "With base.trainable=False, fit changes neither the base's kernels nor its BN statistics.",
          ("frozen_base",), _is("frozen_base", FrozenBase(kernels=False, statistics=False))),
    Claim("C3", "SE question", "Afterwards for fine-tuning, we can re-train the weights and set the trainable "
          "attribute to True",
          "After unfreezing (and recompiling), fit updates the base's kernels, even with base(x, training=False).",
          ("nested_kernels", "mobilenet_as_written", "xception_as_written"),
          _all(_is("nested_kernels", True), _all_kernels("mobilenet_as_written"), _all_kernels("xception_as_written"))),
    Claim("C4", "SE question", "When the argument training is True, that, to me, implies ... the BN mean and "
          "variance are being updated",
          "A trainable BN layer called with training=True updates its moving statistics.",
          ("bn_trainable_updates",), _is("bn_trainable_updates", True),
          why="a frozen BN layer is the FAQ's exception (C45)"),
    Claim("C5", "SE question", "[training=True implies] Dropout is being applied",
          "A Dropout layer called with training=True drops (and scales) its inputs.",
          ("dropout_inverted",), _is("dropout_inverted", True)),
    Claim("C6", "SE question", "[training=True implies] the weights are from the backwards pass",
          "Whether fit updates a layer's weights follows the training argument: a layer that runs in training mode "
          "has its weights updated by backpropagation, a layer that runs in inference mode does not.",
          ("autoscale_frozen_fit_training", "autoscale_frozen", "inference_mode_received", "inference_mode_updates"),
          lambda v: (not v["autoscale_frozen_fit_training"] or v["autoscale_frozen"].fit_moved_scale)
          and not (_in_inference_mode(v).kernels or _in_inference_mode(v).affine),
          why="tested on a frozen AutoScaleDropout that ran in training mode in fit, and on a base whose layers "
              "received training=False in fit (called so inside a custom layer, which every variant honours)"),
    Claim("C7", "SE question", "Both models have BN",
          "Keras' MobileNetV2 and Xception both contain BatchNormalization layers.",
          ("mobilenet_as_written", "xception_as_written"),
          _all(_has_bn("mobilenet_as_written"), _has_bn("xception_as_written"))),
    Claim("C8", "SE question", "in the second tutorial, they pass the training=False argument in the base_model ... "
          "Whereas in the first they make no mention of training=False",
          "The 2020 Xception guide calls its base with training=False; the 2019 MobileNetV2 tutorial calls it without "
          "a training argument.",
          ("tutorial_xception_call", "tutorial_2019_call"),
          _all(_is("tutorial_xception_call", Training.FALSE), _is("tutorial_2019_call", Training.NONE)),
          why="the question's premise; checked on the recipes' models, which transcribe the tutorials' commits and "
              "whose generated code is tested to build the same layers"),
    # --- The answer (000-002): its own words ---
    Claim("C9", "SE answer", "γ, β are learned ... learned in Backpropagation",
          "A trainable BN layer's gamma and beta are trainable weights that a training step updates.",
          ("bn_variables", "bn_trainable_affine"),
          _all(lambda v: v["bn_variables"].gamma_beta_trainable is True, _is("bn_trainable_affine", True))),
    Claim("C10", "SE answer", "if you will not set it False it will continue updating μ and σ with every batch of "
          "test data",
          "At test time, without training=False, BN updates its moving statistics with the test batches: predict and "
          "evaluate update them, and a call without the argument normalises with the batch.",
          ("inference_updates_bn", "bn_default_stats"),
          lambda v: v["inference_updates_bn"] != PredictEvaluate(predict=False, evaluate=False)
          or v["bn_default_stats"] is Statistics.BATCH),
    Claim("C11", "SE answer", "By default, it is False and fit method set it to True.",
          "A BN layer called without training runs in inference mode; fit passes training=True to it.",
          ("bn_default_stats", "fit_passes_true"),
          _all(_is("bn_default_stats", Statistics.MOVING), _is("fit_passes_true", Training.TRUE))),
    Claim("C12", "SE answer", "We need this Flag here so that we can compensate(during testing) the loss to the "
          "Output value",
          "Keras' Dropout compensates at test time for the units it switched off in training.",
          ("dropout_inverted", "dropout_inference"),
          lambda v: v["dropout_inverted"] is False and v["dropout_inference"] is False,
          why="the answer's own words; the passage it then quotes gives the alternative Keras uses (C19)"),
    # --- Quoted in the answer: the Keras documentation of BatchNormalization ---
    Claim("C13", "SE answer", "training=True: The layer will normalize its inputs using the mean and variance of the "
          "current batch",
          "A trainable BN layer called with training=True normalises with the batch statistics.",
          ("bn_trainable_stats",), _is("bn_trainable_stats", Statistics.BATCH), said_by="Keras BN documentation",
          why="the documentation states the frozen case separately (C45)"),
    Claim("C14", "SE answer", "training=False: The layer will normalize its inputs using the mean and variance of its "
          "moving statistics, learned during training",
          "A BN layer called with training=False normalises with its moving statistics, which training-mode steps "
          "update.",
          ("bn_inference_stats", "bn_trainable_updates"),
          _all(_is("bn_inference_stats", Statistics.MOVING), _is("bn_trainable_updates", True)),
          said_by="Keras BN documentation"),
    # --- Quoted in the answer: d2l.ai ---
    Claim("C15", "SE answer", "BN(x)= γ⊙(x−μ)/σ + β",
          "A BN layer outputs gamma*(x - mu)/sigma + beta per channel (sigma = sqrt(variance + epsilon)), with mu and "
          "sigma of the batch in training mode and the moving statistics in inference mode.",
          ("bn_trainable_stats", "bn_inference_stats"),
          _all(_is("bn_trainable_stats", Statistics.BATCH), _is("bn_inference_stats", Statistics.MOVING)),
          said_by="d2l.ai", why="the two rows compare the layer's output with this formula"),
    # --- Quoted in the answer: Géron ---
    Claim("C16", "SE answer", "each BN layer adds four parameters per input: γ, β, μ, and σ",
          "A BN layer holds four numbers per channel (Keras stores the moving variance rather than sigma).",
          ("bn_variables",), lambda v: v["bn_variables"].parameters_per_channel == 4, said_by="Géron"),
    Claim("C17", "SE answer", "μ and σ, are the moving averages; they are not affected by backpropagation, so Keras "
          "calls them \u201cnon-trainable\u201d. However, they are estimated during training",
          "The moving statistics are non-trainable weights updated by an exponential moving average in "
          "training-mode steps, and fit's gradient step leaves them alone even where they shape the loss (inference "
          "mode).",
          ("bn_variables", "bn_trainable_updates", "bn_moving_average", "inference_mode_received",
           "inference_mode_updates"),
          _all(lambda v: v["bn_variables"].moving_statistics_non_trainable is True, _is("bn_trainable_updates", True),
               _is("bn_moving_average", True), lambda v: not _in_inference_mode(v).statistics),
          said_by="Géron"),
    Claim("C18", "SE answer", "In Keras, \u201cnon-trainable\u201d really means \u201cuntouched by backpropagation",
          "fit's gradient step changes no non-trainable variable: neither a frozen base's weights and statistics nor "
          "the moving statistics of a BN layer in inference mode, although they shape its output.",
          ("frozen_base", "inference_mode_received", "inference_mode_updates"),
          _all(_is("frozen_base", FrozenBase(kernels=False, statistics=False)),
               lambda v: not _in_inference_mode(v).statistics),
          said_by="Géron"),
    Claim("C19", "SE answer", "we need to multiply each neuron\u2019s input connection weights by 0.5 after training "
          "... Alternatively, we can divide each neuron\u2019s output by the keep probability during training",
          "Dropout's zeros must be compensated, by scaling weights after training or by dividing outputs by the keep "
          "probability during training; Keras does the second (survivors x 1/(1 - rate) in training, identity in "
          "inference), so nothing is rescaled after training.",
          ("dropout_inverted", "dropout_inference"),
          _all(_is("dropout_inverted", True), _is("dropout_inference", True)), said_by="Géron",
          why="read as the two alternatives the passage offers, not as a statement that Keras takes the first"),
    # --- The blog article (003) ---
    Claim("C20", "blog", "Specifically, it disables the application of dropout layers and batch normalization's "
          "training-time statistics updates",
          "Passed to a pretrained base during fit, training=False stops the Dropout inside the base from dropping and "
          "its BN layers from updating their statistics.",
          ("dropout_inside_base", "nested_override"),
          _all(_is("dropout_inside_base", False), _is("nested_override", False)),
          why="the article's opening sentence, about training=False 'applied during transfer learning'"),
    Claim("C21", "blog", "When training=False is set for a pre-trained model, the weights of all layers are frozen",
          "Layers that run in inference mode because training=False was passed to them are not updated by fit "
          "(their kernels stay unchanged).",
          ("inference_mode_received", "inference_mode_updates", "nested_kernels"),
          lambda v: not _in_inference_mode(v).kernels and v["nested_kernels"] is False,
          why="tested on a base whose layers received training=False in fit (so the override of some versions "
              "cannot decide it), and on base(x, training=False) as the tutorials write it"),
    Claim("C22", "blog", "This means the gradient calculations bypass these layers completely",
          "No gradient update reaches layers that run in inference mode because of training=False: their kernels "
          "and BN gamma/beta stay unchanged in fit.",
          ("inference_mode_received", "inference_mode_updates"),
          lambda v: not (_in_inference_mode(v).kernels or _in_inference_mode(v).affine)),
    Claim("C23", "blog", "Setting training=False disables this dropout",
          "A Dropout layer called with training=False is the identity.",
          ("dropout_inference",), _is("dropout_inference", True),
          why="the paragraph describes the layers themselves; passed to a pretrained base during fit, see C20"),
    Claim("C24", "blog", "batch normalization layers maintain running means and variances of activations computed "
          "during the training phase",
          "Training-mode steps of a trainable BN layer update its moving mean and variance, as an exponential "
          "moving average of the batches' statistics.",
          ("bn_trainable_updates", "bn_moving_average"),
          _all(_is("bn_trainable_updates", True), _is("bn_moving_average", True))),
    Claim("C25", "blog", "With training=False, these running statistics are used for normalization instead of the "
          "batch statistics",
          "A BN layer called with training=False normalises with its moving statistics.",
          ("bn_inference_stats",), _is("bn_inference_stats", Statistics.MOVING),
          why="the paragraph describes the layers themselves; passed to a pretrained base during fit, see C20"),
    Claim("C26", "blog", "using batch statistics during inference could lead to inconsistent results, depending on "
          "the batch size",
          "With training=True an image's BN output depends on the rest of its batch; with training=False it does "
          "not.",
          ("bn_batch_dependence",),
          _is("bn_batch_dependence", ByTraining(training_true=True, training_false=False))),
    Claim("C27", "blog", "Effectively, setting training=False ensures consistent and deterministic behavior during the "
          "inference or prediction phase",
          "With training=False, Dropout is the identity and an image's BN output does not depend on its batch.",
          ("dropout_inference", "bn_batch_dependence"),
          _all(_is("dropout_inference", True), lambda v: v["bn_batch_dependence"].training_false is False)),
    Claim("C28", "blog", "Setting training=False for the frozen layers is crucial for efficiency and consistency",
          "For frozen layers, training=False changes what they compute: without it, frozen BN layers would normalise "
          "with batch statistics or update their statistics in fit, or a frozen base's own Dropout would drop in fit.",
          ("bn_frozen_stats", "frozen_base", "dropout_frozen_drops"),
          lambda v: (v["bn_frozen_stats"] is not Statistics.MOVING or v["frozen_base"].statistics is True
                     or v["dropout_frozen_drops"] is True),
          why="consistency only: efficiency is not measured (see the statements not audited); 'the frozen layers' "
              "read as any frozen base, Dropout included: a frozen BN layer computes the same with or without "
              "training=False, while a Dropout with trainable=False still drops in fit without it (C57)"),
    Claim("C29", "blog", "Failing to do so can lead to unexpected behavior",
          "Leaving out training=False can change a pretrained base during fit: with part of the base unfrozen and the "
          "base called without a training argument (the article's Example 2), fit moves the BN statistics of the "
          "unfrozen layers.",
          ("mobilenet_2019",), _some_bn_moved("mobilenet_2019"),
          why="'can' read as a possibility, in the article's own fine-tuning example; frozen layers keep their "
              "statistics either way (C28)"),
    Claim("C30", "blog", "Training loop (training=True implicitly applied here for the added classifier)",
          "In fit, a Dropout in the head after a base called as base(x) runs in training mode.",
          ("head_dropout_plain",), _is("head_dropout_plain", True)),
    Claim("C31", "blog", "base_model.trainable = False effectively sets training=False for all layers within "
          "base_model during the prediction phase",
          "In predict, the layers of a frozen base run in inference mode (they receive training=False).",
          ("frozen_predict_mode",), _is("frozen_predict_mode", Training.FALSE),
          why="limited to the prediction phase, as the sentence says; predict passes training=False to every layer, "
              "frozen or not (row predict_mode)"),
    Claim("C32", "blog", "Compile and train the model (training=True for trainable layers)",
          "In fit, the unfrozen layers of a base called as base(x) receive training=True.",
          ("fit_passes_true",), _is("fit_passes_true", Training.TRUE)),
    Claim("C33", "blog", "Layers up to a certain point are frozen, implicitly utilizing training=False during both "
          "training and inference",
          "Frozen BN layers behave as in inference mode in training and inference: called with training=True they "
          "normalise with their moving statistics and do not update them, and fit with a frozen base leaves them.",
          ("bn_frozen_stats", "bn_frozen_updates", "frozen_base"),
          _all(_is("bn_frozen_stats", Statistics.MOVING), _is("bn_frozen_updates", False),
               lambda v: v["frozen_base"].statistics is False),
          why="the article's model, ResNet50, has no Dropout: its mode-dependent layers are BatchNormalization; a "
              "frozen Dropout would still drop (C43)"),
    Claim("C34", "blog", "x = self.dense(inputs, training=training) # Explicitly pass training flag",
          "Passing training to the example's Dense layer changes what it computes.",
          ("dense_training_ignored",), _is("dense_training_ignored", False),
          why="a Dense layer has no training mode: Keras accepts the argument and the output is the same"),
    Claim("C35", "blog", "This shows how to explicitly manage the training flag within a custom layer",
          "Inside a custom layer, a training value passed explicitly to a sublayer decides the sublayer's mode, also "
          "during fit.",
          ("inference_mode_received",), _is("inference_mode_received", Training.FALSE)),
    Claim("C36", "blog", "During inference, training=None (or False if explicitly passed) will be used, influencing "
          "dropout and batch normalization accordingly",
          "At inference layers never receive training=True: predict passes False and a call without the argument "
          "None or False; Dropout is then the identity and BN keeps its statistics.",
          ("predict_mode", "call_mode", "dropout_inference", "inference_updates_bn"),
          _all(_not_training_mode("predict_mode"), _not_training_mode("call_mode"), _is("dropout_inference", True),
               _is("inference_updates_bn", PredictEvaluate(predict=False, evaluate=False))),
          why="read as 'not training mode'; the literal value is False in predict (row predict_mode) and depends on "
              "the Keras in a plain call (row call_mode)"),
    # --- The Keras FAQ (004) ---
    Claim("C37", "Keras FAQ", "training is a boolean argument in call that determines whether the call should be run "
          "in inference mode or training mode",
          "The same layer behaves differently under training=True and training=False: Dropout drops or not, BN uses "
          "batch or moving statistics.",
          ("dropout_inverted", "dropout_inference", "bn_trainable_stats", "bn_inference_stats"),
          _all(_is("dropout_inverted", True), _is("dropout_inference", True),
               _is("bn_trainable_stats", Statistics.BATCH), _is("bn_inference_stats", Statistics.MOVING))),
    Claim("C38", "Keras FAQ", "in training mode, a Dropout layer applies random dropout and rescales the output. In "
          "inference mode, the same layer does nothing",
          "Dropout drops and rescales under training=True and is the identity under training=False.",
          ("dropout_inverted", "dropout_inference"),
          _all(_is("dropout_inverted", True), _is("dropout_inference", True))),
    Claim("C39", "Keras FAQ", "Dropout(0.5)(x, training=True) # Applies dropout at training time *and* inference time",
          "A Dropout called with training=True inside a functional model also drops during predict.",
          ("forced_dropout_predict",), _is("forced_dropout_predict", True)),
    Claim("C40", "Keras FAQ", "trainable is a boolean layer attribute that determines the trainable weights of the "
          "layer should be updated to minimize the loss during training",
          "fit updates the weights of an unfrozen base and not those of a frozen one.",
          ("nested_kernels", "frozen_base"),
          _all(_is("nested_kernels", True), lambda v: v["frozen_base"].kernels is False)),
    Claim("C41", "Keras FAQ", "If layer.trainable is set to False, then layer.trainable_weights will always be an "
          "empty list ... len(model.trainable_weights) == 2",
          "A frozen layer has no trainable weights (a MobileNetV2 base; AutoScaleDropout); the tutorial model around "
          "the frozen base then has 2 (the Dense layer's).",
          ("frozen_weights", "autoscale_frozen"),
          _all(_is("frozen_weights", TrainableWeights(base=0, model=2)),
               lambda v: v["autoscale_frozen"].trainable_weights == 0)),
    Claim("C42", "Keras FAQ", "model.fit(...) # Train Dense while excluding ResNet50Base",
          "fit with the base frozen changes neither its kernels nor its BN statistics.",
          ("frozen_base",), _is("frozen_base", FrozenBase(kernels=False, statistics=False))),
    Claim("C43", "Keras FAQ", "the trainable attribute and the training call argument are independent",
          "Each flag does its own job whatever the other says: a frozen Dropout or AutoScaleDropout still drops in "
          "training mode, and a layer in inference mode still has its weights trained.",
          ("dropout_frozen_drops", "autoscale_frozen", "inference_mode_received", "inference_mode_updates"),
          _all(_is("dropout_frozen_drops", True), lambda v: v["autoscale_frozen"].drops_in_training is True,
               lambda v: _in_inference_mode(v).affine and _in_inference_mode(v).kernels)),
    Claim("C44", "Keras FAQ", "a dropout layer where the scaling factor is learned during training ... with a "
          "*frozen* scaling factor",
          "AutoScaleDropout has one trainable weight, which fit moves; frozen, it has none and fit leaves its scale; "
          "called with training=True in a model, trainable or frozen, it drops at training time and in predict.",
          ("autoscale_trainable", "autoscale_frozen", "autoscale_forced_trainable", "autoscale_forced_frozen"),
          _all(_is("autoscale_trainable", AutoScale(trainable_weights=1, drops_in_training=True, fit_moved_scale=True)),
               _is("autoscale_frozen", AutoScale(trainable_weights=0, drops_in_training=True, fit_moved_scale=False)),
               _is("autoscale_forced_trainable", True), _is("autoscale_forced_frozen", True)),
          why="the FAQ's comments say the forced layer applies dropout 'at training time *and* inference time'"),
    Claim("C45", "Keras FAQ", "setting bn.trainable = False will also make its training call argument default to "
          "False, meaning that the layer will no update its state during training",
          "A frozen BN layer called with training=True normalises with its moving statistics and does not update "
          "them, also inside a model trained with fit.",
          ("bn_frozen_stats", "bn_frozen_updates", "frozen_base"),
          _all(_is("bn_frozen_stats", Statistics.MOVING), _is("bn_frozen_updates", False),
               lambda v: v["frozen_base"].statistics is False)),
    Claim("C46", "Keras FAQ", "This behavior only applies for BatchNormalization. For every other layer, weight "
          "trainability and \u201cinference vs training mode\u201d remain independent",
          "trainable=False puts a BN layer in inference mode, and changes the mode of none of the other layers "
          "tested whose output depends on training: five dropout and noise layers, two augmentation "
          "layers, an LSTM with dropout, and AutoScaleDropout.",
          ("bn_frozen_stats", "trainable_changes_mode"),
          _all(_is("bn_frozen_stats", Statistics.MOVING), lambda v: v["trainable_changes_mode"].none)),
    # --- The tutorials (their advice paraphrased; see the recipes) ---
    Claim("C47", "MobileNetV2 2020", "[paraphrase] pass training=False when calling the base so that its "
          "BatchNormalization layers stay in inference mode after unfreezing for fine-tuning",
          "Fine-tuning MobileNetV2 from layer 100 with base(x, training=False) moves no BN statistics.",
          ("mobilenet_as_written",), _no_bn_moved("mobilenet_as_written")),
    Claim("C48", "Xception 2020", "[paraphrase] the base is called with training=False so that unfreezing it later "
          "does not update the BatchNormalization statistics",
          "Fine-tuning the fully unfrozen Xception with base(x, training=False) moves no BN statistics.",
          ("xception_as_written",), _no_bn_moved("xception_as_written")),
    Claim("C49", "Xception 2020", "[paraphrase] with base_model.trainable = False the BatchNormalization layers run "
          "in inference mode and do not update their statistics",
          "A frozen BN layer runs in inference mode under training=True, and fit with a frozen base changes neither "
          "its kernels nor its BN statistics.",
          ("bn_frozen_stats", "frozen_base"),
          _all(_is("bn_frozen_stats", Statistics.MOVING),
               _is("frozen_base", FrozenBase(kernels=False, statistics=False)))),
    Claim("C50", "Xception 2020", "[paraphrase] recompile the model after changing trainable",
          "A trainable change made after compile is ignored by fit until the model is recompiled, and honoured "
          "after.",
          ("recompile",), _is("recompile", Recompile(without_recompile=True, after_recompile=False))),
    # --- The Keras guide after PR #20298 (quoted from the audit's issue) ---
    Claim("C51", "Keras 3 guide", "[paraphrase] after unfreezing, set the BatchNormalization layers' trainable = False "
          "explicitly",
          "With every BN layer frozen, fine-tuning moves no BN statistics and no gamma/beta, while kernels train "
          "(small model, MobileNetV2 and Xception).",
          ("remedy", "mobilenet_remedy", "xception_remedy"),
          _all(_is("remedy", REMEDY_WORKS), _no_bn_moved("mobilenet_remedy"), _no_bn_moved("xception_remedy"))),
    Claim("C52", "Keras 3 guide", "or otherwise call the model with training=False",
          "Instead of freezing the BN layers, calling the unfrozen base with training=False keeps their statistics "
          "fixed during fine-tuning (small model, MobileNetV2 and Xception).",
          ("nested_override", "mobilenet_as_written", "xception_as_written"),
          _all(_is("nested_override", False), _no_bn_moved("mobilenet_as_written"),
               _no_bn_moved("xception_as_written"))),
    Claim("C53", "Keras 3 guide", "still running in inference mode since we passed training=False",
          "After base_model.trainable = True, a base called with training=False runs its BN layers in inference mode "
          "during fit: they receive training=False and keep their statistics.",
          ("nested_bn_mode", "xception_as_written"),
          _all(_is("nested_bn_mode", Training.FALSE), _no_bn_moved("xception_as_written"))),
]

# --- The book's own chapters (the self-audit: each is cited next to its sentence as {doc}`C54 <claims_audit>`) ---
_INFERENCE_MODE_WHEN_FROZEN = _all(_is("bn_frozen_stats", Statistics.MOVING), _is("bn_frozen_updates", False))
_RECOMMENDED_WORKS = _all(_is("remedy_alone", REMEDY_WORKS), _is("remedy_alone_dropout", True),
                          _no_bn_moved("mobilenet_remedy"), _no_bn_moved("xception_remedy"))
_TWO_BY_TWO = _all(_is("bn_trainable_stats", Statistics.BATCH), _is("bn_inference_stats", Statistics.MOVING),
                   _is("bn_frozen_stats", Statistics.MOVING), _is("bn_trainable_updates", True),
                   _is("bn_inference_updates", False), _is("bn_frozen_updates", False))
CLAIMS += [
    Claim("C54", "trainable_versus_training", "a change made after compile takes effect at the next compile",
          "A trainable change made after compile is ignored by fit until the next compile, and honoured after.",
          ("recompile",), _is("recompile", Recompile(without_recompile=True, after_recompile=False))),
    Claim("C55", "trainable_versus_training", "fit passes training=True to the layers, predict and evaluate pass "
          "training=False",
          "The training value a layer's call receives is True in fit, also inside a base called with "
          "training=False, and False in predict and in evaluate.",
          ("fit_passes_true", "nested_bn_mode", "predict_mode", "evaluate_mode"),
          _all(_is("fit_passes_true", Training.TRUE), _is("nested_bn_mode", Training.TRUE),
               _is("predict_mode", Training.FALSE), _is("evaluate_mode", Training.FALSE)),
          why="'the layers' read as every layer, those of a base called with training=False included: where that "
              "training=False is honoured (keras-nightly, tf-keras) they receive False in fit"),
    Claim("C56", "trainable_versus_training", "in training mode it zeroes each input with probability rate and "
          "multiplies the survivors by 1/(1-rate), so that the expected output equals the input and nothing is "
          "rescaled at inference",
          "Dropout(0.5) under training=True zeroes about half of its inputs and doubles the rest; under "
          "training=False it is the identity.",
          ("dropout_inverted", "dropout_inference"),
          _all(_is("dropout_inverted", True), _is("dropout_inference", True))),
    Claim("C57", "trainable_versus_training", "With trainable=False the layer still drops",
          "A Dropout layer with trainable=False still drops under training=True.",
          ("dropout_frozen_drops",), _is("dropout_frozen_drops", True)),
    Claim("C58", "trainable_versus_training", "Called directly without a training argument, a layer runs in "
          "inference mode, and so do the layers of a model called so, unless an augmentation layer before them "
          "defaults to training=True",
          "A model or layer called without a training argument runs its layers in inference mode: they receive "
          "False or None, and BN normalises with its moving statistics. (The exception, a model with RandomFlip "
          "before its BN called as model(x), is measured per variant by augmented_call.)",
          ("call_mode", "bn_default_stats", "augmented_call"),
          _all(_not_training_mode("call_mode"), _is("bn_default_stats", Statistics.MOVING)),
          why="RandomFlip's call defaults to training=True, and on some Keras releases that value reaches the layers "
              "after it: the chapter states the exception with augmented_call's value for the variant it ran on."),
    Claim("C59", "trainable_versus_training", "trainable=False empties trainable_weights and freezes the scale, yet "
          "the layer keeps dropping whenever it runs in training mode",
          "A frozen AutoScaleDropout has no trainable weights, fit leaves its scale, and it drops in training mode "
          "(called so, and in fit).",
          ("autoscale_frozen", "autoscale_frozen_fit_training"),
          _all(_is("autoscale_frozen", AutoScale(trainable_weights=0, drops_in_training=True, fit_moved_scale=False)),
               _is("autoscale_frozen_fit_training", True))),
    Claim("C60", "trainable_versus_training", "the moving mean and variance, which training-mode calls update as an "
          "exponential moving average of the batches' statistics, not by backpropagation",
          "The moving statistics are non-trainable; a training-mode call updates the moving mean as "
          "momentum x old + (1 - momentum) x batch mean; fit's gradient step leaves them in inference mode.",
          ("bn_variables", "bn_moving_average", "inference_mode_received", "inference_mode_updates"),
          _all(lambda v: v["bn_variables"].moving_statistics_non_trainable is True, _is("bn_moving_average", True),
               lambda v: not _in_inference_mode(v).statistics)),
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
          _all(_INFERENCE_MODE_WHEN_FROZEN, lambda v: not v["remedy"].statistics,
               lambda v: not v["remedy_alone"].statistics)),
    Claim("C64", "mobilenet_v2_2019", "It never passes a training argument",
          "The 2019 recipe's model calls its base without a training argument.",
          ("tutorial_2019_call",), _is("tutorial_2019_call", Training.NONE)),
    Claim("C65", "mobilenet_v2_2019", "the base receives the training value of the outer call, so during fit its "
          "unfrozen BatchNormalization layers run in training mode",
          "A base called without a training argument receives fit's training=True: its unfrozen BN layers "
          "normalise with the batch and update their moving statistics (MobileNetV2 from layer 100).",
          ("fit_passes_true", "bn_trainable_stats", "mobilenet_2019"),
          _all(_is("fit_passes_true", Training.TRUE), _is("bn_trainable_stats", Statistics.BATCH),
               _some_bn_moved("mobilenet_2019"))),
    Claim("C66", "side_by_side", "the recipe that does not depend on how a Keras version passes training through "
          "nested models",
          "Every BN layer frozen after unfreezing and the base called without training: statistics and gamma/beta "
          "kept, kernels trained and the head's Dropout in training mode (small model), no BN statistics moved "
          "(MobileNetV2, Xception).",
          ("remedy_alone", "remedy_alone_dropout", "mobilenet_remedy", "xception_remedy"), _RECOMMENDED_WORKS),
    Claim("C67", "summary", "Only trainable=True with training=True trains the layer's statistics; a frozen layer "
          "behaves as in inference whatever training it receives",
          "A BN layer updates its moving statistics (and normalises with the batch) only when trainable and called "
          "with training=True; frozen, it normalises with its moving statistics under training=True.",
          ("bn_trainable_stats", "bn_inference_stats", "bn_frozen_stats", "bn_trainable_updates",
           "bn_inference_updates", "bn_frozen_updates"), _TWO_BY_TWO),
    Claim("C68", "summary", "set trainable = False on every BatchNormalization layer in it, call the base without "
          "training=False, then compile",
          "Every BN layer frozen after unfreezing and the base called without training: statistics and gamma/beta "
          "kept, kernels trained and the head's Dropout in training mode (small model), no BN statistics moved "
          "(MobileNetV2, Xception).",
          ("remedy_alone", "remedy_alone_dropout", "mobilenet_remedy", "xception_remedy"), _RECOMMENDED_WORKS),
    Claim("C69", "introduction", "What keeps the statistics fixed on all of them is to set trainable = False on every "
          "BatchNormalization layer of the base, at any depth, after unfreezing it and before compiling",
          "Every BN layer frozen after unfreezing: fit moved no BN statistics and no gamma/beta and trained the "
          "kernels, with the base called as base(x, training=False) and as base(x) (small model), and no BN "
          "statistics moved (MobileNetV2, Xception).",
          ("remedy", "remedy_alone", "mobilenet_remedy", "xception_remedy"),
          _all(_is("remedy", REMEDY_WORKS), _is("remedy_alone", REMEDY_WORKS), _no_bn_moved("mobilenet_remedy"),
               _no_bn_moved("xception_remedy"))),
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

BY_ID = {claim.id: claim for claim in CLAIMS}


@dataclasses.dataclass(frozen=True)
class Verdict:
    claim: Claim
    per_variant: dict[str, bool | None]  # None: the evidence did not test the reading on that variant

    @property
    def overall(self) -> str:
        held = {value for value in self.per_variant.values() if value is not None}
        if not held:
            return NOT_TESTED
        return HOLDS if held == {True} else FAILS if held == {False} else DEPENDS


def _verdict_on(claim: Claim, values: dict) -> bool | None:
    try:
        return bool(claim.check(values))
    except Untested:
        return None


def verdicts(matrix: Matrix, claims: list[Claim] | None = None) -> list[Verdict]:
    return [Verdict(claim, {name: _verdict_on(claim, column["values"]) for name, column in matrix.columns.items()})
            for claim in (CLAIMS if claims is None else claims)]


def _shown(value: bool | None) -> str:
    return NOT_TESTED if value is None else HOLDS if value else FAILS


def verdict_table(results: list[Verdict], matrix: Matrix) -> FactTable:
    """The audit's fact table; in HTML each claim's evidence links to the matrix rows that computed it, and each
    claim's row can be linked to (``#claim-C12``)."""
    names = list(matrix.columns)
    header = ["id", "said by", "claim", "reading tested", *map(matrix.label, names), "verdict", "evidence"]
    rows, links = [], {}
    for i, verdict in enumerate(results):
        claim = verdict.claim
        reading = claim.reading + (f" (Why this reading: {claim.why}.)" if claim.why else "")
        rows.append([claim.id, claim.attribution, claim.quote, reading,
                     *(_shown(verdict.per_variant[n]) for n in names), verdict.overall, ", ".join(claim.evidence)])
        links[i, len(header) - 1] = [(row_id, f"#evidence-{row_id}") for row_id in claim.evidence]
    return FactTable(header, rows, links=links, row_ids=[f"claim-{v.claim.id}" for v in results])


def not_audited_table() -> FactTable:
    return FactTable(["source", "statement", "why it is not a claim"], [list(row) for row in NOT_AUDITED])


def tally(results: list[Verdict], by_the_book: bool = False) -> dict[str, collections.Counter]:
    """Who said it -> how many of their claims hold, fail, depend on the version (or were not tested): the sources'
    claims, each counted for its author (a quoted author for their own words), or with ``by_the_book`` the
    chapters'."""
    counts: dict[str, collections.Counter] = {}
    for verdict in results:
        if verdict.claim.by_the_book == by_the_book:
            counts.setdefault(verdict.claim.speaker, collections.Counter())[verdict.overall] += 1
    return counts


# --- The book audits itself ----------------------------------------------------------------------------------------

# The marker a chapter puts next to a sentence that states a behaviour of the flags: a link to the audit page whose
# text is the claim's id.
MARKER = re.compile(r"\{doc\}`(C\d+) <claims_audit>`")
GLUE = re.compile(r"\{glue:(?:text|md|any)\}`[^`]+`")

# A sentence is about the flags when it names one of them, or a mode, or the layers whose behaviour they decide ...
_FLAGS = re.compile(r"training=|`training`|training mode|inference mode|trainable|BatchNormalization|\bBN\b|Dropout"
                    r"|moving (?:statistics|mean|variance)|gamma|`beta`")
# ... and it states a behaviour when it says what they do (a verb of what happened or happens to layers or weights).
_BEHAVIOUR = re.compile(
    r"\b(?:protect(?:s|ed)?|update[sd]?|mov(?:e|es|ed)|drop(?:s|ped|ping)?|normali[sz](?:e|es|ed|ing)|"
    r"receiv(?:e|es|ed)|overrid(?:e|es|den)|leak(?:s|ed)?|reach(?:es|ed)?|ignor(?:e|es|ed)|keeps?|kept|"
    r"stay(?:s|ed)?|freezes|empties|defaults?|decides?|applies|disables?|pass(?:es|ed)|runs? in|ran in|"
    r"works|worked|fails|failed|does nothing|has no effect|no longer|turns? off|"
    r"stops?|stopped|matters?)\b", re.IGNORECASE)
_LITERAL = re.compile(r"``.+?``", re.DOTALL)  # a double-backtick code span: a marker shown, not cited
_QUOTED = re.compile(r"\u201c[^\u201d]*\u201d|\"[^\"\n]*\"")
_FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.MULTILINE | re.DOTALL)


def sentences(markdown: str) -> list[str]:
    """The Markdown's prose as sentences (list items, headings and table rows separately; code blocks, directives
    and comment lines left out)."""
    text = _LITERAL.sub("", _FENCE.sub("\n\n", markdown))
    units = []
    for block in re.split(r"\n\s*\n|\n(?=\s*(?:[-*+] |\d+\. |#|\|))", text):
        block = " ".join(line.strip() for line in block.splitlines() if not line.lstrip().startswith("%"))
        units += [s for s in re.split(r"(?<=[.;!?])\s+(?=[A-Z`{(\[*])", block) if s.strip()]
    return units


def states_behaviour(sentence: str) -> bool:
    """Does the sentence state something the flags do (rather than quote someone, ask, describe a setup, or introduce
    the output below it)? A heuristic: it names a flag, a mode, or BatchNormalization/Dropout, and a verb of what they
    do (protect, update, move, drop, normalise, receive, override, leak, keep, pass...)."""
    plain = _QUOTED.sub("", sentence).strip()
    if "?" in plain or re.search(r"\bwhether\b", plain, re.IGNORECASE):
        return False  # a question
    if plain.endswith(":"):
        return False  # it introduces the computed output below it
    return bool(_FLAGS.search(plain) and _BEHAVIOUR.search(plain))


def unsupported_statements(markdown: str) -> list[str]:
    """The sentences that state a behaviour of the flags with neither a glued value nor a claim marker."""
    return [s for s in sentences(markdown) if states_behaviour(s) and not (GLUE.search(s) or MARKER.search(s))]


def markers(markdown: str) -> list[str]:
    """The claim ids the Markdown's markers cite."""
    return MARKER.findall(_LITERAL.sub("", _FENCE.sub("", markdown)))
