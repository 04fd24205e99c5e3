"""The claims audit: statements about ``training``, ``trainable``, BatchNormalization and Dropout from the
texts the book answers, each with the reading tested and a verdict computed per Keras variant.

A claim's ``check`` reads one column of the version matrix (:mod:`companion.matrix`: the values measured under
one Keras variant) and says whether the claim held there. Across the variants the verdict is "holds",
"fails" or "depends on the version". Quotes are brief and attributed; where the source is a tutorial whose
text is not reproduced here, the advice is paraphrased and marked as such.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Callable

from companion.matrix import Matrix
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
    check: Callable[[dict], bool]  # one variant's values -> did the claim hold there?


def _is(row: str, expected: str) -> Callable[[dict], bool]:
    return lambda v: v[row] == expected


def _all(*checks: Callable[[dict], bool]) -> Callable[[dict], bool]:
    return lambda v: all(check(v) for check in checks)


def _no_bn_moved(row: str) -> Callable[[dict], bool]:
    return lambda v: v[row].startswith("0 of")


CLAIMS = [
    Claim("SE question", "we set the training argument to False to maintain the pre-trained values of Batch "
          "Normalization",
          "Calling an unfrozen base with training=False keeps its BN moving statistics fixed during fit.",
          ("nested_override",), _is("nested_override", "no")),
    Claim("SE question", "the trainable attribute to False to freeze the weights",
          "With base.trainable=False, fit changes neither the base's kernels nor its BN statistics.",
          ("frozen_base",), _is("frozen_base", "no / no")),
    Claim("SE question", "When the argument training is True ... the BN mean and variance are being updated",
          "A BN layer called with training=True updates its moving statistics, frozen or not.",
          ("bn_frozen_updates",), _is("bn_frozen_updates", "yes")),
    Claim("SE answer", "training=True: The layer will normalize its inputs using the mean and variance of the "
          "current batch",
          "Any BN layer, trainable or frozen, called with training=True normalises with the batch statistics.",
          ("bn_trainable_stats", "bn_frozen_stats"),
          _all(_is("bn_trainable_stats", "batch statistics"), _is("bn_frozen_stats", "batch statistics"))),
    Claim("SE answer", "training=False: The layer will normalize its inputs using the mean and variance of its "
          "moving statistics",
          "A BN layer called with training=False normalises with its moving statistics.",
          ("bn_inference_stats",), _is("bn_inference_stats", "moving statistics")),
    Claim("SE answer", "if you will not set it False it will continue updating μ and σ with every batch of test data",
          "predict or evaluate, without training=False, update the BN moving statistics.",
          ("inference_updates_bn",), lambda v: v["inference_updates_bn"] != "no / no"),
    Claim("SE answer", "By default, it is False and fit method set it to True.",
          "A BN layer called without training runs in inference mode; fit passes training=True to it.",
          ("bn_default_stats", "fit_passes_true"),
          _all(_is("bn_default_stats", "moving statistics"), _is("fit_passes_true", "True"))),
    Claim("SE answer", "Alternatively, we can divide each neuron's output by the keep probability during training",
          "Keras' Dropout does this alternative: survivors are scaled by 1/(1-rate) in training, and inference "
          "is the identity, so nothing is rescaled after training.",
          ("dropout_inverted", "dropout_inference"),
          _all(_is("dropout_inverted", "yes"), _is("dropout_inference", "yes"))),
    Claim("blog", "it disables the application of dropout layers",
          "Dropout layers inside a base called with training=False do not drop during fit.",
          ("dropout_inside_base",), _is("dropout_inside_base", "no")),
    Claim("blog", "and batch normalization's training-time statistics updates",
          "fit does not update the BN statistics of an unfrozen base called with training=False.",
          ("nested_override",), _is("nested_override", "no")),
    Claim("blog", "When training=False is set for a pre-trained model, the weights of all layers are frozen",
          "fit leaves the kernels of an unfrozen base called with training=False unchanged.",
          ("nested_kernels",), _is("nested_kernels", "no")),
    Claim("blog", "Failing to do so can lead to unexpected behavior",
          "A frozen base called without training=False has its BN statistics updated by fit.",
          ("frozen_base",), lambda v: v["frozen_base"].endswith("/ yes")),
    Claim("blog", "base_model.trainable = False effectively sets training=False for all layers within base_model",
          "Every layer with trainable=False runs in inference mode even when called with training=True.",
          ("dropout_frozen_drops", "bn_frozen_stats"),
          _all(_is("dropout_frozen_drops", "no"), _is("bn_frozen_stats", "moving statistics"))),
    Claim("blog", "Layers up to a certain point are frozen, implicitly utilizing training=False during both "
          "training and inference",
          "Frozen layers (Dropout and BN alike) behave as in inference mode during fit.",
          ("dropout_frozen_drops", "bn_frozen_updates"),
          _all(_is("dropout_frozen_drops", "no"), _is("bn_frozen_updates", "no"))),
    Claim("blog", "During inference, training=None (or False if explicitly passed) will be used, influencing "
          "dropout and batch normalization accordingly",
          "In inference Dropout is the identity and predict/evaluate leave the BN statistics alone.",
          ("dropout_inference", "inference_updates_bn"),
          _all(_is("dropout_inference", "yes"), _is("inference_updates_bn", "no / no"))),
    Claim("Keras FAQ", "in training mode, a Dropout layer applies random dropout and rescales the output. In "
          "inference mode, the same layer does nothing",
          "Dropout drops and rescales under training=True and is the identity under training=False.",
          ("dropout_inverted", "dropout_inference"),
          _all(_is("dropout_inverted", "yes"), _is("dropout_inference", "yes"))),
    Claim("Keras FAQ", "Dropout(0.5)(x, training=True) # Applies dropout at training time *and* inference time",
          "A Dropout called with training=True inside a functional model also drops during predict.",
          ("forced_dropout_predict",), _is("forced_dropout_predict", "yes")),
    Claim("Keras FAQ", "If layer.trainable is set to False, then layer.trainable_weights will always be an empty "
          "list ... len(model.trainable_weights) == 2",
          "A frozen MobileNetV2 base has no trainable weights; the tutorial model then has 2 (the Dense layer's).",
          ("frozen_weights",), _is("frozen_weights", "0 / 2")),
    Claim("Keras FAQ", "the trainable attribute and the training call argument are independent",
          "A Dropout layer with trainable=False still drops under training=True.",
          ("dropout_frozen_drops",), _is("dropout_frozen_drops", "yes")),
    Claim("Keras FAQ", "setting bn.trainable = False will also make its training call argument default to False",
          "A frozen BN layer called with training=True normalises with its moving statistics and does not "
          "update them.",
          ("bn_frozen_stats", "bn_frozen_updates"),
          _all(_is("bn_frozen_stats", "moving statistics"), _is("bn_frozen_updates", "no"))),
    Claim("Keras FAQ", "This behavior only applies for BatchNormalization",
          "For Dropout, trainable=False does not change the training/inference behaviour.",
          ("dropout_frozen_drops",), _is("dropout_frozen_drops", "yes")),
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
          "fit with a frozen base changes neither its kernels nor its BN statistics.",
          ("frozen_base",), _is("frozen_base", "no / no")),
    Claim("Xception 2020", "[paraphrase] recompile the model after changing trainable",
          "A trainable change made after compile is ignored by fit until the model is recompiled.",
          ("recompile",), _is("recompile", "yes")),
    Claim("Keras 3 guide", "[paraphrase] after unfreezing, set the BatchNormalization layers' trainable = False "
          "explicitly",
          "With every BN layer frozen, fine-tuning moves no BN statistics and no gamma/beta, while kernels train "
          "(small model, MobileNetV2 and Xception).",
          ("remedy", "mobilenet_remedy", "xception_remedy"),
          _all(_is("remedy", "no / no / yes"), _no_bn_moved("mobilenet_remedy"), _no_bn_moved("xception_remedy"))),
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
