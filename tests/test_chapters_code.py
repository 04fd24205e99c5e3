"""The tutorial chapters' Keras: the cells each tutorial page shows are the code that runs, they build the recipe's
model (:func:`companion.tutorials.recipe_models.build`, which the runner and the experiment train), and a changed
line in a chapter changes what the chapter measures.

The chapters' cells are executed here as the notebook runs them, with a real :class:`companion.pages.tutorial.Page`
around them, on a few real images (80 per class, one epoch per phase).
"""

import dataclasses

import nbformat
import pytest
from conftest import BOOK
from data_fixtures import real_data_root

from companion.checks import ways
from companion.core import profiles
from companion.core.variants import versions
from companion.flags import walk
from companion.flags.remedy import freeze_batch_norm
from companion.pages import notebook, tutorial
from companion.tutorials import recipe_models, recipes, setups

PAGES = {"mobilenet_v2_2019": "MobileNetV2 2019", "mobilenet_v2_2020": "MobileNetV2 2020",
         "keras_guide_xception_2020": "Xception 2020"}
# 160 training images (5 batches) and 160 validation images (a test batch of 32, the rest validation).
# One target per stage for the 2020 recipe, so that the page's judging of them runs.
TINY = dataclasses.replace(profiles.get("smoke"), name="smoke", images_per_class=80, early_batches=(2,),
                           epochs=(("*", profiles.Epochs(1, 1, "a test of the chapters' cells")),),
                           targets=(profiles.Target("MobileNetV2 2020", "phase 1", 0.5, "a tiny phase 1"),
                                    profiles.Target("MobileNetV2 2020", "fine-tuned with the remedy", 0.02, "bar")))


def _training_cells(name: str) -> list[str]:
    """The code cells from the one that makes the page's ``tutorial.Page`` (not included) to the one that asks for
    its result (included): the tutorial's Keras and the measuring around it."""
    cells = [c.source for c in nbformat.read(BOOK / f"{name}.ipynb", 4).cells if c.cell_type == "code"]
    start = next(i for i, s in enumerate(cells) if "tutorial.Page(" in s)
    end = next(i for i, s in enumerate(cells) if "page.result()" in s)
    return cells[start + 1:end + 1]


def _execute(name: str, cells: list[str], keras) -> dict:
    """Run ``cells`` as the chapter does after its set-up cell, and return the namespace they leave."""
    real_data_root()
    run = notebook.Run(profile=TINY, seed=0, versions=versions(), profile_source="test")
    namespace = {"keras": keras, "ways": ways, "freeze_batch_norm": freeze_batch_norm, "recipes": recipes, "seed": 0,
                 "page": tutorial.Page(PAGES[name], run)}
    for source in cells:
        exec(compile(source, f"<{name}>", "exec"), namespace)
    return namespace


def _bn_in(layers) -> int:
    """BatchNormalization layers among ``layers`` and inside them, at any depth."""
    return sum(walk.is_batch_norm(layer) for top in layers for layer in [top, *walk.iter_layers(top)])


def _signature(layer) -> tuple:
    """What makes a layer the same layer for a tutorial's model: its class and the arguments the recipes vary."""
    config = layer.get_config()
    keys = ("rate", "factor", "mode", "scale", "offset", "units")
    return (type(layer).__name__, *(str(config[k]) for k in keys if k in config))


def _structure(model, base) -> list[tuple]:
    """The model's layers in order, the base as one entry, containers (an augmentation Sequential) opened."""
    found = []

    def visit(layer):
        for child in walk.children(layer):
            if child is base:
                found.append(("base",))
            elif walk.children(child):
                visit(child)
            elif type(child).__name__ != "InputLayer":
                found.append(_signature(child))

    visit(model)
    return found


@pytest.mark.parametrize("name", PAGES)
def test_each_tutorial_page_builds_the_recipes_model(name, keras):
    cells = _training_cells(name)
    model_cells = cells[:next(i for i, s in enumerate(cells) if "page.phase1(" in s)]
    ran = _execute(name, model_cells, keras)
    page, base = ran["page"], ran["base_model"]
    reference_base = setups.load_base(page.setup)
    reference = recipe_models.build(page.recipe, reference_base, page.setup.image_size)
    assert _structure(ran["model"], base) == _structure(reference.model, reference_base)
    assert not any(layer.trainable for layer in base.layers)  # frozen for phase 1


