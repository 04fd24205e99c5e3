"""Figures of the book. Each function takes measured results and returns a matplotlib Figure.

Every figure uses the book's style (``assets/book.mplstyle``): no wider than the text column, text readable at
that width, one legend per figure naming every series, integer epochs, and zero values drawn and labelled. The
style applies inside each function (:func:`styled`) and nowhere else: importing this module changes no setting of
matplotlib's.
"""

from __future__ import annotations

import functools
import io
from collections.abc import Callable

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator

from companion import ASSETS

STYLE = ASSETS / "book.mplstyle"
_STYLE_SETTINGS = matplotlib.rc_params_from_file(STYLE, fail_on_error=True, use_default_template=True)
COLORS = _STYLE_SETTINGS["axes.prop_cycle"].by_key()["color"]
WIDTH = _STYLE_SETTINGS["figure.figsize"][0]
# Keras variants side by side (purple, brown, grey): colours no way of fine-tuning has (companion.checks.ways gives
# each way one of the others), so that a way's colour keeps one meaning across the book.
VARIANT_COLORS = (COLORS[4], COLORS[5], COLORS[7])
# PNG text chunk that records a figure's smallest text, in pixels of the PNG: the browser test scales it by the
# width the page shows the image at, to check that every figure's text stays readable.
SMALLEST_FONT_KEY = "Smallest-font-px"


def styled(draw: Callable[..., Figure]) -> Callable[..., Figure]:
    """``draw`` (a function that returns a Figure) made to draw in the book's style, leaving matplotlib's settings
    as they were.

    The figure is laid out once inside the style, because matplotlib creates tick labels only when a figure is
    first drawn and sizes them from the settings of that moment, which would be the caller's.
    """

    @functools.wraps(draw)
    def in_style(*args, **kwargs) -> Figure:
        with plt.style.context(STYLE):
            fig = draw(*args, **kwargs)
            fig.draw_without_rendering()
        return fig

    return in_style


def smallest_font_px(fig: Figure) -> float:
    """The height of the figure's smallest visible text, in pixels of its PNG."""
    sizes = [t.get_fontsize() for t in fig.findobj(Text) if t.get_visible() and t.get_text().strip()]
    return min(sizes, default=0.0) * fig.dpi / 72


def png(fig: Figure) -> bytes:
    """The figure as the book's pages embed it: a PNG cropped to its content, with :data:`SMALLEST_FONT_KEY`."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=fig.dpi, bbox_inches="tight",
                metadata={SMALLEST_FONT_KEY: f"{smallest_font_px(fig):.2f}"})
    return buffer.getvalue()


def show_as_png(shell) -> None:
    """Make IPython (and so the inline backend and myst-nb's glue) display every figure through :func:`png`."""
    shell.display_formatter.formatters["image/png"].for_type(Figure, png)


def _legend_below(fig, axes) -> None:
    """One legend for the whole figure, below it, naming every labelled series once."""
    seen = {}
    for ax in np.ravel(axes):
        for handle, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, handle)
    if seen:
        fig.legend(seen.values(), seen.keys(), loc="outside lower center", ncols=min(len(seen), 2))


def _label_bars(ax, bars, values, fmt="{:g}") -> None:
    """Write each bar's value on it; a zero bar gets its "0" too, so that it is seen to be zero, not missing."""
    for bar, value in zip(bars, values):
        ax.annotate(fmt.format(value), (bar.get_x() + bar.get_width() / 2, bar.get_height()), xytext=(0, 2),
                    textcoords="offset points", ha="center", va="bottom", fontsize=9)


@styled
def trainable_weights_curve(cut_points: list[int], counts: list[int], marks: dict[str, int], title: str):
    """Trainable variables of the tutorial model as ``layers[:fine_tune_at]`` of the base are refrozen."""
    fig, ax = plt.subplots()
    ax.step(cut_points, counts, where="post", label="trainable variables")
    for label, at in marks.items():
        ax.axvline(at, color="grey", linestyle=":")
        ax.annotate(label, (at, counts[cut_points.index(at)]), textcoords="offset points", xytext=(4, 6))
    ax.set(xlabel="fine_tune_at (layers of the base refrozen)", ylabel="trainable variables", title=title)
    return fig


