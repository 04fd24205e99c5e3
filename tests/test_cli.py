"""The `companion` command: help a new user understands, errors that list the valid names, one line per error,
paths from the environment resolved where the command was called, and a summary of every glued value."""

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from companion.pages import chapters, cli
from companion.tutorials import recipes


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
    assert names == ["introduction", "summary", "trainable_versus_training", "keras3_surprise", "keras_versions",
                     "is_my_model_affected", "guard_your_fine_tuning", "offline_weights", "mobilenet_v2_2019",
                     "mobilenet_v2_2020", "keras_guide_xception_2020", "side_by_side", "claims_audit",
                     "upstream_reports", "how_it_is_verified", "api"]


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "chapter9"], "unknown chapter or recipe 'chapter9'; valid chapters: introduction, summary, trainable_vers"),
        (["run", "introduction", "--profile", "tiny"], "unknown profile 'tiny'; valid profiles: smoke, offline, full, gpu"),
        (["run", "introduction", "-p", "epochs", "3"], "unknown parameter 'epochs'; valid parameters: profile, seed"),
        (["benchmark", "--profile", "huge"], "unknown profile 'huge'"),
        (["variants", "install", "keras2"], "unknown Keras variant 'keras2'; valid variants: keras, keras-nightly"),
        (["variants", "install", "keras2", "--releases"], "unknown Keras variant 'keras2'"),
    ],
)
def test_bad_names_exit_2_with_the_valid_ones(capsys, argv, message):
    code, text = _run(capsys, *argv)
    assert code == 2
    assert message in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "introduction", "-p", "profile", "full"], "give the profile with --profile, not -p profile"),
        (["run", "introduction", "-p", "seed", "-1"], "parameter 'seed' must be between 0 and 4294967295"),
        (["run", "introduction", "-p", "seed", "true"], "parameter 'seed' must be int, got True"),
        (["run"], "name a chapter or recipe"),
    ],
)
def test_parameters_are_checked_before_a_kernel_starts(capsys, argv, message):
    code, text = _run(capsys, *argv)
    assert code == 2 and message in text and "Traceback" not in text


def test_run_writes_the_executed_notebook_and_a_summary_with_every_glued_value(tmp_path, capsys):
    assert cli.main(["run", "HOW_IT_IS_VERIFIED", "-p", "seed", "2", "--output", str(tmp_path)]) == 0
    assert (tmp_path / "how_it_is_verified.ipynb").is_file()
    summary = json.loads((tmp_path / "how_it_is_verified.summary.json").read_text())
    assert summary["parameters"] == {"seed": 2} and summary["profile"] == "smoke" and summary["completed"]
    # The page glues the versions it ran with, under names version_<key>.
    import keras

    assert summary["glued"]["version_keras"] == keras.__version__ and summary["glued"]["version_variant"] == "keras"


