"""The book's public home is one line of _config.yml; everything that names it agrees with that line."""

import nbformat
from conftest import ROOT
from test_notebooks import CHAPTERS

from companion import __version__
from companion.pages import home


def test_the_home_is_read_from_the_config_and_the_site_derived_from_it():
    found = home.read()
    assert found.repository == "https://github.com/training-vs-trainable/book" and found.branch == "main"
    assert found.site == "https://training-vs-trainable.github.io/book/"
    assert found.requirement == f"training-vs-trainable @ git+{found.repository}@v{__version__}"


def test_every_chapter_installs_the_companion_from_the_home_at_this_version():
    install = home.read().install_cell()
    assert f"git+{home.read().repository}@v{__version__}" in install
    for path in CHAPTERS:
        setup = [c for c in nbformat.read(path, 4).cells if c.cell_type == "code"][1].source
        assert setup.startswith(install), path.name


def test_the_readme_names_the_home_and_the_site():
    readme = (ROOT / "README.md").read_text()
    found = home.read()
    assert f"git clone {found.repository}" in readme and found.site in readme


def test_applying_the_home_changes_nothing_when_the_chapters_agree():
    from companion.pages import chapters

    assert chapters.apply_home(home.read().install_cell()) == []


def test_a_fork_changes_one_line(tmp_path):
    config = (ROOT / "_config.yml").read_text().replace("training-vs-trainable/book", "someone/fork")
    (tmp_path / "_config.yml").write_text(config)
    fork = home.read(tmp_path / "_config.yml")
    assert fork.site == "https://someone.github.io/fork/"
    assert "git+https://github.com/someone/fork@v" in fork.install_cell()


def test_the_packaged_copy_of_the_home_agrees_with_the_config():
    """The wheel carries the home as companion/assets/home.json (an installed companion has no _config.yml): it must
    say what _config.yml says. After editing repository.url, `companion home --apply` rewrites it."""
    import json

    import yaml

    repository = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    packaged = json.loads(home.PACKAGED.read_text())
    assert packaged == {"repository": repository["url"], "branch": repository["branch"]}, \
        "companion/assets/home.json differs from _config.yml: run `companion home --apply`"


def test_without_a_clone_the_home_is_read_from_the_packaged_copy(tmp_path, monkeypatch):
    fork = home.Home("https://github.com/someone/fork", "trunk")
    assert home.write_packaged(fork, tmp_path / "home.json") and not home.write_packaged(fork, tmp_path / "home.json")
    monkeypatch.setattr(home, "CONFIG", tmp_path / "no-clone" / "_config.yml")
    monkeypatch.setattr(home, "PACKAGED", tmp_path / "home.json")
    assert home.read() == fork and home.read().site == "https://someone.github.io/fork/"
