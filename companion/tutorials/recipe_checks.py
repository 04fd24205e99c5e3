"""What each tutorial's model passes its base, read from the model itself: the recipes transcribe the tutorials'
commits (:mod:`companion.tutorials.recipes`), and these checks read the ``training`` argument recorded in the saved
configuration of the model :func:`companion.tutorials.recipe_models.build` makes of each, in every column of the
matrix (the claims about the tutorials' calls rest on them).
"""

from __future__ import annotations

from companion.checks import evidence
from companion.checks.check import Check
from companion.tutorials import recipe_models, recipes


def _training_argument(nodes):
    """The ``training`` keyword recorded in a layer's inbound nodes (Keras 3 and tf-keras configs), else None."""
    if isinstance(nodes, dict):
        if "training" in nodes:
            return nodes["training"]
        return next((v for v in map(_training_argument, nodes.values()) if v is not None), None)
    if isinstance(nodes, (list, tuple)):
        return next((v for v in map(_training_argument, nodes) if v is not None), None)
    return None


def base_call(recipe: recipes.Recipe):
    """A scenario: the ``training`` argument ``recipe``'s model passes its base, read from the model's saved
    configuration (``Training.NONE``: not passed)."""

    def scenario(keras) -> evidence.Training:
        inputs = keras.Input((32, 32, 3))
        # A feature map, as a base without its top returns (the recipe's model pools it).
        base = keras.Model(inputs, keras.layers.BatchNormalization()(keras.layers.Conv2D(2, 3)(inputs)),
                           name="recipe_base")
        model = recipe_models.build(recipe, base, 32).model
        (entry,) = [layer for layer in model.get_config()["layers"]
                    if layer.get("config", {}).get("name") == base.name or layer.get("name") == base.name]
        return evidence.Training.of(_training_argument(entry.get("inbound_nodes", [])))

    return scenario


CALLS = {recipe: Check(f"tutorial_call_{recipe.name.lower().replace(' ', '_')}",
                       f"the {recipe.name} recipe's model: training argument it passes to the base",
                       base_call(recipe), short=f"{recipe.name}: training passed to the base")
         for recipe in recipes.RECIPES.values()}
CHECKS = tuple(CALLS.values())