def test_a_failing_chapter_is_one_line_naming_the_cell_and_a_summary_is_still_written(tmp_path, monkeypatch):
    """A relative data folder that does not exist, given from another directory: the command resolves it where it
    was called (not in book/, where the kernel runs), and the failure names the chapter, the cell and the error."""
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "COMPANION_DATA_DIR": "missing-data"}
    done = subprocess.run([sys.executable, "-m", "companion.pages.cli", "run", "MobileNetV2 2020", "--output", "out"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.startswith("companion: error:")]
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "mobilenet_v2_2020 failed in code cell" in lines[0] and "DatasetError" in lines[0]
    assert str(tmp_path / "missing-data" / "cats_and_dogs_filtered") in lines[0]
    summary = json.loads((tmp_path / "out" / "mobilenet_v2_2020.summary.json").read_text())
    assert not summary["completed"] and summary["stopped_at"].startswith("code cell")


def test_two_jobs_run_the_tutorial_chapters_apart_from_the_others_the_summary_first():
    names = list(chapters.chapters())
    tutorials, others = chapters.lanes(names, 2)
    assert tutorials == ["mobilenet_v2_2020", "mobilenet_v2_2019", "keras_guide_xception_2020", "side_by_side",
                         "offline_weights"]
    assert others == ["summary", "introduction", "trainable_versus_training", "keras3_surprise", "keras_versions",
                      "is_my_model_affected", "guard_your_fine_tuning", "claims_audit", "upstream_reports",
                      "how_it_is_verified", "api"]
    assert chapters.lanes(["api", "mobilenet_v2_2019", "summary"], 2) == [["mobilenet_v2_2019"], ["summary", "api"]]
    assert chapters.lanes(names, 1) == [names] and chapters.lanes(["summary"], 2) == [["summary"]]
    with pytest.raises(chapters.ChapterError, match="--jobs must be 1 or 2"):
        chapters.lanes(names, 3)


def test_a_recipe_name_in_any_case_runs_its_chapter():
    assert {chapters.find(name.upper()).stem for name in chapters.RECIPE_CHAPTERS} == set(
        chapters.RECIPE_CHAPTERS.values())
    assert set(chapters.RECIPE_CHAPTERS) == set(recipes.RECIPES)


def test_tables_fit_the_terminal(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "72")
    assert cli.main(["recipes", "MobileNetV2 2019", "Xception 2020"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert max(map(len, lines)) <= 72 and any("differs" in line for line in lines)


def test_variants_are_found_from_a_subfolder_of_the_clone_without_environment_variables():
    """The set-up installs the variants into the clone's .variants/; the command finds them from anywhere in it."""
    env = {k: v for k, v in os.environ.items() if k != "COMPANION_VARIANTS_DIR"}
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "companion"), "variants", "list"], cwd=ROOT / "book",
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    listed = {line.split()[0]: line for line in done.stdout.splitlines() if line.split()}
    for name in ("keras", "keras-nightly", "tf-keras"):
        assert " installed " in listed[name] and "not installed" not in listed[name]
    assert f"(installed in {ROOT / '.variants'})" in done.stdout


def test_building_from_executed_chapters_names_the_missing_ones(capsys, tmp_path):
    (tmp_path / "introduction.ipynb").write_text("{}")
    code, text = _run(capsys, "book", "--executed", str(tmp_path))
    assert code == 2 and "lacks executed chapters: summary.ipynb, trainable_versus_training.ipynb" in text
    assert "introduction.ipynb," not in text


def test_variants_list_names_every_column_of_the_matrix(capsys):
    from companion.core.columns import columns

    assert cli.main(["variants", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(f"{column.label} " in listed for column in columns())


@pytest.mark.skipif(not os.environ.get("COMPANION_DATA_DIR"), reason="needs the real images: set COMPANION_DATA_DIR")
def test_a_relative_data_folder_works_with_companion_run_in_two_jobs(tmp_path):
    """Two chapters with --jobs 2: the one that trains in a process of its own, the other in another, both with
    the data folder given relative to where the command was called."""
    relative = os.path.relpath(os.environ["COMPANION_DATA_DIR"], tmp_path)
    done = subprocess.run([sys.executable, "-m", "companion.pages.cli", "run", "how_it_is_verified", "offline_weights",
                           "--jobs", "2", "--output", "out"], cwd=tmp_path,
                          env={**os.environ, "COMPANION_DATA_DIR": relative}, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert [line for line in done.stdout.splitlines() if "in a process of their own" in line] == [
        "companion: running offline_weights in a process of their own",
        "companion: running how_it_is_verified in a process of their own"]
    summary = json.loads((tmp_path / "out" / "offline_weights.summary.json").read_text())
    # 100 images per class (the smoke profile) read through the relative folder.
    assert summary["completed"] and summary["glued"]["head_train_images"] == 200
    assert json.loads((tmp_path / "out" / "how_it_is_verified.summary.json").read_text())["completed"]
    # The build's account: each chapter in its lane, its phases adding up to its time.
    account = json.loads((tmp_path / "out" / "build.summary.json").read_text())
    assert account["lanes"] == [["offline_weights"], ["how_it_is_verified"]]
    assert {name: chapter["lane"] for name, chapter in account["chapters"].items()} == {
        "offline_weights": 1, "how_it_is_verified": 2}
    for chapter in account["chapters"].values():
        assert sum(chapter["phases"].values()) == pytest.approx(chapter["seconds"], abs=0.5)
    assert "Where the time went" in done.stdout and "where its time went: " in done.stdout
    # Papermill's injected copy of the parameters is plumbing: the book built from this run leaves it out.
    executed = json.loads((tmp_path / "out" / "offline_weights.ipynb").read_text())
    injected = [c for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])]
    assert len(injected) == 1 and "remove-cell" in injected[0]["metadata"]["tags"]


def test_make_resolves_a_relative_data_folder_where_it_was_called(tmp_path):
    """`COMPANION_DATA_DIR=../x make book` and `make book COMPANION_DATA_DIR=../x` hand the kernels an absolute path."""
    probe = tmp_path / "probe.mk"
    probe.write_text(f"include {ROOT / 'Makefile'}\nshow:\n\t@echo \"DATA=$$COMPANION_DATA_DIR\"\n")
    from_environment = subprocess.run(["make", "-s", "-f", str(probe), "show"], cwd=ROOT, capture_output=True,
                                      text=True, env={**os.environ, "COMPANION_DATA_DIR": "../shared/data"})
    on_command_line = subprocess.run(["make", "-s", "-f", str(probe), "show", "COMPANION_DATA_DIR=data/x"], cwd=ROOT,
                                     capture_output=True, text=True)
    assert from_environment.stdout.strip() == f"DATA={ROOT.parent / 'shared' / 'data'}"
    assert on_command_line.stdout.strip() == f"DATA={ROOT / 'data' / 'x'}"


@pytest.mark.skipif(not os.environ.get("COMPANION_DATA_DIR"), reason="needs the real images: set COMPANION_DATA_DIR")
def test_ctrl_c_during_a_run_is_one_line_and_leaves_a_summary(tmp_path):
    """Ctrl-C while a chapter executes stops it there: no traceback (papermill's or the kernel channels'), the part
    that ran is kept and the summary says the run was interrupted. The 2020 tutorial page trains in its cells
    whatever the cache holds (over a minute here), so it is still running when the signal comes."""
    import signal
    import time

    chapter = "mobilenet_v2_2020"
    # Ctrl-C as a terminal delivers it, whatever the test runner inherited: a runner started in the background by a
    # non-interactive shell ignores SIGINT, and so, through it, would the command.
    child = subprocess.Popen([sys.executable, "-m", "companion.pages.cli", "run", chapter, "--output",
                              str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not (tmp_path / f"{chapter}.ipynb").is_file() and time.monotonic() < deadline:
        time.sleep(0.5)
    time.sleep(5)  # the kernel is executing cells by now
    child.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    out, err = child.communicate(timeout=120)
    # It stopped where it was (the kernel killed), not after running the chapter to its end.
    assert time.monotonic() - signalled < 20, err[-3000:]
    assert child.returncode == 2, err[-3000:]
    assert "Traceback" not in err, err[-3000:]
    assert f"companion: error: {chapter} interrupted; the part that ran is in" in err
    summary = json.loads((tmp_path / f"{chapter}.summary.json").read_text())
    assert not summary["completed"] and summary["stopped_at"] == "interrupted"


def test_outside_a_clone_home_works_and_the_chapters_say_how_to_get_them(tmp_path):
    """The companion as a wheel installs it, without the clone around it: `home` reads the packaged copy, and the
    commands that need the chapters (notebooks of the clone) fail in one line that says to clone the book."""
    import shutil

    from companion import __version__

    site = tmp_path / "site-packages"
    shutil.copytree(ROOT / "companion", site / "companion", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("COMPANION_")}, "PYTHONPATH": str(site)}

    def companion(*argv):
        return subprocess.run([sys.executable, "-m", "companion.pages.cli", *argv], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=300)

    found = companion("home")
    assert found.returncode == 0, found.stderr[-3000:]
    # The values of _config.yml's repository section, and the site and requirement derived from them by hand.
    assert found.stdout == ("repository https://github.com/training-vs-trainable/book (branch main), site "
                            "https://training-vs-trainable.github.io/book/, installs training-vs-trainable @ "
                            f"git+https://github.com/training-vs-trainable/book@v{__version__}\n")
    for argv in (["chapters"], ["run", "introduction"], ["home", "--apply"], ["book"]):
        done = companion(*argv)
        assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
        assert done.stderr == (
            "companion: error: the chapters are notebooks in a clone of the book, and this companion is installed "
            f"without one ({site / 'companion'}): git clone https://github.com/training-vs-trainable/book, then run "
            "`companion` from the clone (`make setup` installs it there)\n"), argv


def test_a_page_that_misses_its_target_by_more_than_the_profile_allows_fails_the_run(tmp_path, monkeypatch, capsys):
    """`companion run` lists every target with its result, and exits 1 naming the one missed, after every chapter
    ran and wrote its summary (the chapters' runs are replaced here by summaries written by hand)."""
    from companion.core import profiles

    phase1 = profiles.Target("MobileNetV2 2020", "phase 1", 0.08, "a shorter phase 1")
    tuned = profiles.Target("MobileNetV2 2020", "fine-tuned with the remedy", 0.02, "the bar")
    reached = {"mobilenet_v2_2020": [profiles.Reached(phase1, 0.85, 0.94), profiles.Reached(tuned, 0.97, 0.98)],
               "how_it_is_verified": []}

    def run(name, profile, parameters, output, progress=True):
        summary = chapters.Summary(name, profile, parameters, 1.0, str(output / f"{name}.ipynb"), True, None, [], {},
                                   {"other": 1.0}, [r.to_dict() for r in reached[name]])
        summary.write(output)
        return summary

    monkeypatch.setattr(chapters, "run", run)
    monkeypatch.setenv("COLUMNS", "200")  # the table unwrapped
    assert cli.main(["run", "mobilenet_v2_2020", "how_it_is_verified", "--output", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert "no: 9.0 points short" in out and "yes" in out  # the table: both targets, each with its result
    assert "missed by more than the profile 'smoke' allows: mobilenet_v2_2020 (MobileNetV2 2020, phase 1: 0.850, " \
           "9.0 points short of the published 0.94, 8 allowed)" in err
    account = json.loads((tmp_path / "build.summary.json").read_text())
    assert [(t["chapter"], t["stage"], t["met"]) for t in account["targets"]] == [
        ("mobilenet_v2_2020", "phase 1", False), ("mobilenet_v2_2020", "fine-tuned with the remedy", True)]
    reached["mobilenet_v2_2020"][0] = profiles.Reached(phase1, 0.875, 0.94)  # 6.5 points short: within the 8
    assert cli.main(["run", "mobilenet_v2_2020", "--output", str(tmp_path)]) == 0
