"""The benchmark command on the real shared images: pipeline images/s next to training images/s."""

import os

import pytest

import dataclasses

from companion import data
from companion.data import layout as layout_module
from companion.core import profiles
from companion.training import benchmark, peer
from companion.tutorials import setups

pytestmark = pytest.mark.skipif(not os.environ.get("COMPANION_DATA_DIR"),
                                reason="needs the real images: set COMPANION_DATA_DIR")


def test_benchmark_reports_pipeline_and_training_speed():
    result = benchmark.run(profiles.get("smoke"), batch_size=32)
    assert result.pipeline.images == 2 * profiles.get("smoke").images_per_class
    assert result.pipeline.cached
    assert set(result.training) == {"base frozen", "base unfrozen"}
    assert all(speed > 0 for speed in result.training.values())
    text = repr(result.table())
    assert "pipeline, cached pass" in text and "required 5x" in text


def test_the_peer_reads_the_same_files_as_the_runner(tmp_path):
    """The 2020 tutorial's images under each profile: smoke, the first 100 per class and split; offline, every file
    of each class folder."""
    layout = data.load_layout(data.dataset_root())
    for profile in ("smoke", "offline"):
        s = setups.setup(peer.RECIPE, profiles.get(profile))
        folder = peer.tutorial_folder(s, tmp_path / profile)
        for split in data.SPLITS:
            for label, name in enumerate(data.CLASS_NAMES):
                linked = sorted(p.resolve() for p in (folder / split / name).iterdir())
                read = sorted(p.resolve() for p, found in layout.labelled(split, s.images_per_class) if found == label)
                on_disk = len(list((layout.root / layout_module.DATASET_FOLDER / split / name).iterdir()))
                assert linked == read and len(read) == (100 if profile == "smoke" else on_disk)


def test_the_runner_and_the_bare_keras_peer_alternate_on_the_same_images():
    one_epoch = dataclasses.replace(profiles.get("smoke"), epochs=(("*", profiles.Epochs(1, 1, "a test")),))
    found = peer.compare(one_epoch, pairs=1)
    # smoke: 100 images per class and split, both sides
    assert found.images == {"train": 200, "validation": 200} and found.epochs == 1
    assert len(found.runner_seconds) == len(found.peer_seconds) == 1
    assert found.ratio == pytest.approx(found.runner_seconds[0] / found.peer_seconds[0])
    assert all(0 <= accuracy <= 1 for accuracy in (*found.runner_accuracy, *found.peer_accuracy))
    assert "runner / bare Keras" in repr(found.table())
    with pytest.raises(ValueError, match="at least one pair"):
        peer.compare(one_epoch, pairs=0)
