"""The stand-in backbone's pretraining on a few real images: record, BN treatment, hash-checked safe loading."""

import json
import os

import numpy as np
import pytest

from companion import data, standin

pytestmark = pytest.mark.skipif(not os.environ.get("COMPANION_DATA_DIR"),
                                reason="needs the real images: set COMPANION_DATA_DIR")

TINY = standin.PretrainConfig(image_size=32, epochs=1, batch_size=8, images_per_class=8)


@pytest.fixture(scope="module")
def pretrained():
    images, labels = data.load_arrays("train", TINY.image_size, TINY.images_per_class)
    assert images.shape == (16, 32, 32, 3) and images.dtype == np.uint8 and sorted(set(labels)) == [0, 1]
    return standin.pretrain(TINY, images)


def test_record_says_how_it_was_made(pretrained):
    _, record = pretrained
    assert record["config"]["epochs"] == 1 and record["config"]["seed"] == 0
    assert "labels not read" in record["data"]
    accuracy = record["pretext_accuracy_inference_mode"]
    assert set(accuracy) == {"train_before_bn_reestimation", "train"}


def test_batch_norm_is_reestimated_and_configured_like_keras(pretrained):
    backbone, _ = pretrained
    layers = standin.batch_norm_layers(backbone)
    assert {layer.momentum for layer in layers} == {0.999}
    means = [layer.moving_mean.numpy() for layer in layers]
    assert any(np.abs(m).max() > 0 for m in means), "moving means still at their initial zeros"


def test_saved_backbone_loads_safely_and_a_changed_file_is_refused(pretrained, tmp_path):
    backbone, record = pretrained
    path = standin.save(backbone, record, tmp_path / "standin")
    loaded, loaded_record = standin.load(path)
    assert loaded_record["file"]["sha256"] == json.loads(path.with_suffix(".json").read_text())["file"]["sha256"]
    for a, b in zip(backbone.weights, loaded.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(standin.StandinError, match="does not match the SHA-256"):
        standin.load(path)


def test_missing_backbone_says_how_to_make_one(tmp_path):
    with pytest.raises(standin.StandinError, match="companion standin pretrain"):
        standin.load(tmp_path / "absent.keras")


def test_transfer_accuracy_is_a_validation_accuracy(pretrained):
    backbone, _ = pretrained
    train = data.load_arrays("train", 32, 8)
    validation = data.load_arrays("validation", 32, 8)
    accuracy = standin.transfer_accuracy(backbone, train, validation, epochs=2)
    assert 0.0 <= accuracy <= 1.0 and not backbone.trainable
