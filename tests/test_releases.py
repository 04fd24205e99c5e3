"""The release matrix: which releases, one process per release, failures kept in their column, the column cache."""


import numpy as np
import pytest

from companion.checks import questions
from companion.checks.evidence import Failed, NotApplicable, Recompile, Updates
from companion.core import variants
from companion.suite import architectures
from companion.versions import release_grid, releases

# `pip index versions keras` on 2026-11-25 (its "Available versions" line, 3.x part).
PIP_INDEX = ("3.15.1, 3.15.0, 3.14.1, 3.14.0, 3.13.2, 3.13.1, 3.13.0, 3.12.4, 3.12.3, 3.12.2, 3.12.1, 3.12.0, 3.11.3, "
             "3.11.2, 3.11.1, 3.11.0, 3.10.0, 3.9.2, 3.9.1, 3.9.0, 3.8.0, 3.7.0, 3.6.0, 3.5.0, 3.4.1, 3.4.0, 3.3.3, "
             "3.3.2, 3.3.1, 3.3.0, 3.2.1, 3.2.0, 3.1.1, 3.1.0, 3.0.5, 3.0.4, 3.0.3, 3.0.2, 3.0.1, 3.0.0, 2.15.0")


def test_the_releases_are_the_latest_patch_of_every_minor_release_up_to_the_pinned_one():
    assert releases.PINNED == "3.15.1"
    assert list(releases.KERAS_RELEASES) == releases.latest_patches(PIP_INDEX.split(", "))
    assert releases.latest_patches(["3.1.0", "3.1.10", "3.1.9", "3.2.0rc1", "3.16.0"], up_to="3.15.1") == ["3.1.10"]


def test_columns_are_every_release_on_tensorflow_then_the_variants_then_jax_then_pytorch():
    labels = [r.label for r in releases.releases()]
    assert labels[:16] == [f"keras {v}" for v in releases.KERAS_RELEASES]
    assert labels[16:] == ["keras-nightly 3.16.0.dev2026102704", "tf-keras 2.21.0", "keras 3.15.1 (JAX)",
                           "keras-nightly 3.16.0.dev2026102704 (JAX)", "keras 3.15.1 (PyTorch)",
                           "keras-nightly 3.16.0.dev2026102704 (PyTorch)"]
    assert [r.short_label for r in releases.releases()[-2:]] == ["3.15.1 PyTorch", "nightly PyTorch"]


def test_the_architecture_checks_run_under_the_pinned_release_the_side_variants_jax_and_pytorch():
    running = [r.label for r in releases.releases() if r.architectures]
    assert running == ["keras 3.15.1", "keras-nightly 3.16.0.dev2026102704", "tf-keras 2.21.0", "keras 3.15.1 (JAX)",
                       "keras 3.15.1 (PyTorch)"]


def test_a_backend_column_needs_its_backend_folder_and_a_local_build_counts_as_installed(monkeypatch, tmp_path):
    monkeypatch.setenv(variants.VARIANTS_DIR_ENV, str(tmp_path))
    torch = releases.Release("keras", releases.PINNED, "torch")
    assert releases._needs(torch) == [(tmp_path / "torch", list(releases.TORCH_REQUIREMENTS))]
    assert not releases.is_installed(torch)
    for requirement in releases.TORCH_REQUIREMENTS:  # what pip --target leaves: torch as its CPU build
        name, version = requirement.split("==")
        (tmp_path / "torch" / f"{name}-{version}{'+cpu' if name == 'torch' else ''}.dist-info").mkdir(parents=True)
    assert releases.is_installed(torch)
    assert not variants.installed_in(tmp_path / "torch", "torch==2.13.1")


