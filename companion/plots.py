"""Figures of the book. Each function takes measured results and returns a matplotlib Figure."""

from __future__ import annotations


import matplotlib.pyplot as plt
import numpy as np


def trainable_weights_curve(cut_points: list[int], counts: list[int], marks: dict[str, int], title: str):
    """Trainable variables of the tutorial model as ``layers[:fine_tune_at]`` of the base are refrozen."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.step(cut_points, counts, where="post")
    for label, at in marks.items():
        ax.axvline(at, color="grey", linestyle=":")
        ax.annotate(label, (at, counts[cut_points.index(at)]), textcoords="offset points", xytext=(4, 6))
    ax.set(xlabel="fine_tune_at (layers of the base refrozen)", ylabel="trainable variables", title=title)
    fig.tight_layout()
    return fig


def dropout_outputs(observations: dict):
    """What a Dropout layer made of inputs of ones: the fraction of each output value, one panel per setting."""
    fig, axes = plt.subplots(1, len(observations), figsize=(2.6 * len(observations), 2.6), sharey=True)
    for ax, (label, obs) in zip(np.atleast_1d(axes), observations.items()):
        survivors = 1.0 - obs.fraction_zeroed
        bars = {"0": obs.fraction_zeroed} if obs.fraction_zeroed else {}
        bars.update({f"{v:g}": survivors / len(obs.survivor_values) for v in obs.survivor_values})
        ax.bar(list(bars), list(bars.values()))
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("output value")
    np.atleast_1d(axes)[0].set_ylabel("fraction of outputs")
    fig.tight_layout()
    return fig


def batch_norm_outputs(inputs: np.ndarray, outputs: dict[str, np.ndarray]):
    """Distributions of a BatchNormalization layer's inputs and outputs under each setting."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bins = np.linspace(min(inputs.min(), *(o.min() for o in outputs.values())),
                       max(inputs.max(), *(o.max() for o in outputs.values())), 60)
    ax.hist(inputs.ravel(), bins=bins, histtype="stepfilled", alpha=0.3, label="input", color="grey")
    for label, out in outputs.items():
        ax.hist(out.ravel(), bins=bins, histtype="step", linewidth=1.5, label=label)
    ax.set(xlabel="value", ylabel="count", title="BatchNormalization output by (trainable, training)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def bn_drift(drifts: dict[str, list[float]], layer_names: list[str], title: str):
    """Per BatchNormalization layer, how far its moving mean moved, one row of bars per recipe variant."""
    fig, axes = plt.subplots(len(drifts), 1, figsize=(9, 1.8 * len(drifts)), sharex=True, squeeze=False)
    x = np.arange(len(layer_names))
    for ax, (label, values) in zip(axes[:, 0], drifts.items()):
        ax.bar(x, values)
        ax.set_ylabel("max |change|", fontsize=8)
        ax.set_title(label, fontsize=9, loc="left")
    axes[-1, 0].set_xlabel("BatchNormalization layer (input to output)")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def matrix_counts(counts: dict[str, dict[str, int]], title: str):
    """Grouped bars: for each check (e.g. architecture and recipe), a count per Keras variant."""
    checks = list(next(iter(counts.values())))
    fig, ax = plt.subplots(figsize=(8, 3.2))
    width = 0.8 / len(counts)
    for i, (variant, values) in enumerate(counts.items()):
        ax.bar(np.arange(len(checks)) + i * width, [values[c] for c in checks], width, label=variant)
    ax.set_xticks(np.arange(len(checks)) + 0.4 - width / 2, checks, fontsize=8)
    ax.set(ylabel="BN layers whose statistics moved", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def verdict_tally(counts: dict, order: tuple[str, ...], title: str):
    """Stacked horizontal bars: per source, how many claims hold, fail, or depend on the version."""
    sources = [s for s in counts if sum(counts[s].values())]
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(sources) + 1.2))
    left = np.zeros(len(sources))
    for verdict, color in zip(order, ("tab:green", "tab:red", "tab:orange")):
        values = np.array([counts[s][verdict] for s in sources])
        ax.barh(sources, values, left=left, color=color, label=verdict)
        left += values
    ax.invert_yaxis()
    ax.set(xlabel="claims", title=title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def accuracy_bars(accuracies: dict[str, float], title: str, chance: float = 0.5):
    """Horizontal bars of validation accuracies, with the chance level marked."""
    fig, ax = plt.subplots(figsize=(7, 0.55 * len(accuracies) + 1.2))
    labels = list(accuracies)
    ax.barh(labels, [accuracies[k] for k in labels], color="tab:blue")
    ax.axvline(chance, color="grey", linestyle=":", label="chance")
    for i, label in enumerate(labels):
        ax.annotate(f"{accuracies[label]:.3f}", (accuracies[label], i), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=8)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1), xlabel="validation accuracy (inference mode)", title=title)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def training_curves(results: dict, title: str, metric: str = "accuracy"):
    """Training and validation ``metric`` per epoch of :class:`companion.runs.RunResult` values, one panel each:
    phase 1 once, then one line per fine-tuning variant, with the start of fine-tuning marked."""
    fig, axes = plt.subplots(1, len(results), figsize=(4.6 * len(results), 3.4), squeeze=False, sharey=True)
    for ax, (name, result) in zip(axes[0], results.items()):
        phase1 = result.phase1
        ax.plot(phase1.epochs, phase1.metrics[metric], color="black", linestyle="--", label="phase 1, training")
        ax.plot(phase1.epochs, phase1.metrics[f"val_{metric}"], color="black", label="phase 1, validation")
        for color, (variant, tuned) in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"],
                                           result.fine_tuning.items()):
            epochs = tuned.history.epochs
            ax.plot(epochs, tuned.history.metrics[metric], color=color, linestyle="--")
            ax.plot(epochs, tuned.history.metrics[f"val_{metric}"], color=color, label=f"fine-tuning: {variant}")
        ax.axvline(phase1.epochs[-1] + 0.5, color="grey", linestyle=":")
        ax.set(title=name if len(results) > 1 else title, xlabel="epoch")
    axes[0, 0].set_ylabel(f"{metric} (dashed: training, solid: validation)")
    axes[0, -1].legend(fontsize=7, loc="best")
    if len(results) > 1:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def drift_by_epoch(result, title: str):
    """For each fine-tuning variant, the largest moving-mean change of any BN layer after each epoch."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for variant, tuned in result.fine_tuning.items():
        ax.plot(tuned.history.epochs, [max(epoch, default=0.0) for epoch in tuned.bn_mean_drift], marker="o",
                label=variant)
    ax.set(xlabel="epoch", ylabel="largest |change| of a moving mean", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
