"""The claims audit: statements about ``training``, ``trainable``, BatchNormalization and Dropout from the
texts the book answers, each with the reading tested and a verdict computed per Keras variant.

A claim's ``check`` reads one column of the version matrix (:mod:`companion.matrix`: the typed values measured
under one Keras variant, see :mod:`companion.evidence`) and says whether the claim held there. Across the variants
the verdict is "holds", "fails" or "depends on the version". Quotes are brief and attributed; where the source is a
tutorial whose text is not reproduced here, the advice is paraphrased and marked as such.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any, Callable

from companion.evidence import (AutoScale, BatchNormVariables, ByTraining, FrozenBase, PredictEvaluate, Recompile,
                                Statistics, Training, TrainableWeights)
from companion.matrix import REMEDY_WORKS, Matrix
from companion.tables import FactTable

SOURCES = {
    "SE question": "Data Science Stack Exchange, question 78053 ('what does training=True do?')",
    "SE answer": "Data Science Stack Exchange, the answer to question 78053 (post 78093)",
    "blog": "Blog article 'What effect does training=False have on TensorFlow transfer learning?' (2025-01-30)",
    "Keras FAQ": "Keras FAQ, 'training' argument in call() versus the 'trainable' attribute",
    "MobileNetV2 2020": "TensorFlow tutorial 'Transfer learning and fine-tuning', tensorflow/docs adae1941 (2020)",
    "Xception 2020": "Keras guide 'Transfer learning & fine-tuning', keras-io guides/transfer_learning.py (2020)",
    "Keras 3 guide": "Keras guide after keras-team/keras PR #20298 (2024)",
}

HOLDS, FAILS, DEPENDS = "holds", "fails", "depends on the version"


@dataclasses.dataclass(frozen=True)
class Claim:
    source: str  # a key of SOURCES
    quote: str  # brief quote, or a paraphrase in [brackets]
    reading: str  # the reading that was tested
    evidence: tuple[str, ...]  # matrix row ids the check reads
    check: Callable[[dict], bool]  # one variant's values (row id -> typed value) -> did the claim hold there?


def _is(row: str, expected: Any) -> Callable[[dict], bool]:
    return lambda v: v[row] == expected


def _all(*checks: Callable[[dict], bool]) -> Callable[[dict], bool]:
    return lambda v: all(check(v) for check in checks)


def _no_bn_moved(row: str) -> Callable[[dict], bool]:
    """An architecture row moved no BN layer's statistics."""
    return lambda v: v[row].bn_moved.none


def _all_kernels(row: str) -> Callable[[dict], bool]:
    """An architecture row updated every one of its unfrozen kernels (at least one)."""
    return lambda v: v[row].kernels_updated.all