def test_a_column_without_the_architecture_checks_says_they_do_not_apply(monkeypatch):
    """The child of a column that does not run them is `companion.checks.decisive`; their cells are NotApplicable."""
    started = []

    def call(target, env, **kwargs):
        started.append(target)
        return {"versions": {"keras": "3.0.5"}, "values": {check.id: True for check in questions.CHECKS}}

    monkeypatch.setattr(releases, "environment", lambda release: {})
    monkeypatch.setattr(releases.child, "call", call)
    column = releases.run_column(releases.Release("keras", "3.0.5"))
    assert started == ["companion.checks.questions:measured"] and column.values["nested_override"] is True
    assert all(column.values[c.id] == NotApplicable(releases.NOT_RUN) for c in architectures.CHECKS)
    releases.run_column(releases.Release("keras", releases.PINNED, "jax"))
    assert started[-1] == "companion.suite.architectures:measured"
    # The table's rows are the decisive checks; the architecture checks are the architectures grid's.
    table = releases.ReleaseMatrix([column]).table()
    assert table.column("check") == ["ran", *(c.question for c in questions.CHECKS)]


def test_each_release_has_its_own_folder_and_the_pinned_one_none(monkeypatch, tmp_path):
    monkeypatch.setenv(variants.VARIANTS_DIR_ENV, str(tmp_path))
    assert releases.folder(releases.Release("keras", "3.0.5")) == tmp_path / "releases" / "keras-3.0.5"
    assert releases.folder(releases.Release("keras", releases.PINNED)) is None
    assert releases.folder(releases.Release("tf-keras", "2.21.0")) == tmp_path / "tf-keras"
    with pytest.raises(variants.VariantNotInstalledError, match="companion variants install --releases"):
        releases.environment(releases.Release("keras", "3.0.5"))
    env = releases.environment(releases.Release("keras", releases.PINNED))
    assert env["KERAS_BACKEND"] == "tensorflow" and variants.LEGACY_ENV not in env


def _bogus_release(tmp_path, monkeypatch, module_source: str, version: str = "3.99.0") -> releases.Release:
    """A release folder whose `keras` package runs ``module_source`` on import (and a dist-info, so that it counts
    as installed)."""
    monkeypatch.setenv(variants.VARIANTS_DIR_ENV, str(tmp_path))
    release = releases.Release("keras", version)
    where = releases.folder(release)
    (where / "keras").mkdir(parents=True)
    (where / "keras" / "__init__.py").write_text(module_source)
    (where / f"keras-{version}.dist-info").mkdir()
    return release


def test_a_release_that_does_not_import_gets_a_column_with_the_first_line_of_its_error(tmp_path, monkeypatch):
    release = _bogus_release(tmp_path, monkeypatch, 'raise ImportError("bogus keras\\nsecond line")\n')
    column = releases.run_column(release)
    assert not column.ran and column.error == "ImportError: bogus keras" and column.values == {}
    table = releases.ReleaseMatrix([column]).table()
    assert table.column("keras 3.99.0")[:2] == ["ImportError: bogus keras", "-"]


def test_a_child_that_dies_without_a_result_reports_its_last_error_line(tmp_path, monkeypatch):
    source = 'import sys\nsys.stderr.write("Traceback (most recent call last):\\nSystemError: broken build\\n")\n' \
             'sys.stderr.flush()\nimport os\nos._exit(3)\n'
    column = releases.run_column(_bogus_release(tmp_path, monkeypatch, source))
    assert column.error == "SystemError: broken build"