@styled
def dropout_outputs(observations: dict):
    """What a Dropout layer made of inputs of ones: the fraction of each output value, one panel per setting."""
    fig, axes = plt.subplots(1, len(observations), figsize=(WIDTH, 2.8), sharey=True)
    for ax, (label, obs) in zip(np.atleast_1d(axes), observations.items()):
        survivors = 1.0 - obs.fraction_zeroed
        bars = {"0": obs.fraction_zeroed} if obs.fraction_zeroed else {}
        bars.update({f"{v:g}": survivors / len(obs.survivor_values) for v in obs.survivor_values})
        drawn = ax.bar(list(bars), list(bars.values()), color=COLORS[0])
        _label_bars(ax, drawn, list(bars.values()), "{:.2f}")
        ax.set_title(label.replace(", ", ",\n"), fontsize=9)
        ax.set(xlabel="output value", ylim=(0, 1.15))
    np.atleast_1d(axes)[0].set_ylabel("fraction of outputs")
    return fig


@styled
def batch_norm_outputs(inputs: np.ndarray, outputs: dict[str, np.ndarray]):
    """Distributions of a BatchNormalization layer's inputs and outputs under each setting. Settings whose outputs
    are equal share one curve, labelled with all of them: drawn apart, the later curves would hide the earlier ones
    exactly."""
    fig, ax = plt.subplots(figsize=(WIDTH, 3.8))
    bins = np.linspace(min(inputs.min(), *(o.min() for o in outputs.values())),
                       max(inputs.max(), *(o.max() for o in outputs.values())), 60)
    ax.hist(inputs.ravel(), bins=bins, histtype="stepfilled", alpha=0.3, label="input", color="grey")
    curves: list[tuple[list[str], np.ndarray]] = []
    for label, out in outputs.items():
        same = next((labels for labels, drawn in curves if np.allclose(drawn, out)), None)
        if same is None:
            curves.append(([label], out))
        else:
            same.append(label)
    for labels, out in curves:
        ax.hist(out.ravel(), bins=bins, histtype="step", linewidth=1.5, label="\n".join(labels))
    ax.set(xlabel="value", ylabel="count", title="BatchNormalization output by (trainable, training)")
    _legend_below(fig, ax)
    return fig


@styled
def bn_drift(drifts: dict[str, list[float]], layer_names: list[str], title: str):
    """Per BatchNormalization layer, how far its moving mean moved: one panel per way of fine-tuning.

    A panel whose layers did not move at all says so in words, so that it is not mistaken for a missing plot."""
    fig, axes = plt.subplots(len(drifts), 1, figsize=(WIDTH, 1.2 + 1.3 * len(drifts)), sharex=True, sharey=True,
                             squeeze=False)
    x = np.arange(len(layer_names))
    for i, (ax, (label, values)) in enumerate(zip(axes[:, 0], drifts.items())):
        moved = sum(v > 0 for v in values)
        ax.bar(x[:len(values)], values, color=series_color(label, i))
        ax.set_title(f"{label}: {moved} of {len(values)} layers moved", fontsize=9, loc="left")
        if not moved:
            ax.text(0.5, 0.5, "0: no layer's statistics moved", transform=ax.transAxes, ha="center", va="center")
        ax.set_ylabel("max |change|", fontsize=9)
    axes[-1, 0].set_xlabel("BatchNormalization layer of the base (input to output)")
    fig.suptitle(title)
    return fig


def series_color(key, index: int) -> str:
    """A series' colour: a way of fine-tuning keeps its own on every figure (its ``color``, see
    :class:`companion.checks.ways.Way`); any other series takes the style's cycle in order."""
    return getattr(key, "color", None) or COLORS[index % len(COLORS)]


