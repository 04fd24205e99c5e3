"""The architecture checks under the pinned Keras (3.15.1, TensorFlow), read from the release matrix's column for it
(computed in its child process and kept in the cache, so that the book's pages and these tests compute it once),
against counts derived by hand from how each base is built and from how Keras 3.15.1 resolves ``training``
(``keras/src/layers/layer.py``, ``Layer._resolve_and_populate_arg``: an explicit ``training`` argument wins, else
the value an outer call left in the shared call context, else the call signature's default; and the value a layer
resolved is stashed in that context "for downstream layers")."""

import pytest

from companion.checks import decisive
from companion.checks.evidence import BaseOutcome, Failed, NotApplicable, Updates
from companion.core.variants import load_keras
from companion.suite import architectures, architectures_models
from companion.versions import architectures_grid, releases

NO_DROPOUT_INSIDE = NotApplicable("no Dropout or stochastic depth among the base's layers")


@pytest.fixture(scope="module")
def keras():
    keras = load_keras()
    assert keras.__version__ == releases.PINNED == "3.15.1" and keras.backend.backend() == "tensorflow"
    return keras


@pytest.fixture(scope="module")
def pinned(keras):
    """The pinned release's column of the release matrix: check id -> typed value."""
    column = releases.column(releases.Release("keras", releases.PINNED))
    assert column.ran, column.error
    return column.values


def test_a_base_with_bn_inside_custom_blocks_is_overridden_and_the_remedy_reaches_both(keras, pinned):
    # Two ConvBlock layers, one BatchNormalization each, held as attributes: 2 BN, none in base.layers.
    assert [type(layer).__name__ for layer in architectures_models.custom_block_base(keras).layers] == [
        "InputLayer", "ConvBlock", "ConvBlock", "GlobalAveragePooling2D"]
    # As written: on 3.15.1 the functional model's fit overrides training=False (decisive.as_written measures the
    # same on the flat base), so both layers' statistics move and their gamma/beta train; the head Dropout follows fit.
    assert pinned["custom_blocks_as_written"] == BaseOutcome(2, 0, 2, True, True, NO_DROPOUT_INSIDE, True)
    # The remedy reaches both layers through the blocks: 2 frozen, 0 moved, gamma/beta kept, kernels trained.
    for regime in ("remedy", "remedy_alone"):
        assert pinned[f"custom_blocks_{regime}"] == BaseOutcome(2, 2, 0, False, True, NO_DROPOUT_INSIDE,
                                                                             True)


def test_a_keras_hub_backbone_has_seven_bn_and_the_remedy_freezes_all_seven(keras, pinned):
    # stem_bn, the fused block's bn1 and bn2, the unfused block's bn1, bn2 and bn3, top_bn: 7 BN, 5 of them inside
    # block layers (KerasHub's FusedMBConvBlock and MBConvBlock). The backbone is one layer of the base.
    assert architectures_models.keras_hub_unsupported(keras) is None
    assert pinned["keras_hub_as_written"] == BaseOutcome(7, 0, 7, True, True, NO_DROPOUT_INSIDE, True)
    assert pinned["keras_hub_remedy"] == BaseOutcome(7, 7, 0, False, True, NO_DROPOUT_INSIDE, True)
    assert pinned["keras_hub_remedy_alone"] == BaseOutcome(7, 7, 0, False, True, NO_DROPOUT_INSIDE,
                                                                        True)


def test_keras_hub_does_not_apply_to_a_keras_older_than_its_minimum():
    # keras-hub 0.32.0's metadata requires keras>=3.15; tf-keras has no keras.ops at all.
    assert architectures_models.keras_hub_minimum() == "3.15"

    class OldKeras:
        __version__, ops = "3.0.5", object()

    class TfKeras:
        __version__ = "2.21.0"

    for old in (OldKeras, TfKeras):
        found = architectures_models.keras_hub_unsupported(old)
        assert isinstance(found, NotApplicable) and "needs keras>=3.15" in found.reason
    assert isinstance(architectures.keras_hub_backbone(OldKeras, "as_written"), NotApplicable)


def test_a_layer_norm_only_base_has_nothing_to_freeze(keras, pinned):
    # Conv2D -> LayerNormalization: no moving_mean anywhere, the remedy returns [], the kernels train.
    for regime in ("as_written", "remedy", "remedy_alone"):
        assert pinned[f"layer_norm_{regime}"] == BaseOutcome(0, 0, 0, False, True, NO_DROPOUT_INSIDE,
                                                                          True)


def test_efficientnet_b0_frozen_passes_training_true_to_its_dropout_even_under_training_false(keras, pinned):
    # EfficientNetB0: block1a has no expansion (bn, project_bn), the other 15 blocks expand (expand_bn, bn,
    # project_bn), plus stem_bn and top_bn: 2 + 45 + 2 = 49 BN. A Dropout follows each block with a residual (stride 1,
    # filters in = out): 16 blocks minus the first of each of the 7 stages = 9.
    base = architectures_models.efficientnet_b0(keras)
    assert len(architectures.training_dependent_layers(keras, base)) == 9
    # Frozen (phase 1): trainable=False keeps BN statistics and kernels; on 3.15.1 fit's training=True reaches the
    # base's Dropout layers under base(x, training=False) as under base(x) (the measurement).
    for regime in ("frozen_inference", "frozen_plain"):
        assert pinned[f"efficientnet_{regime}"] == BaseOutcome(49, 0, 0, False, False, True, True)
    assert not architectures.BY_ID["efficientnet_frozen_inference"].documented(
        pinned["efficientnet_frozen_inference"])


