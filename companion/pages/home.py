"""The book's public home: its repository, branch and published site, read from ``_config.yml``.

``_config.yml``'s ``repository.url`` is the one line a fork changes. The launch buttons read it (Jupyter Book); the
chapters' install cell, the README's clone command and the site address are derived from it here, and
``tests/test_home.py`` checks that they agree.

An installed companion has no ``_config.yml`` next to it, so the wheel carries a copy of the home,
``assets/home.json``: :func:`read` uses the clone's ``_config.yml`` where there is one, else that copy.
``companion home --apply`` rewrites the copy together with the chapters, and a test fails while the two differ.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from companion import ASSETS, PACKAGE, __version__

CONFIG = PACKAGE.parent / "_config.yml"  # there only in a clone
PACKAGED = ASSETS / "home.json"
DISTRIBUTION = "training-vs-trainable"


@dataclasses.dataclass(frozen=True)
class Home:
    repository: str  # https://github.com/OWNER/NAME
    branch: str

    @property
    def owner_and_name(self) -> tuple[str, str]:
        owner, name = self.repository.rstrip("/").split("/")[-2:]
        return owner, name

    @property
    def site(self) -> str:
        """Where the Pages workflow publishes the HTML: https://OWNER.github.io/NAME/."""
        owner, name = self.owner_and_name
        return f"https://{owner.lower()}.github.io/{name}/"

    @property
    def tag(self) -> str:
        """The git tag of this version of the book and its companion."""
        return f"v{__version__}"

    @property
    def requirement(self) -> str:
        """What a chapter's install cell installs: the companion at this book's version, from its home."""
        return f"{DISTRIBUTION} @ git+{self.repository}@{self.tag}"

    def install_cell(self) -> str:
        """The lines that open each chapter's set-up cell: install the companion where it is missing (Colab, Binder,
        a notebook downloaded alone), with TensorFlow's CPU build only where no TensorFlow is installed yet."""
        return (
            "import importlib.util\n\n"
            "if importlib.util.find_spec(\"companion\") is None:  # Colab, Binder or a downloaded notebook\n"
            "    _extras = \"book\" if importlib.util.find_spec(\"tensorflow\") else \"book,cpu\"\n"
            f"    %pip install --quiet \"{DISTRIBUTION}[{{_extras}}] @ git+{self.repository}@{self.tag}\"\n"
        )


def read(config: Path | None = None) -> Home:
    """The home ``config`` (default: the clone's ``_config.yml``) names; without a clone, the packaged copy."""
    if config is None and not CONFIG.is_file():
        return Home(**json.loads(PACKAGED.read_text()))
    import yaml

    repository = yaml.safe_load((CONFIG if config is None else config).read_text())["repository"]
    return Home(repository["url"], repository["branch"])


def write_packaged(home: Home, path: Path = PACKAGED) -> bool:
    """Make the packaged copy hold ``home``; whether it changed."""
    text = json.dumps(dataclasses.asdict(home), indent=1) + "\n"
    if path.is_file() and path.read_text() == text:
        return False
    path.write_text(text)
    return True