def series_line(key, index: int) -> dict:
    """A curve's colour and line (keyword arguments of ``plot``): a way of fine-tuning keeps its ``color`` and
    ``linestyle`` on every figure; a dashed or dotted curve is drawn above the solid ones, so that two ways that gave
    the same values both show. Any other series: the style's cycle in order, solid."""
    linestyle = getattr(key, "linestyle", "-")
    return {"color": series_color(key, index), "linestyle": linestyle, "zorder": 2 if linestyle == "-" else 3}


@styled
def matrix_counts(counts: dict[str, dict[str, int]], title: str, ylabel: str):
    """Grouped bars: for each check, a count per Keras variant, each bar labelled with its value (zeros too)."""
    checks = list(next(iter(counts.values())))
    fig, ax = plt.subplots(figsize=(WIDTH, 3.8))
    width = 0.8 / len(counts)
    top = max((v for values in counts.values() for v in values.values()), default=0)
    for i, (variant, values) in enumerate(counts.items()):
        heights = [values[c] for c in checks]
        bars = ax.bar(np.arange(len(checks)) + i * width, heights, width, label=variant,
                      color=VARIANT_COLORS[i % len(VARIANT_COLORS)])
        _label_bars(ax, bars, heights)
    ax.set_xticks(np.arange(len(checks)) + 0.4 - width / 2, checks)
    ax.set(ylabel=ylabel, title=title, ylim=(0, max(top, 1) * 1.2))
    _legend_below(fig, ax)
    return fig


@styled
def verdict_tally(counts: dict, order: tuple[str, ...], title: str):
    """Stacked horizontal bars: per source, how many claims hold, fail, or depend on the version."""
    sources = [s for s in counts if sum(counts[s].values())]
    fig, ax = plt.subplots(figsize=(WIDTH, 0.45 * len(sources) + 1.6))
    left = np.zeros(len(sources))
    for verdict, color in zip(order, ("tab:green", "tab:red", "tab:orange")):
        values = np.array([counts[s][verdict] for s in sources])
        ax.barh(sources, values, left=left, color=color, label=verdict)
        left += values
    ax.invert_yaxis()
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="claims", title=title)
    _legend_below(fig, ax)
    return fig


@styled
def accuracy_bars(accuracies: dict[str, float], title: str, chance: float = 0.5):
    """Horizontal bars of validation accuracies, with the chance level marked."""
    fig, ax = plt.subplots(figsize=(WIDTH, 0.5 * len(accuracies) + 1.6))
    labels = list(accuracies)
    ax.barh(labels, [accuracies[k] for k in labels], color=COLORS[0])
    ax.axvline(chance, color="grey", linestyle=":", label="chance")
    for i, label in enumerate(labels):
        ax.annotate(f"{accuracies[label]:.3f}", (accuracies[label], i), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=9)
    ax.invert_yaxis()
    ax.set(xlim=(0, 1.1), xlabel="validation accuracy (inference mode)", title=title)
    _legend_below(fig, ax)
    return fig