CLAIMS = [
    # --- The Stack Exchange question (000/001) ---
    Claim("SE question", "we set the training argument to False to maintain the pre-trained values of Batch "
          "Normalization",
          "Calling an unfrozen base with training=False keeps its BN moving statistics fixed during fit.",
          ("nested_override",), _is("nested_override", False)),
    Claim("SE question", "the trainable attribute to False to freeze the weights",
          "With base.trainable=False, fit changes neither the base's kernels nor its BN statistics.",
          ("frozen_base",), _is("frozen_base", FrozenBase(kernels=False, statistics=False))),
    Claim("SE question", "Afterwards for fine-tuning, we can re-train the weights and set the trainable attribute "
          "to True",
          "After unfreezing (and recompiling), fit updates the base's kernels, even with base(x, training=False).",
          ("nested_kernels", "mobilenet_as_written", "xception_as_written"),
          _all(_is("nested_kernels", True), _all_kernels("mobilenet_as_written"), _all_kernels("xception_as_written"))),
    Claim("SE question", "When the argument training is True, that, to me, implies ... the BN mean and variance are "
          "being updated",
          "A trainable BN layer called with training=True updates its moving statistics (a frozen one does not: "
          "see the FAQ's BatchNormalization claim).",
          ("bn_trainable_updates",), _is("bn_trainable_updates", True)),
    Claim("SE question", "[training=True implies] Dropout is being applied",
          "A Dropout layer called with training=True drops (and scales) its inputs.",
          ("dropout_inverted",), _is("dropout_inverted", True)),
    Claim("SE question", "[training=True implies] the weights are from the backwards pass",
          "The training argument itself does not update weights: whether backprop changes a layer's weights "
          "follows trainable (a frozen AutoScaleDropout trains in training mode without its scale moving; a base "
          "called with training=False still has its kernels trained).",
          ("autoscale_frozen", "nested_kernels"),
          lambda v: not (not v["autoscale_frozen"].fit_moved_scale and v["nested_kernels"] is True)),
    # --- Its answer (000-002) ---
    Claim("SE answer", "training=True: The layer will normalize its inputs using the mean and variance of the "
          "current batch",
          "A trainable BN layer called with training=True normalises with the batch statistics (the answer quotes "
          "the Keras documentation, which states the frozen case separately).",
          ("bn_trainable_stats",), _is("bn_trainable_stats", Statistics.BATCH)),
    Claim("SE answer", "training=False: The layer will normalize its inputs using the mean and variance of its "
          "moving statistics",
          "A BN layer called with training=False normalises with its moving statistics.",
          ("bn_inference_stats",), _is("bn_inference_stats", Statistics.MOVING)),
    Claim("SE answer", "γ, β are learned ... learned in Backpropagation",
          "A trainable BN layer's gamma and beta are trainable weights that a training step updates.",
          ("bn_variables", "bn_trainable_affine"),
          _all(lambda v: v["bn_variables"].gamma_beta_trainable is True, _is("bn_trainable_affine", True))),
    Claim("SE answer", "each BN layer adds four parameters per input: γ, β, μ, and σ",
          "A BN layer holds four numbers per channel (Keras stores the moving variance rather than σ).",
          ("bn_variables",), lambda v: v["bn_variables"].parameters_per_channel == 4),
    Claim("SE answer", "μ and σ, are the moving averages; they are not affected by backpropagation, so Keras calls "
          "them \u201cnon-trainable\u201d. However, they are estimated during training",
          "The moving statistics are non-trainable weights, and training-mode steps of a trainable BN layer move "
          "them.",
          ("bn_variables", "bn_trainable_updates"),
          _all(lambda v: v["bn_variables"].moving_statistics_non_trainable is True, _is("bn_trainable_updates", True))),
    Claim("SE answer", "if you will not set it False it will continue updating μ and σ with every batch of test data",
          "predict or evaluate, without training=False, update the BN moving statistics.",
          ("inference_updates_bn",),
          lambda v: v["inference_updates_bn"] != PredictEvaluate(predict=False, evaluate=False)),
    Claim("SE answer", "By default, it is False and fit method set it to True.",
          "A BN layer called without training runs in inference mode; fit passes training=True to it.",
          ("bn_default_stats", "fit_passes_true"),
          _all(_is("bn_default_stats", Statistics.MOVING), _is("fit_passes_true", Training.TRUE))),
    Claim("SE answer", "We need this Flag here so that we can compensate(during testing) ... multiply each neuron's "
          "input connection weights by 0.5 after training",
          "Keras' Dropout compensates at test time (rather than scaling the survivors during training).",
          ("dropout_inverted", "dropout_inference"),
          lambda v: v["dropout_inverted"] is False and v["dropout_inference"] is False),
    Claim("SE answer", "Alternatively, we can divide each neuron's output by the keep probability during training",
          "Keras' Dropout does this alternative: survivors are scaled by 1/(1-rate) in training, and inference "
          "is the identity, so nothing is rescaled after training.",
          ("dropout_inverted", "dropout_inference"),
          _all(_is("dropout_inverted", True), _is("dropout_inference", True))),
    # --- The blog article (003) ---
    Claim("blog", "When training=False is set for a pre-trained model, the weights of all layers are frozen",
          "fit leaves the kernels of an unfrozen base called with training=False unchanged.",
          ("nested_kernels",), _is("nested_kernels", False)),
    Claim("blog", "This means the gradient calculations bypass these layers completely",
          "No gradient update reaches an unfrozen base called with training=False: its kernels and BN gamma/beta "
          "stay unchanged in fit.",
          ("nested_kernels",), _is("nested_kernels", False)),
    Claim("blog", "Setting training=False disables this dropout",
          "Dropout layers inside a base called with training=False do not drop during fit.",
          ("dropout_inside_base",), _is("dropout_inside_base", False)),
    Claim("blog", "With training=False, these running statistics are used for normalization instead of the batch "
          "statistics",
          "A BN layer called with training=False normalises with its moving statistics, also when it sits in an "
          "unfrozen base called with training=False during fit (it then receives training=False).",
          ("bn_inference_stats", "nested_bn_mode"),
          _all(_is("bn_inference_stats", Statistics.MOVING), _is("nested_bn_mode", Training.FALSE))),
    Claim("blog", "using batch statistics during inference could lead to inconsistent results, depending on the "
          "batch size",
          "With training=True an image's BN output depends on the rest of its batch; with training=False it does "
          "not.",
          ("bn_batch_dependence",),
          _is("bn_batch_dependence", ByTraining(training_true=True, training_false=False))),
    Claim("blog", "[training=False] and batch normalization's training-time statistics updates",
          "fit does not update the BN statistics of an unfrozen base called with training=False.",
          ("nested_override",), _is("nested_override", False)),
    Claim("blog", "Failing to do so can lead to unexpected behavior",
          "A frozen base called without training=False has its BN statistics updated by fit.",
          ("frozen_base",), lambda v: v["frozen_base"].statistics is True),
    Claim("blog", "Training loop (training=True implicitly applied here for the added classifier)",
          "In fit, a Dropout in the head after a base called as base(x) runs in training mode.",
          ("head_dropout_plain",), _is("head_dropout_plain", True)),
    Claim("blog", "base_model.trainable = False effectively sets training=False for all layers within base_model "
          "during the prediction phase",
          "It is trainable=False that puts every layer of the base in inference mode: a frozen layer runs in "
          "inference mode even when called with training=True (true of BatchNormalization, tested for Dropout too; "
          "in predict every layer runs in inference mode anyway).",
          ("dropout_frozen_drops", "bn_frozen_stats"),
          _all(_is("dropout_frozen_drops", False), _is("bn_frozen_stats", Statistics.MOVING))),
    Claim("blog", "Layers up to a certain point are frozen, implicitly utilizing training=False during both "
          "training and inference",
          "Frozen layers (Dropout and BN alike) behave as in inference mode during fit: frozen Dropout does not "
          "drop, frozen BN normalises with and keeps its moving statistics.",
          ("dropout_frozen_drops", "bn_frozen_stats", "bn_frozen_updates"),
          _all(_is("dropout_frozen_drops", False), _is("bn_frozen_stats", Statistics.MOVING),
               _is("bn_frozen_updates", False))),
    Claim("blog", "During inference, training=None (or False if explicitly passed) will be used, influencing "
          "dropout and batch normalization accordingly",
          "In predict, layers receive training=None; Dropout is then the identity and predict/evaluate leave the BN "
          "statistics alone.",
          ("predict_mode", "dropout_inference", "inference_updates_bn"),
          _all(_is("predict_mode", Training.NONE), _is("dropout_inference", True),
               _is("inference_updates_bn", PredictEvaluate(predict=False, evaluate=False)))),
    # --- The Keras FAQ (004) ---
    Claim("Keras FAQ", "in training mode, a Dropout layer applies random dropout and rescales the output. In "
          "inference mode, the same layer does nothing",
          "Dropout drops and rescales under training=True and is the identity under training=False.",
          ("dropout_inverted", "dropout_inference"),
          _all(_is("dropout_inverted", True), _is("dropout_inference", True))),
    Claim("Keras FAQ", "Dropout(0.5)(x, training=True) # Applies dropout at training time *and* inference time",
          "A Dropout called with training=True inside a functional model also drops during predict.",
          ("forced_dropout_predict",), _is("forced_dropout_predict", True)),
    Claim("Keras FAQ", "If layer.trainable is set to False, then layer.trainable_weights will always be an empty "
          "list ... len(model.trainable_weights) == 2",
          "A frozen MobileNetV2 base has no trainable weights; the tutorial model then has 2 (the Dense layer's).",
          ("frozen_weights",), _is("frozen_weights", TrainableWeights(base=0, model=2))),
    Claim("Keras FAQ", "the trainable attribute and the training call argument are independent",
          "A Dropout layer with trainable=False still drops under training=True.",
          ("dropout_frozen_drops",), _is("dropout_frozen_drops", True)),
    Claim("Keras FAQ", "a dropout layer where the scaling factor is learned during training ... with a *frozen* "
          "scaling factor",
          "AutoScaleDropout has one trainable weight, which fit moves; frozen, it has none, still drops in training "
          "mode, and fit leaves its scale alone.",
          ("autoscale_trainable", "autoscale_frozen"),
          _all(_is("autoscale_trainable", AutoScale(trainable_weights=1, drops_in_training=True, fit_moved_scale=True)),
               _is("autoscale_frozen", AutoScale(trainable_weights=0, drops_in_training=True, fit_moved_scale=False)))),
    Claim("Keras FAQ", "setting bn.trainable = False will also make its training call argument default to False",
          "A frozen BN layer called with training=True normalises with its moving statistics and does not "
          "update them.",
          ("bn_frozen_stats", "bn_frozen_updates"),
          _all(_is("bn_frozen_stats", Statistics.MOVING), _is("bn_frozen_updates", False))),
    Claim("Keras FAQ", "This behavior only applies for BatchNormalization",
          "For Dropout, trainable=False does not change the training/inference behaviour.",
          ("dropout_frozen_drops",), _is("dropout_frozen_drops", True)),
    # --- The tutorials (their advice paraphrased; see the recipes) ---
    Claim("MobileNetV2 2020", "[paraphrase] pass training=False when calling the base so that its "
          "BatchNormalization layers stay in inference mode after unfreezing for fine-tuning",
          "Fine-tuning MobileNetV2 from layer 100 with base(x, training=False) moves no BN statistics.",
          ("mobilenet_as_written",), _no_bn_moved("mobilenet_as_written")),
    Claim("Xception 2020", "[paraphrase] the base is called with training=False so that unfreezing it later "
          "does not update the BatchNormalization statistics",
          "Fine-tuning the fully unfrozen Xception with base(x, training=False) moves no BN statistics.",
          ("xception_as_written",), _no_bn_moved("xception_as_written")),
    Claim("Xception 2020", "[paraphrase] with base_model.trainable = False the BatchNormalization layers run "
          "in inference mode and do not update their statistics",
          "A frozen BN layer runs in inference mode under training=True, and fit with a frozen base changes neither "
          "its kernels nor its BN statistics.",
          ("bn_frozen_stats", "frozen_base"),
          _all(_is("bn_frozen_stats", Statistics.MOVING),
               _is("frozen_base", FrozenBase(kernels=False, statistics=False)))),
    Claim("Xception 2020", "[paraphrase] recompile the model after changing trainable",
          "A trainable change made after compile is ignored by fit until the model is recompiled, and honoured "
          "after.",
          ("recompile",), _is("recompile", Recompile(without_recompile=True, after_recompile=False))),
    Claim("Keras 3 guide", "[paraphrase] after unfreezing, set the BatchNormalization layers' trainable = False "
          "explicitly",
          "With every BN layer frozen, fine-tuning moves no BN statistics and no gamma/beta, while kernels train "
          "(small model, MobileNetV2 and Xception).",
          ("remedy", "mobilenet_remedy", "xception_remedy"),
          _all(_is("remedy", REMEDY_WORKS), _no_bn_moved("mobilenet_remedy"), _no_bn_moved("xception_remedy"))),
]

