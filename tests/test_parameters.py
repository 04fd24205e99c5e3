"""Profiles and chapter parameters: bad names fail with the list of valid ones."""

import pytest

from companion import notebook, profiles, variants


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
    with pytest.raises(notebook.UnknownParameterError, match="unknown parameter 'epochs'; valid parameters: profile, seed"):
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