@styled
def training_curves(results: dict, title: str, metric: str = "accuracy"):
    """Training and validation ``metric`` per epoch of :class:`companion.tutorials.results.RunResult` values, one panel each:
    phase 1 once, then one line per way of fine-tuning, with the start of fine-tuning marked."""
    panels = len(results)
    fig, axes = plt.subplots(1, panels, figsize=(WIDTH, 3.6 if panels == 1 else 3.2), squeeze=False, sharey=True)
    for ax, (name, result) in zip(axes[0], results.items()):
        phase1 = result.phase1.history
        # Training hollow, validation filled: a marker on every point, so that a series of one epoch shows too.
        ax.plot(phase1.epochs, phase1.metrics[metric], color="black", marker="o", fillstyle="none",
                label="phase 1, training")
        ax.plot(phase1.epochs, phase1.metrics[f"val_{metric}"], color="black", marker="o", label="phase 1, validation")
        for i, (variant, tuned) in enumerate(result.fine_tuning.items()):
            line = series_line(variant, i)
            epochs = tuned.history.epochs
            ax.plot(epochs, tuned.history.metrics[metric], marker="o", fillstyle="none", **line,
                    label=f"fine-tuning {variant}, training")
            ax.plot(epochs, tuned.history.metrics[f"val_{metric}"], marker="o", **line,
                    label=f"fine-tuning {variant}, validation")
        ax.axvline(phase1.epochs[-1] + 0.5, color="grey", linestyle=":")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(title=name if panels > 1 else title, xlabel="epoch")
    axes[0, 0].set_ylabel(metric)
    if panels > 1:
        fig.suptitle(title)
    _legend_below(fig, axes)
    return fig


def _batches_axis(ax, steps_per_epoch: int, batches: list[float]) -> str:
    """The x axis in batches of fine-tuning, on a log scale ticked at the measured points: a batch count inside the
    first epoch, "epoch N" at the end of each epoch. Returns the axis' label, for the caller to set once per figure."""
    ax.set_xscale("log")
    ticks = sorted(set(batches))
    labels = [f"epoch {round(b / steps_per_epoch)}" if b >= steps_per_epoch and b % steps_per_epoch == 0 else f"{b:g}"
              for b in ticks]
    ax.set_xticks(ticks, labels)
    ax.minorticks_off()
    return f"batches of fine-tuning ({steps_per_epoch} per epoch; log scale)"


@styled
def fine_tuning_progress(results: dict, title: str):
    """Validation accuracy during fine-tuning, after the first few batches and after each epoch, per way of
    fine-tuning (``results``: way -> FineTuneResult)."""
    fig, ax = plt.subplots()
    batches = []
    for i, (variant, tuned) in enumerate(results.items()):
        x, y = zip(*tuned.validation_curve)
        x = [e * tuned.steps_per_epoch for e in x]
        batches += x
        ax.plot(x, y, marker="o", **series_line(variant, i), label=variant)
    xlabel = _batches_axis(ax, next(iter(results.values())).steps_per_epoch, batches)
    ax.set(xlabel=xlabel, ylabel="validation accuracy", title=title)
    _legend_below(fig, ax)
    return fig


@styled
def experiment(exp, title: str):
    """The Keras-variant experiment: one panel per variant, validation accuracy during fine-tuning as written and
    with the remedy, a thin line per seed and a thick line for their mean."""
    names = list(exp.columns)
    fig, axes = plt.subplots(1, len(names), figsize=(WIDTH, 3.6), sharey=True, squeeze=False)
    for ax, name in zip(axes[0], names):
        column = exp.columns[name]
        for i, (way, results) in enumerate(column.runs.items()):
            line = series_line(way, i)
            steps = results[0].steps_per_epoch
            curves = [[(e * steps, a) for e, a in r.validation_curve] for r in results]
            for curve in curves:
                ax.plot(*zip(*curve), **line, alpha=0.35, linewidth=1)
            x = [p[0] for p in curves[0]]
            seeds = "1 seed" if len(curves) == 1 else f"mean of {len(curves)} seeds"
            ax.plot(x, np.mean([[p[1] for p in c] for c in curves], axis=0), **line, marker="o",
                    label=f"{way} ({seeds})")
        xlabel = _batches_axis(ax, steps, x)
        ax.set(title=column.label.replace(" ", "\n", 1))  # the variant over its version: a nightly's is long
    axes[0, 0].set_ylabel("validation accuracy")
    # Once, under the middle panel: the panels share their batches (a figure-wide label would sit on the legend).
    axes[0, len(names) // 2].set_xlabel(xlabel)
    fig.suptitle(title)
    _legend_below(fig, axes)
    return fig
