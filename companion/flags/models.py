"""The tutorials' models, built in one place: walking layers, the transfer model, a recipe's model, unfreezing, and
the remedy.

This is the low floor of the companion: :mod:`companion.suite.facts`, the training runs and the benchmark build their
models here, so a training run flows down (recipe -> model -> Keras) instead of back and forth. Everything runs
under whichever Keras this process has (:func:`companion.core.variants.load_keras`).
"""

from __future__ import annotations

import dataclasses

from companion.checks import decisive
from companion.core.variants import load_keras
from companion.tutorials import recipes
from companion.tutorials.recipes import Recipe

# --- Walking a model's layers ------------------------------------------------------------------------------------


@dataclasses.dataclass
class LayerList:
    """Lets a probe walk loose layers as if they were a model."""

    layers: list


def children(layer) -> list:
    """The layers directly inside ``layer``: a model's layers and the sublayers a custom layer holds as attributes.

    Keras 3 and tf_keras both track them in ``_flatten_layers``; a :class:`LayerList` has only ``layers``.
    """
    flatten = getattr(layer, "_flatten_layers", None)
    if flatten is not None:
        return list(flatten(include_self=False, recursive=False))
    return list(getattr(layer, "layers", []))


def walk_layers(root) -> list[tuple[str, object]]:
    """Every layer reachable from ``root`` (not ``root`` itself), depth first, each once, with its path.

    The path joins the names from ``root`` down (``"block/bn"``); a layer shared between sub-models keeps the
    path where the walk meets it first.
    """
    result: list[tuple[str, object]] = []
    seen: set[int] = set()

    def visit(layer, prefix: str) -> None:
        for child in children(layer):
            if id(child) in seen:
                continue
            seen.add(id(child))
            path = f"{prefix}{child.name}"
            result.append((path, child))
            visit(child, path + "/")

    visit(root, "")
    return result


def iter_layers(layer) -> list:
    """Every layer inside ``layer`` (not ``layer`` itself) at any depth, each once (:func:`walk_layers`): the layers
    the remedy (:func:`companion.checks.decisive.freeze_batch_norm`) reaches too."""
    return [child for _, child in walk_layers(layer)]


def is_batch_norm(layer) -> bool:
    return isinstance(layer, load_keras().layers.BatchNormalization)


def is_dropout(layer) -> bool:
    return isinstance(layer, load_keras().layers.Dropout)


def batch_norm_layers(model) -> list:
    """Every BatchNormalization layer inside ``model``, at any depth."""
    return [layer for layer in iter_layers(model) if is_batch_norm(layer)]


# --- The tutorials' fine-tuning steps ---------------------------------------------------------------------------


def unfreeze(base, fine_tune_at: int) -> None:
    """The tutorials' fine-tuning step: unfreeze the base, then refreeze ``layers[:fine_tune_at]``."""
    base.trainable = True
    for layer in base.layers[:fine_tune_at]:
        layer.trainable = False


class UnreachableBatchNormError(ValueError):
    """A model holds BatchNormalization statistics that the remedy did not reach and freeze."""


# The names Keras gives a BatchNormalization layer's moving statistics (tf-keras adds a scope and ":0").
STATISTICS = ("moving_mean", "moving_variance")


def _variable_name(variable) -> str:
    return getattr(variable, "path", variable.name).split(":")[0]


def freeze_batch_norm(model) -> list:
    """The remedy (:func:`companion.checks.decisive.freeze_batch_norm`) applied to ``model``: returns the layers it froze.

    Raises :class:`UnreachableBatchNormError` when ``model`` holds moving statistics that no frozen layer owns
    (e.g. a hand-written normalization layer that is not a ``BatchNormalization``): they would move during ``fit``.
    """
    frozen = decisive.freeze_batch_norm(load_keras(), model)
    kept = {id(v) for layer in frozen if not layer.trainable for v in (layer.moving_mean, layer.moving_variance)}
    missed = [_variable_name(v) for v in model.weights
              if _variable_name(v).split("/")[-1] in STATISTICS and id(v) not in kept]
    if missed:
        raise UnreachableBatchNormError(
            f"{model.name}: the remedy did not reach and freeze {len(missed)} BatchNormalization statistics "
            f"({', '.join(missed)}); set trainable = False on the layers that own them before fine-tuning")
    return frozen


