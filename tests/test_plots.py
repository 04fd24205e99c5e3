"""The figures' own logic, on small arrays whose expected drawing is derived by hand."""

import matplotlib.pyplot as plt
import numpy as np

from companion.checks import ways
from companion.core import plots


def test_settings_with_equal_batch_norm_outputs_share_one_curve_named_by_all_of_them():
    # Three of the four settings give the same output, as a BN layer in inference mode does under three of the four
    # (trainable, training) pairs: drawn one by one, the last of the three would hide the other two.
    inputs = np.linspace(-1.0, 3.0, 50)
    moving = (inputs - 1.0) / 2.0
    outputs = {"batch": (inputs - inputs.mean()) / inputs.std(), "frozen": moving, "inference": moving.copy(),
               "both": moving.copy()}
    fig = plots.batch_norm_outputs(inputs, outputs)
    labels = [text.get_text() for text in fig.legends[0].get_texts()]
    assert labels == ["input", "batch", "frozen\ninference\nboth"]
    assert len(fig.axes[0].patches) == 3  # the input's filled histogram and two outlines
    plt.close(fig)


class _Tuned:
    """What fine_tuning_progress reads of a FineTuneResult: its validation curve in epochs, and steps per epoch."""

    def __init__(self, curve, steps_per_epoch):
        self.validation_curve, self.steps_per_epoch = curve, steps_per_epoch


def test_two_ways_that_gave_equal_accuracies_both_show_the_remedy_solid_beneath_the_dashed_one():
    # The same three points for both ways (as under a Keras that keeps training=False): the plain call's curve is
    # dashed and drawn above the remedy's solid one, so that its colour shows through the dashes.
    curve = [(2 / 10, 0.8), (5 / 10, 0.85), (1.0, 0.9)]
    fig = plots.fine_tuning_progress({ways.PLAIN: _Tuned(curve, 10), ways.REMEDY: _Tuned(curve, 10)}, "t")
    written, remedy = fig.axes[0].get_lines()
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["base(x)", "remedy + base(x)"]
    assert (written.get_linestyle(), written.get_color(), remedy.get_linestyle(), remedy.get_color()) == (
        "--", "C0", "-", "C2")
    assert written.get_zorder() > remedy.get_zorder()
    assert list(written.get_xdata()) == [2.0, 5.0, 10.0]  # batches: epochs x 10 steps
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["2", "5", "epoch 1"]
    plt.close(fig)


def test_the_keras_variants_take_colours_that_no_way_of_fine_tuning_has():
    counts = {"keras": {"a": 3, "b": 0}, "keras-nightly": {"a": 0, "b": 0}, "tf-keras": {"a": 1, "b": 2}}
    fig = plots.matrix_counts(counts, "t", "layers")
    colours = {tuple(bar.get_facecolor()) for bar in fig.axes[0].patches}
    way_colours = {tuple(plt.matplotlib.colors.to_rgba(plots.series_color(way, 0))) for way in ways.WAYS}
    assert len(colours) == 3 and not colours & way_colours
    plt.close(fig)


def test_every_way_keeps_a_colour_and_a_line_of_its_own_and_only_the_remedy_is_solid():
    assert len({way.color for way in ways.WAYS}) == len({str(way.linestyle) for way in ways.WAYS}) == len(ways.WAYS)
    assert [way for way in ways.WAYS if way.linestyle == "-"] == [ways.REMEDY]
    assert plots.series_line(ways.REMEDY, 0)["zorder"] < plots.series_line(ways.PLAIN, 0)["zorder"]
