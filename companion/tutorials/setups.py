"""What a recipe becomes under a profile: its base, weights, input size, data and epochs (a :class:`Setup`).

- ``offline`` and ``smoke``: the recipe's own architecture with the packaged pretrained weights
  (:mod:`companion.tutorials.backbones`) on the shared ``cats_and_dogs_filtered`` images; ``smoke`` at small inputs on a
  subset, ``offline`` at the recipe's own input size, on all of them or on the profile's subset
  (:meth:`companion.core.profiles.Profile.images_for`).
- ``full``: the recipe's own dataset, input size and epochs, with Keras' ImageNet weights.

Where a profile does not run a recipe's own epochs, the setup says which it runs and why (:attr:`Setup.epochs_note`),
and the pages show it.
"""

from __future__ import annotations

import dataclasses

from companion.core.profiles import Profile
from companion.tutorials import backbones, recipes
from companion.tutorials.recipes import Recipe


@dataclasses.dataclass(frozen=True)
class Setup:
    recipe: Recipe
    profile: str
    weights: str  # "packaged" or "imagenet"
    architecture: str
    image_size: int
    dataset: recipes.Dataset
    images_per_class: int | None  # of cats_and_dogs_filtered; None: all
    phase1_epochs: int
    phase2_epochs: int
    epochs_note: str  # why the epochs are not the recipe's own ("" when they are)

    @property
    def weights_label(self) -> str:
        """What the base's weights are: every page that shows this run's accuracies carries it."""
        if self.weights == "packaged":
            return backbones.label(self.architecture)
        return f"{self.architecture} base: Keras' ImageNet weights (`weights=\"imagenet\"`)."

    @property
    def weights_name(self) -> str:
        """The weights in a few words, for a table's row (the page's weights line, :attr:`weights_label`, says what
        they are)."""
        if self.weights == "packaged":
            w = backbones.PACKAGED[self.architecture]
            return f"packaged ({w.distribution} {w.version}), not Keras' ImageNet weights"
        return "Keras' ImageNet weights"

    @property
    def epochs_text(self) -> str:
        own = (self.recipe.phase1_epochs, self.recipe.phase2_epochs)
        text = f"{self.phase1_epochs} + {self.phase2_epochs}"
        if (self.phase1_epochs, self.phase2_epochs) == own:
            return f"{text} (the recipe's own)"
        return f"{text} instead of the recipe's {own[0]} + {own[1]}: {self.epochs_note}"

    def rows(self) -> list[tuple[str, str]]:
        subset = "all images" if self.images_per_class is None else f"{self.images_per_class} images per class and split"
        data_text = str(self.dataset) + ("" if self.dataset.tfds else f", {subset}")
        return [("profile", self.profile), ("data", data_text), ("weights", self.weights_name),
                ("image size", f"{self.image_size} x {self.image_size}"), ("epochs", self.epochs_text)]


def setup(recipe: Recipe, profile: Profile, dataset: recipes.Dataset | None = None) -> Setup:
    """What ``recipe`` runs as under ``profile`` (on ``dataset`` instead of the profile's choice, if given)."""
    chosen = profile.epochs_for(recipe)
    phase1, phase2 = (chosen.phase1, chosen.fine_tuning) if chosen else (recipe.phase1_epochs, recipe.phase2_epochs)
    dataset = dataset or (recipe.dataset if profile.recipe_data else recipes.SHARED_DATASET)
    return Setup(recipe, profile.name, profile.weights, recipe.architecture, profile.image_size(recipe.architecture),
                 dataset, profile.images_for(recipe), phase1, phase2, chosen.why if chosen else "")


def load_base(s: Setup):
    """A fresh copy of the setup's pretrained base."""
    return backbones.load(s.weights, s.architecture, s.image_size)
