"""The benchmark command on the real shared images: pipeline images/s next to training images/s."""

import os

import pytest

from companion.core import profiles
from companion.training import benchmark

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
