"""Recipes are data: fixed by default, as written on request, and two recipes diff field by field."""

import pytest

from companion.checks import ways
from companion.pages import cli
from companion.tutorials import recipes


def test_each_recipe_cites_its_source_commit_or_date():
    # The states the book follows (/work/shared/NOTES.md): tensorflow/docs' tutorial at commits aa0f9ca9 (2019-11-11)
    # and adae1941 (2020-08-01, where training=False came in), and the keras-io guide created on 2020-04-15.
    tutorial = "tensorflow/docs site/en/tutorials/images/transfer_learning.ipynb"
    assert {name: recipe.source for name, recipe in recipes.RECIPES.items()} == {
        "MobileNetV2 2019": f"{tutorial} @ aa0f9ca9 (2019-11-11)",
        "MobileNetV2 2020": f"{tutorial} @ adae1941 (2020-08-01)",
        "Xception 2020": "keras-team/keras-io guides/transfer_learning.py (2020-04-15; last tf.keras edit 2020-05-12)",
    }


def test_fixed_by_default_and_as_written_on_request():
    fixed = recipes.MOBILENET_V2_2019
    written = fixed.as_written()
    assert fixed.loss_from_logits and fixed.accuracy_threshold == 0 and not fixed.phase2_initial_epoch_overlaps
    assert not written.loss_from_logits and written.accuracy_threshold == 0.5 and written.phase2_initial_epoch_overlaps
    guide = recipes.XCEPTION_2020.as_written()
    assert guide.loss_from_logits  # the guide had no loss bug...
    assert guide.accuracy_threshold == 0.5 and recipes.XCEPTION_2020.accuracy_threshold == 0  # ...but a metric one


def test_each_recipe_fine_tunes_as_its_tutorial_calls_its_base_without_the_remedy():
    # The 2019 tutorial calls its base plainly (a Sequential); the 2020 ones pass training=False.
    assert recipes.MOBILENET_V2_2019.way is ways.PLAIN
    assert recipes.MOBILENET_V2_2020.way is recipes.XCEPTION_2020.way is ways.TRAINING_FALSE
    assert dict(recipes.MOBILENET_V2_2019.rows())["base called with"] == "base(x)"
    assert dict(recipes.XCEPTION_2020.rows())["BatchNormalization when fine-tuning"] == (
        "BN layers follow their block's trainable")


def test_another_way_is_the_same_recipe_with_that_call_and_remedy():
    # A Sequential calls its base plainly: the 2019 recipe called otherwise becomes functional; with the remedy and
    # the same call it stays a Sequential.
    called = recipes.MOBILENET_V2_2019.with_way(ways.TRAINING_FALSE)
    assert (called.way, called.model_style) == (ways.TRAINING_FALSE, "functional")
    remedied = recipes.MOBILENET_V2_2019.with_way(ways.REMEDY)
    assert (remedied.model_style, dict(remedied.rows())["BatchNormalization when fine-tuning"]) == (
        "Sequential", "every BN layer set trainable=False")
    assert recipes.differing_fields(recipes.MOBILENET_V2_2019, remedied) == ["BatchNormalization when fine-tuning"]
    assert recipes.MOBILENET_V2_2019.way_label(ways.PLAIN) == "as written: base(x)"
    assert recipes.MOBILENET_V2_2019.way_label(ways.REMEDY) == "remedy + base(x)"


def test_a_page_compares_the_recipe_as_written_with_training_false_and_with_the_remedy_added():
    assert recipes.ways_compared(recipes.MOBILENET_V2_2019) == (ways.PLAIN, ways.TRAINING_FALSE, ways.REMEDY)
    # The 2020 recipes already pass training=False: as written, and as written with the remedy.
    for recipe in (recipes.MOBILENET_V2_2020, recipes.XCEPTION_2020):
        assert recipes.ways_compared(recipe) == (ways.TRAINING_FALSE, ways.REMEDY_TRAINING_FALSE)


def test_diff_marks_exactly_the_fields_that_differ():
    diff = recipes.diff_table(recipes.MOBILENET_V2_2019, recipes.MOBILENET_V2_2020)
    marked = {row[0] for row in diff.rows if row[-1] == "differs"}
    assert {"base called with", "head", "augmentation", "preprocessing", "dataset"} <= marked
    assert "fine-tuning" not in marked and "image size" not in marked
    only = recipes.diff_table(recipes.MOBILENET_V2_2019, recipes.MOBILENET_V2_2020, only_differences=True)
    assert {row[0] for row in only.rows} == marked


def test_unknown_recipe_lists_the_valid_ones(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["recipes", "ResNet 2021"])
    assert exit_info.value.code == 2
    assert "valid recipes: MobileNetV2 2019, MobileNetV2 2020, Xception 2020" in capsys.readouterr().err


def test_cli_diff(capsys):
    assert cli.main(["recipes", "MobileNetV2 2019", "Xception 2020", "--only-differences"]) == 0
    out = capsys.readouterr().out
    assert "architecture" in out and "differs" in out
