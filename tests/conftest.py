import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"

# Tests compute on the CPU, quietly and in the smallest profile, whatever the caller's environment says.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.pop("COMPANION_PROFILE", None)


@pytest.fixture(scope="session")
def smoke():
    from companion import profiles

    return profiles.get("smoke")


@pytest.fixture()
def keras():
    from companion.variants import load_keras

    module = load_keras()
    module.utils.set_random_seed(0)
    return module