@dataclasses.dataclass(frozen=True)
class Verdict:
    claim: Claim
    per_variant: dict[str, bool]

    @property
    def overall(self) -> str:
        held = set(self.per_variant.values())
        return HOLDS if held == {True} else FAILS if held == {False} else DEPENDS


def verdicts(matrix: Matrix) -> list[Verdict]:
    return [
        Verdict(claim, {name: claim.check(column["values"]) for name, column in matrix.columns.items()})
        for claim in CLAIMS
    ]


def verdict_table(results: list[Verdict], matrix: Matrix) -> FactTable:
    """The audit's fact table; in HTML each claim's evidence links to the matrix rows that computed it."""
    names = list(matrix.columns)
    header = ["#", "source", "claim", "reading tested", *map(matrix.label, names), "verdict", "evidence"]
    rows, links = [], {}
    for i, verdict in enumerate(results):
        claim = verdict.claim
        rows.append([i + 1, claim.source, claim.quote, claim.reading,
                     *("holds" if verdict.per_variant[n] else "fails" for n in names),
                     verdict.overall, ", ".join(claim.evidence)])
        links[i, len(header) - 1] = [(row_id, f"#evidence-{row_id}") for row_id in claim.evidence]
    return FactTable(header, rows, links=links)


def tally(results: list[Verdict]) -> dict[str, collections.Counter]:
    """source -> how many of its claims hold, fail, or depend on the version."""
    counts: dict[str, collections.Counter] = {source: collections.Counter() for source in SOURCES}
    for verdict in results:
        counts[verdict.claim.source][verdict.overall] += 1
    return counts
