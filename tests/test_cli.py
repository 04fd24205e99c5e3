"""The `companion` command: help a new user understands, errors that list the valid names."""

import pytest

from companion import cli, recipes


def _run(capsys, *argv):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(list(argv))
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out + captured.err


def test_help_lists_every_command_and_profile(capsys):
    code, text = _run(capsys, "--help")
    assert code == 0
    for word in ("chapters", "run", "matrix", "check", "variants", "book", "refresh", "smoke", "full"):
        assert word in text


def test_chapters_are_listed_in_book_order(capsys):
    assert cli.main(["chapters"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["introduction", "trainable_versus_training", "keras3_surprise", "keras_versions",
                     "offline_weights", "mobilenet_v2_2019", "mobilenet_v2_2020", "xception_2020", "side_by_side",
                     "claims_audit"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "chapter9"], "unknown chapter or recipe 'chapter9'; valid chapters: introduction, trainable_versus_training"),
        (["run", "introduction", "--profile", "tiny"], "unknown profile 'tiny'; valid profiles: smoke, offline, full"),
        (["run", "introduction", "-p", "epochs", "3"], "unknown parameter 'epochs'; valid parameters: profile, seed"),
        (["matrix", "--profile", "huge"], "unknown profile 'huge'"),
        (["variants", "install", "keras2"], "unknown Keras variant 'keras2'; valid variants: keras, keras-nightly"),
        (["variants", "install", "keras2", "--releases"], "unknown Keras variant 'keras2'"),
    ],
)
def test_bad_names_exit_2_with_the_valid_ones(capsys, argv, message):
    code, text = _run(capsys, *argv)
    assert code == 2
    assert message in text


def test_run_writes_the_executed_notebook_and_a_summary(tmp_path, capsys):
    assert cli.main(["run", "introduction", "-p", "seed", "2", "--output", str(tmp_path)]) == 0
    assert (tmp_path / "introduction.ipynb").is_file()
    summary = (tmp_path / "introduction.summary.json").read_text()
    assert '"seed": 2' in summary and '"profile": "smoke"' in summary


def test_a_recipe_name_runs_its_chapter():
    assert {cli._chapter(name).stem for name in cli.RECIPE_CHAPTERS} == set(cli.RECIPE_CHAPTERS.values())
    assert set(cli.RECIPE_CHAPTERS) == set(recipes.RECIPES)


def test_building_from_executed_chapters_names_the_missing_ones(capsys, tmp_path):
    (tmp_path / "introduction.ipynb").write_text("{}")
    code, text = _run(capsys, "book", "--executed", str(tmp_path))
    assert code == 2 and "lacks executed chapters: trainable_versus_training.ipynb" in text
    assert "introduction.ipynb," not in text


def test_variants_list_names_every_release_of_the_release_matrix(capsys):
    from companion import releases

    assert cli.main(["variants", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(f"{release.label} " in listed for release in releases.releases())
