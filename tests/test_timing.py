"""The build's account of its own time (companion.core.timing) and its table (chapters.build_account), on a clock
that the test advances by hand, so that every expected second is derived here."""

import json

import pytest

from companion.core import timing
from companion.pages import chapters


class Clock:
    """A perf_counter that moves only when the test says."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture()
def clock(monkeypatch, tmp_path):
    fake = Clock()
    monkeypatch.setattr(timing.time, "perf_counter", fake)
    monkeypatch.setenv(timing.ACCOUNT_ENV, str(tmp_path / "times.jsonl"))
    return fake


def test_a_phase_inside_another_is_taken_out_of_the_outer_one(clock, tmp_path):
    with timing.phase("fine-tuning"):
        clock.now += 30  # fitting
        with timing.phase("accuracy passes"):
            clock.now += 12  # an early validation pass
        clock.now += 8
        with timing.phase("accuracy passes"):
            clock.now += 5
    clock.now += 7  # outside any phase
    # The chapter took 70 s: 30 + 8 of fine-tuning of its own, 12 + 5 of accuracy passes, and 70 - 55 other.
    assert timing.account(tmp_path / "times.jsonl", 70.0) == {"fine-tuning": 38.0, "accuracy passes": 17.0,
                                                              "other": 15.0}


def test_phases_in_a_row_add_up_and_an_exception_still_records(clock, tmp_path):
    with timing.phase("phase 1"):
        clock.now += 20
    with pytest.raises(KeyError), timing.phase("phase 1"):
        clock.now += 4
        raise KeyError("a cell failed")
    assert timing.account(tmp_path / "times.jsonl", 24.0) == {"phase 1": 24.0, "other": 0.0}


def test_a_phase_shorter_than_a_tenth_of_a_second_is_not_listed(clock, tmp_path):
    with timing.phase("experiment"):  # an experiment read back from the cache
        clock.now += 0.04
    assert timing.account(tmp_path / "times.jsonl", 10.0) == {"other": 10.0}  # 9.96, to a tenth


def test_without_the_variable_nothing_is_written(clock, tmp_path, monkeypatch):
    monkeypatch.delenv(timing.ACCOUNT_ENV)
    with timing.phase("matrix"):
        clock.now += 3
    assert not (tmp_path / "times.jsonl").exists()
    assert timing.account(tmp_path / "times.jsonl", 9.0) == {"other": 9.0}


def test_an_unknown_phase_names_the_known_ones():
    with pytest.raises(ValueError, match="unknown phase 'training'.*fine-tuning"), timing.phase("training"):
        pass


def test_a_child_process_does_not_add_to_its_callers_account(tmp_path, monkeypatch):
    from companion.core import child

    monkeypatch.setenv(timing.ACCOUNT_ENV, str(tmp_path / "times.jsonl"))
    import os

    seen = child.call("os:getenv", dict(os.environ), key=timing.ACCOUNT_ENV)
    assert seen is None


def test_the_build_account_has_a_row_per_chapter_and_each_lanes_total(tmp_path):
    def summary(name, seconds, phases):
        (tmp_path / f"{name}.summary.json").write_text(json.dumps({"chapter": name, "seconds": seconds,
                                                                    "phases": phases}))

    summary("mobilenet_v2_2020", 300.0, {"phase 1": 200.0, "accuracy passes": 60.0, "other": 40.0})
    summary("keras_guide_xception_2020", 500.0, {"phase 1": 100.0, "fine-tuning": 350.0, "other": 50.0})
    summary("summary", 400.0, {"matrix": 390.0, "other": 10.0})
    lanes = [["mobilenet_v2_2020", "keras_guide_xception_2020"], ["summary", "api"]]  # api did not run
    table = chapters.build_account(tmp_path, lanes, 810.0)
    assert table.header == ["chapter", "lane", "seconds", "phase 1", "fine-tuning", "accuracy passes", "matrix",
                            "other"]
    assert table.rows == [["mobilenet_v2_2020", "1", "300", "200", "0", "60", "0", "40"],
                          ["keras_guide_xception_2020", "1", "500", "100", "350", "0", "0", "50"],
                          ["summary", "2", "400", "0", "0", "0", "390", "10"]]
    written = json.loads((tmp_path / "build.summary.json").read_text())
    assert written["lane_seconds"] == [800.0, 400.0]
    assert written["seconds"] == 810.0
    assert "lane 1 800, lane 2 400" in table.caption
