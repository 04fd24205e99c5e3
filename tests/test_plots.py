"""The figures' own logic, on small arrays whose expected drawing is derived by hand."""

import matplotlib.pyplot as plt
import numpy as np

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
