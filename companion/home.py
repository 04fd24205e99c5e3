"""The book's public home: its repository, branch and published site, read from ``_config.yml``.

``_config.yml``'s ``repository.url`` is the one line a fork changes. The launch buttons read it (Jupyter Book); the
chapters' install cell, the README's clone command and the site address are derived from it here, and
``tests/test_home.py`` checks that they agree.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from companion import __version__

CONFIG = Path(__file__).resolve().parents[1] / "_config.yml"
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


def read(config: Path = CONFIG) -> Home:
    import yaml

    repository = yaml.safe_load(config.read_text())["repository"]
    return Home(repository["url"], repository["branch"])
