"""The companion's layers: no import cycle, nothing imports a module of a higher layer, and imports have no side
effects on the settings of the libraries the reader's own code shares (matplotlib's).

The layers are the companion's subpackages, in the order of the package docstring (``companion/__init__.py``)
and of the README's drawing; a module belongs to the layer of its subpackage (``companion.flags.probes`` to
``flags``), the package's own ``__init__`` to the bottom one.
Imports are read from the source with ``ast``, every one of them: at module level, inside functions (imported
when called) and under ``TYPE_CHECKING``, since each is a dependency all the same.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "companion"

# Bottom up. A module may import modules of its own layer and of the layers below it, never above.
LAYERS = [
    ("core: which Keras runs, profiles, kept results, tables, figures, terminal, statistics", {"companion", "core"}),
    ("the tutorial's images", {"data"}),
    ("measuring what the flags did: the one walker, remedy, snapshot and recorder, probes, the report", {"flags"}),
    ("the checks as plain Keras, the ways of fine-tuning, the models they build, typed values", {"checks"}),
    ("the tutorials as recipes and their models, the pretrained bases, setups, results", {"tutorials"}),
    ("the one matrix and its views, the reader's install or model; upstream reproducers", {"versions"}),
    ("the claims and their verdicts", {"audit"}),
    ("a recipe trained under a profile, the experiment, the benchmark", {"training"}),
    ("the book: what every chapter does first, a tutorial page, its home, its chapters, the command", {"pages"}),
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """The companion modules ``name`` imports, anywhere in its source; ``from companion import X`` counts as an
    import of the module ``companion.X`` where there is one, else of the package ``companion``."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, up level - 1 more
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            found |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names}
    return {target for target in found if target in MODULES and target != name}


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _layer_of(module: str) -> int:
    """The index in LAYERS of a module's group: ``companion.data.layout`` belongs to ``data``."""
    group = "companion" if module == "companion" else module.split(".")[1]
    for index, (_, members) in enumerate(LAYERS):
        if group in members:
            return index
    raise LookupError(module)


def test_the_graph_is_read_from_the_source():
    """Hand-read from the files: cli imports chapters at module level, data.archive imports cache, and
    notebook imports plots inside a function; home imports only the package's __version__."""
    assert {"companion.pages.chapters", "companion.core.cache", "companion.data"} <= GRAPH["companion.pages.cli"]
    assert "companion.core.cache" in GRAPH["companion.data.archive"]
    assert "companion.core.plots" in GRAPH["companion.pages.notebook"]
    assert GRAPH["companion.pages.home"] == {"companion"}


def _placed(module: str) -> bool:
    try:
        _layer_of(module)
    except LookupError:
        return False
    return True


def test_every_module_is_in_one_layer():
    groups = [group for _, members in LAYERS for group in members]
    assert len(groups) == len(set(groups)), "a group is in two layers"
    unplaced = [module for module in MODULES if not _placed(module)]
    assert not unplaced, f"in no layer of tests/test_layering.py's LAYERS: {', '.join(unplaced)}: add each to the " \
                         f"layer of what it imports, below everything that imports it"


def test_nothing_imports_a_higher_layer():
    """Among the modules placed in a layer (the test above fails for the others)."""
    upward = [f"{module} ({LAYERS[_layer_of(module)][0]}) imports {target} ({LAYERS[_layer_of(target)][0]})"
              for module, targets in GRAPH.items() if _placed(module) for target in sorted(targets)
              if _placed(target) and _layer_of(target) > _layer_of(module)]
    assert not upward, "upward imports:\n  " + "\n  ".join(upward)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm), each sorted."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle():
    # a -> b -> c -> a is one cycle; d only imports into it.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_there_is_no_import_cycle():
    cycles = _cycles(GRAPH)
    assert not cycles, "modules that import each other, directly or through others: " + "; ".join(
        " <-> ".join(cycle) for cycle in cycles)


# --- Import-time side effects -----------------------------------------------------------------------------------


def test_importing_plots_leaves_matplotlib_settings_unchanged():
    """In a fresh interpreter, so that no earlier import or figure of this session hides a change."""
    script = ("import matplotlib\n"
              "before = {k: repr(v) for k, v in matplotlib.rcParams.items()}\n"
              "import companion.core.plots\n"
              "after = {k: repr(v) for k, v in matplotlib.rcParams.items()}\n"
              "print(sorted(k for k in before if before[k] != after[k]))\n")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == "[]"


def test_a_figure_is_drawn_in_the_book_style_and_the_settings_stay_as_they_were():
    import matplotlib
    import matplotlib.pyplot as plt

    from companion.core import plots

    before = {k: repr(v) for k, v in matplotlib.rcParams.items()}
    fig = plots.trainable_weights_curve([0, 10, 20], [4, 2, 0], {"the tutorial's cut": 10}, "title")
    assert {k: repr(v) for k, v in matplotlib.rcParams.items()} == before
    plots.png(fig)  # drawn outside the style: what the style set at drawing time must hold all the same
    ax = fig.axes[0]
    # From assets/book.mplstyle: 7.2 x 3.4 inches, tick labels 9 points, no top spine, constrained layout.
    # matplotlib's defaults differ in each (6.4 x 4.8, 10 points ("medium"), a top spine, no layout engine).
    assert tuple(fig.get_size_inches()) == pytest.approx((7.2, 3.4))
    assert {label.get_fontsize() for label in ax.get_xticklabels()} == {9.0}
    assert not ax.spines["top"].get_visible()
    assert type(fig.get_layout_engine()).__name__ == "ConstrainedLayoutEngine"
    plt.close(fig)