def test_a_kept_column_is_reused_until_the_checks_change(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(releases, "is_installed", lambda release: True)
    release = releases.Release("keras", "3.0.5")
    computed = []

    def run_column(r):
        computed.append(r)
        return releases.Column(r, {"keras": r.version}, {"nested_override": True, "recompile": Recompile(
            Failed("ValueError: x"), False), "remedy": Updates(False, False, True)}, seconds=4.5)

    monkeypatch.setattr(releases, "run_column", run_column)
    first = releases.column(release)
    again = releases.column(release)
    assert len(computed) == 1 and not first.kept and again.kept
    assert again.values == first.values and again.seconds == 4.5
    assert type(again.values["recompile"].without_recompile) is Failed
    monkeypatch.setattr(questions, "fingerprint", lambda: "another-version-of-the-checks")
    releases.column(release)
    assert len(computed) == 2


def _column(version: str, package: str = "keras", backend: str = "tensorflow", **values) -> releases.Column:
    # Every check a conclusion reads has a value (None: not the documented one), as in a column that ran.
    unset = {check: None for _, expected in questions.CONCLUSIONS for check in expected}
    return releases.Column(releases.Release(package, version, backend), {}, {**unset, "nested_override": True, **values})


def test_columns_in_words_name_the_runs_of_releases_with_a_value():
    found = releases.ReleaseMatrix([
        _column("3.0.5"), _column("3.1.1"), _column("3.2.1", nested_override=False), _column("3.3.3"),
        releases.Column(releases.Release("keras", "3.4.1"), {}, {}, error="ImportError: x"),
        _column("3.16.0.dev1", package="keras-nightly", nested_override=False),
        _column("3.15.1", backend="jax")])
    assert found.in_words(found.where(nested_override=True)) == "keras 3.0.5 to 3.1.1, 3.3.3; keras 3.15.1 (JAX)"
    assert found.in_words(found.where(nested_override=False)) == "keras 3.2.1; keras-nightly 3.16.0.dev1"
    assert found.in_words(found.where(nested_override="nothing has this")) == "none"
    assert found.in_words(found.where(backend="jax", nested_override=False)) == "none"
    # The override: the numbered releases on TensorFlow only, oldest first.
    assert [c.release.version for c in found.overridden()] == ["3.0.5", "3.1.1", "3.3.3"]
    assert len(found.where()) == 6
    kept = next(row for row in found.conclusions_table().rows if row[0].startswith("base(x, training=False) kept"))
    assert kept[1:] == ["keras 3.2.1; keras-nightly 3.16.0.dev1", "keras 3.0.5 to 3.1.1, 3.3.3; keras 3.15.1 (JAX)"]


def test_the_figure_has_a_row_per_answer_and_a_labelled_cell_each():
    found = releases.ReleaseMatrix([
        releases.Column(releases.Release("keras", "3.0.5"), {}, {
            check.id: Updates(False, False, True) if check.kind is Updates else
            Recompile(Failed("ValueError: x"), False) if check.kind is Recompile else True
            for check in questions.CHECKS}),
        releases.Column(releases.Release("keras", "3.4.1"), {}, {}, error="ImportError: x")])
    figure = found.figure()
    texts = [t.get_text() for t in figure.axes[0].texts]
    rows = sum(len(release_grid.row_labels(check)) for check in questions.CHECKS)
    # A bool check is one row, Updates three (statistics, gamma/beta, kernels), Recompile two.
    kinds = [check.kind for check in questions.CHECKS]
    assert rows == kinds.count(bool) + 3 * kinds.count(Updates) + 2 * kinds.count(Recompile) and len(texts) == 2 * rows
    # "no": statistics and gamma/beta of each Updates check, and Recompile's after_recompile.
    assert texts.count("err") == 1 and texts.count("-") == rows and texts.count("no") == 2 * kinds.count(Updates) + 1
    # Coloured by the documented answer: in the first column every Updates value (False, False, True) and
    # Recompile's after_recompile (False) are as documented; of the bool checks answered "yes", the three whose
    # documented answer is no are not: the override, the Dropout inside the base under training=False, and the
    # statistics moving in model(x). The error and the column that did not run are left white (NaN).
    shade = np.asarray(figure.axes[0].images[0].get_array().filled(np.nan))
    assert np.nansum(shade[:, 0]) == 3 and np.isnan(shade[:, 0]).sum() == 1 and np.isnan(shade[:, 1]).all()
    assert [t.get_text() for t in figure.legends[0].get_texts()][:2] == ["as documented", "not as documented"]


def test_every_check_says_the_documented_answer_of_each_of_its_rows():
    for check in questions.CHECKS:
        assert len(check.documented) == len(release_grid.row_labels(check)), check.id
    # Read in Keras' documentation by hand: training=False keeps BN in inference mode; the remedy keeps statistics
    # and gamma/beta and trains the kernels; model.trainable = True sets it on every sublayer.
    assert questions.BY_ID["nested_override"].documented == (False,)
    assert questions.BY_ID["remedy"].documented == (False, False, True)
    assert questions.BY_ID["trainable_setter"].documented == (True,)


@pytest.fixture(scope="module")
def measured():
    """The columns of keras 3.0.5, the pinned release and tf-keras, computed (or kept: the chapter reuses them)."""
    chosen = [r for r in releases.releases() if r.label in ("keras 3.0.5", "keras 3.15.1", "tf-keras 2.21.0")]
    missing = [r.label for r in chosen if not releases.is_installed(r)]
    if missing:
        pytest.skip(f"not installed (companion variants install --releases): {', '.join(missing)}")
    return releases.compute(chosen, progress=False)


def test_keras_3_releases_override_training_false_and_tf_keras_does_not(measured):
    assert [(c.release.label, c.ran) for c in measured.columns] == [
        ("keras 3.0.5", True), ("keras 3.15.1", True), ("tf-keras 2.21.0", True)]
    assert [c.values["nested_override"] for c in measured.columns] == [True, True, False]
    assert [c.versions["keras"] for c in measured.columns] == ["3.0.5", "3.15.1", "2.21.0"]
    assert [c.release.label for c in measured.overridden()] == ["keras 3.0.5", "keras 3.15.1"]
    # The remedy with base(x) works on all three; the recompile is needed on all three.
    assert all(c.values["remedy_alone"] == questions.REMEDY_WORKS and c.values["remedy_alone_dropout"]
               and c.values["recompile"] == Recompile(True, False) for c in measured.columns)


def test_installing_names_each_folder_once_and_starts_with_the_one_with_most_to_install(monkeypatch, tmp_path):
    monkeypatch.setenv("COMPANION_VARIANTS_DIR", str(tmp_path))
    calls = []
    monkeypatch.setattr(variants, "pip_install", lambda folder, requirements: calls.append((folder, requirements)))
    nightly = releases._variant_release("keras-nightly", "jax")
    releases.install([releases.Release("keras", releases.PINNED, "jax"), nightly, releases.Release("keras", "3.0.5")])
    # The pinned release on JAX needs only the JAX folder, the nightly on JAX its own folder and the JAX folder
    # again: JAX's three requirements once, and each Keras folder (installed at the same time: in any order).
    assert sorted(calls) == [(tmp_path / "jax", list(releases.JAX_REQUIREMENTS)),
                             (tmp_path / "keras-nightly", [nightly.requirement]),
                             (tmp_path / "releases" / "keras-3.0.5", ["keras==3.0.5"])]
    calls.clear()
    variants.pip_install_all([(tmp_path / "a", ["x==1"]), (tmp_path / "b", ["y==1", "z==1", "v==1"]),
                              (tmp_path / "a", ["x==1", "w==2"])], jobs=1)
    # One at a time, the order is seen: b (three to install) before a (two: x, named twice, and w).
    assert calls == [(tmp_path / "b", ["y==1", "z==1", "v==1"]), (tmp_path / "a", ["x==1", "w==2"])]


def test_releases_that_agree_on_every_check_share_a_column_of_the_table():
    """3.0.5 and 3.1.1 answer alike; 3.2.1 differs in one check; the JAX column answers as the first two. Derived:
    two columns, "keras 3.0.5 to 3.1.1; keras 3.15.1 (JAX)" and "keras 3.2.1", and the one differing row."""
    def column(version, backend="tensorflow", override=True):
        values = {check.id: True for check in releases.ALL_CHECKS}
        values["nested_override"] = override
        return releases.Column(releases.Release("keras", version, backend), {"keras": version}, values)

    matrix = releases.ReleaseMatrix([column("3.0.5"), column("3.1.1"), column("3.2.1", override=False),
                                     column(releases.PINNED, "jax")])
    table = matrix.table()
    assert table.header == ["check", f"keras 3.0.5 to 3.1.1; keras {releases.PINNED} (JAX)", "keras 3.2.1"]
    differing = [row for row in table.rows if row[1] != row[2]]
    override = next(c.question for c in releases.ALL_CHECKS if c.id == "nested_override")
    assert differing == [[override, "yes", "no"]]
    assert table.caption.startswith("4 releases and backends")