def prepare_fine_tuning(recipe: Recipe, base) -> None:
    """A recipe's phase-2 step: unfreeze, refreeze ``layers[:fine_tune_at]``, and the remedy if it has it."""
    unfreeze(base, recipe.fine_tune_at)
    if recipe.freeze_batch_norm:
        freeze_batch_norm(base)


# --- Models -----------------------------------------------------------------------------------------------------


def transfer_model(base, base_training: bool | None = False, dropout: float = 0.5, pool: bool = False):
    """``Input -> base(x, training=base_training) -> [GAP] -> Dropout -> Dense(1)``, as in the tutorials."""
    keras = load_keras()
    inputs = keras.Input(base.input_shape[1:])
    h = base(inputs) if base_training is None else base(inputs, training=base_training)
    if pool:
        h = keras.layers.GlobalAveragePooling2D(name="head_pool")(h)
    h = keras.layers.Dropout(dropout, name="head_dropout")(h)
    outputs = keras.layers.Dense(1, name="head_dense")(h)
    return keras.Model(inputs, outputs, name="transfer")


@dataclasses.dataclass
class TutorialModel:
    model: object
    base: object
    head: object  # the Dense(1) layer


def build_recipe_model(recipe: Recipe, base, image_size: int) -> TutorialModel:
    """The tutorial's model around ``base``: augmentation, scaling, the base (called as the recipe says), head."""
    keras = load_keras()
    dense = keras.layers.Dense(1, name="head_dense")
    if recipe.model_style == "Sequential":
        if recipe.augmentation or recipe.preprocessing != recipes.Preprocessing.SCALE_IN_PIPELINE or recipe.base_training is not None:
            raise ValueError(f"{recipe.name}: a Sequential model takes scaled images and calls the base without "
                             "a training argument; make the recipe functional")
        layers = [keras.Input((image_size, image_size, 3)), base, keras.layers.GlobalAveragePooling2D(name="head_pool")]
        layers += [keras.layers.Dropout(recipe.dropout, name="head_dropout")] if recipe.dropout else []
        return TutorialModel(keras.Sequential([*layers, dense], name="tutorial"), base, dense)
    inputs = keras.Input((image_size, image_size, 3))
    x = inputs
    for layer in recipe.augmentation:
        x = getattr(keras.layers, layer.name)(*layer.args)(x)
    if recipe.preprocessing == recipes.Preprocessing.PREPROCESS_INPUT:
        x = keras.applications.mobilenet_v2.preprocess_input(x)
    elif recipe.preprocessing == recipes.Preprocessing.RESCALING:
        x = keras.layers.Rescaling(1 / 127.5, offset=-1)(x)
    x = base(x) if recipe.base_training is None else base(x, training=recipe.base_training)
    x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
    if recipe.dropout:
        x = keras.layers.Dropout(recipe.dropout, name="head_dropout")(x)
    return TutorialModel(keras.Model(inputs, dense(x), name="tutorial"), base, dense)


def compile_phase(recipe: Recipe, model, optimizer: recipes.Optimizer, run_eagerly: bool = False) -> None:
    """Compile ``model`` as the recipe does for one phase (loss on logits, accuracy at the recipe's threshold)."""
    keras = load_keras()
    arguments = {} if optimizer.learning_rate is None else {"learning_rate": optimizer.learning_rate}
    model.compile(
        optimizer=getattr(keras.optimizers, optimizer.name)(**arguments),
        loss=keras.losses.BinaryCrossentropy(from_logits=recipe.loss_from_logits),
        metrics=[keras.metrics.BinaryAccuracy(threshold=recipe.accuracy_threshold, name="accuracy")],
        run_eagerly=run_eagerly,
    )


def scale_in_pipeline(recipe: Recipe, images):
    """The 2019 recipe scales pixels in the input pipeline; the others leave it to the model."""
    return images / 127.5 - 1.0 if recipe.preprocessing == recipes.Preprocessing.SCALE_IN_PIPELINE else images


def scalings(images):
    """The three tutorials' ways of scaling pixels, applied to the same ``images`` (float32 in [0, 255])."""
    import numpy as np

    keras = load_keras()
    return {
        recipes.Preprocessing.SCALE_IN_PIPELINE: images / 127.5 - 1.0,
        recipes.Preprocessing.PREPROCESS_INPUT: np.asarray(keras.applications.mobilenet_v2.preprocess_input(images.copy())),
        recipes.Preprocessing.RESCALING: np.asarray(keras.layers.Rescaling(1 / 127.5, offset=-1)(images)),
    }