def test_convnext_tiny_has_no_bn_and_no_stochastic_depth(keras, pinned):
    # ConvNeXtTiny passes drop_path_rate=0.0, so its blocks get Activation("linear") instead of StochasticDepth;
    # LayerNormalization only: 0 BN.
    for regime in ("frozen_inference", "frozen_plain"):
        assert pinned[f"convnext_{regime}"] == BaseOutcome(0, 0, 0, False, False, NO_DROPOUT_INSIDE,
                                                                        True)


def test_a_subclassed_model_leaks_training_false_to_the_dropout_after_the_base(keras, pinned):
    # call: head(dropout(base(x, training=False))). The explicit training=False wins for the base (its 1 BN keeps its
    # statistics, its gamma/beta still train: trainable) and is stashed in the call context, where the Dropout,
    # called without training, finds it: the Dropout after the base runs in inference mode during fit.
    assert pinned["subclassed_as_written"] == BaseOutcome(1, 0, 0, True, True, NO_DROPOUT_INSIDE, False)
    assert pinned["subclassed_remedy"] == BaseOutcome(1, 1, 0, False, True, NO_DROPOUT_INSIDE, False)


def test_a_custom_loop_moves_the_statistics_as_fit_does(keras, pinned):
    # model(x, training=True) on the functional tutorial model: the same override as fit's (1 BN moves); the remedy
    # keeps it. The head Dropout receives training=True.
    assert pinned["custom_loop_as_written"] == BaseOutcome(1, 0, 1, True, True, NO_DROPOUT_INSIDE, True)
    assert pinned["custom_loop_remedy"] == BaseOutcome(1, 1, 0, False, True, NO_DROPOUT_INSIDE, True)


def test_a_custom_loop_written_for_pytorch_moves_the_statistics_as_on_tensorflow():
    """The same hand-derived outcomes as above, from the loop that calls loss.backward() under the PyTorch backend
    (the release matrix's column for the pinned release on PyTorch)."""
    release = releases.Release("keras", releases.PINNED, "torch")
    if not releases.is_installed(release):
        pytest.skip("PyTorch is not installed (companion variants install --releases)")
    column = releases.column(release)
    assert column.ran and column.versions["backend"] == "torch", column.error
    assert column.values["custom_loop_as_written"] == BaseOutcome(1, 0, 1, True, True, NO_DROPOUT_INSIDE, True)
    assert column.values["custom_loop_remedy"] == BaseOutcome(1, 1, 0, False, True, NO_DROPOUT_INSIDE, True)


def test_the_ground_truth_finds_bn_through_weights_at_any_depth(keras):
    """The count by weights and A1's remedy agree, and neither is base.layers (which sees none of the 2)."""
    base = architectures_models.custom_block_base(keras)
    groups = architectures.batch_norm_groups(base)
    assert len(groups) == 2 and all(len(g["statistics"]) == 2 and len(g["affine"]) == 2 for g in groups)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in base.layers)
    assert len(decisive.freeze_batch_norm(keras, base)) == 2
    # One block layer (the second: 4 channels in and out) called twice, shared: its variables count once.
    inputs = keras.Input((8, 8, 4))
    block = base.layers[2]
    shared = keras.Model(inputs, block(block(inputs)))
    assert len(architectures.batch_norm_groups(shared)) == 1


def test_documented_reads_the_expectation_of_the_regime():
    remedy = architectures.BY_ID["custom_blocks_remedy"]
    assert remedy.documented(BaseOutcome(2, 2, 0, False, True, NO_DROPOUT_INSIDE, True))
    assert not remedy.documented(BaseOutcome(2, 1, 0, False, True, NO_DROPOUT_INSIDE, True))  # froze 1 of 2
    assert remedy.documented(NotApplicable("x")) is None and remedy.documented(Failed("ValueError: x")) is None


def _column(label_release, values):
    return releases.Column(label_release, {}, values)


def test_the_grid_judges_every_row_and_shows_not_applicable_cells():
    pinned = releases.Release("keras", releases.PINNED)
    flat = {"nested_override": True, "dropout_leak_fit": True, "remedy": Updates(False, False, True),
            "remedy_dropout": False, "remedy_alone": Updates(False, False, True), "remedy_alone_dropout": True,
            "augmented_call": True}
    outcome = BaseOutcome(2, 2, 0, False, True, NO_DROPOUT_INSIDE, True)
    values = {**flat, **{c.id: outcome for c in architectures.CHECKS}, "keras_hub_as_written": NotApplicable("old")}
    matrix = releases.ReleaseMatrix([_column(pinned, values),
                                     _column(releases.Release("keras", "3.0.5"), {**values, **architectures.not_run("x")})])
    assert architectures_grid.columns(matrix) == matrix.columns[:1]
    judged = {key: found[0] for key, found in architectures_grid.documented(matrix).items()}
    # Flat base: overridden (not documented); remedy + training=False: Dropout stopped (not documented); remedy +
    # base(x): as documented. Augmentation inside moved BN under model(x): not documented.
    assert [judged[("flat functional base", architectures.CALLS[c])] for c in ("as_written", "remedy", "remedy_alone")
            ] == [False, False, True]
    assert judged[("augmentation inside", "model(x), no training argument")] is False
    assert judged[("KerasHub EfficientNetBackbone", architectures.CALLS["as_written"])] is None
    table = architectures_grid.table(matrix)
    assert len(table.rows) == len(architectures_grid.ROWS) == 3 + len(architectures.CHECKS) + 1
    assert architectures_grid.not_applicable(matrix) == [("keras 3.15.1", "keras_hub_as_written", "old")]
    figure = architectures_grid.figure(matrix)
    texts = [t.get_text() for t in figure.axes[0].texts]
    # Two lines per cell: the BN layers that moved (and froze), then the Dropouts (this one only after the base).
    assert texts.count("n/a") == 1 and "BN 0/2, froze 2\nafter on" in texts