def test_the_2020_page_measures_every_way_and_follows_a_changed_line(keras):
    """The 2020 page's cells, run with one shown line changed (layers from 120 on unfrozen instead of 100): its
    measurements follow the changed line, so the Keras shown is the Keras that ran. (nbval runs every page as it
    stands.)"""
    cells = _training_cells("mobilenet_v2_2020")
    (index,) = [i for i, s in enumerate(cells) if "fine_tune_at = 100\n" in s]
    cells[index] = cells[index].replace("fine_tune_at = 100\n", "fine_tune_at = 120\n")
    ran = _execute("mobilenet_v2_2020", cells, keras)
    recipe, page, base, result = recipes.MOBILENET_V2_2020, ran["page"], ran["base_model"], ran["result"]

    # Every way of fine-tuning the recipe has, each measured; the BN layers left trainable counted by hand: those
    # from layer 120 of the base on (not 100, the recipe's), and none with the remedy.
    assert list(result.fine_tuning) == list(recipes.ways_compared(recipe)) == [ways.TRAINING_FALSE,
                                                                                ways.REMEDY_TRAINING_FALSE]
    trainable = result.fine_tuning[ways.TRAINING_FALSE].bn_layers_trainable
    assert trainable == _bn_in(base.layers[120:]) and trainable != _bn_in(base.layers[recipe.fine_tune_at:])
    assert result.fine_tuning[ways.REMEDY_TRAINING_FALSE].bn_layers_trainable == 0
    assert len(result.fine_tuning[ways.REMEDY_TRAINING_FALSE].bn_layers) == _bn_in(base.layers)
    for way, tuned in result.fine_tuning.items():
        assert [p.batches for p in tuned.early] == [2] and 0 <= tuned.validation_accuracy <= 1
        assert tuned.way == way

    # Each target held to the tutorial's published number for its stage (0.94 after phase 1, 0.98 fine-tuned), with
    # what the page measured there.
    phase1, tuned = page.targets(result)
    assert (phase1.measured, phase1.published) == (result.phase1.validation_accuracy, 0.94)
    remedy = result.fine_tuning[ways.REMEDY_TRAINING_FALSE]
    assert (tuned.measured, tuned.published) == (remedy.validation_accuracy, 0.98)
    assert phase1.met == (phase1.measured >= 0.44 - 1e-9) and tuned.met == (tuned.measured >= 0.96 - 1e-9)
    header = page.accuracy_table(result).header
    assert header[-2:] == ["target: at least (validation)", "published (validation)"]

    # The last compile is the recipe's phase 2.
    optimizer = ran["model"].optimizer
    assert type(optimizer).__name__ == recipe.phase2_optimizer.name
    assert float(optimizer.learning_rate) == pytest.approx(recipe.phase2_optimizer.learning_rate)
    # Phase 1's weights are what the experiment fine-tunes from: the base's arrays, then the Dense head's.
    assert len(page.trained_phase1.base_weights) == len(base.get_weights())
    assert [w.shape for w in page.trained_phase1.head_weights] == [(1280, 1), (1,)]


def test_no_tutorial_page_shares_a_code_cell_with_both_others_and_each_fits_compiles_and_freezes():
    # The code a reader sees: hidden cells (parameters, set-up, display calls such as the weights note) are plumbing.
    hidden = {"parameters", "remove-cell", "remove-input"}
    sources = {name: [c.source for c in nbformat.read(BOOK / f"{name}.ipynb", 4).cells if c.cell_type == "code"
                      and not hidden & set(c.metadata.get("tags", []))]
               for name in PAGES}
    shared = set.intersection(*(set(cells) for cells in sources.values()))
    assert not shared, f"code cells the same on all three tutorial pages: {sorted(shared)}"
    for name, cells in sources.items():
        code = "\n".join(cells)
        assert ".fit(" in code and ".compile(" in code and ".trainable" in code, name
