"""Walking a model's layers at any depth: nested models, the layers a custom layer holds as attributes, each shared
layer once; and what kind of layer each is.

The kinds are read from the class's ancestry by name (a class called ``BatchNormalization`` or ``Dropout`` among
its bases), so this module runs under any Keras, Keras 3 on any backend and tf-keras alike, without importing it.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class LayerList:
    """Lets a probe walk loose layers as if they were a model."""

    layers: list


def children(layer) -> list:
    """The layers directly inside ``layer``: a model's layers and the sublayers a custom layer holds as attributes.

    Keras 3 and tf-keras both track them in the private ``_flatten_layers`` (no public method reaches the layers a
    custom layer holds); a :class:`LayerList` has only ``layers``.
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
    the remedy (:func:`companion.flags.remedy.freeze_batch_norm`) reaches too."""
    return [child for _, child in walk_layers(layer)]


def is_a(layer, class_name: str) -> bool:
    """Whether ``layer``'s class is, or derives from, a class called ``class_name`` (Keras 3 or tf-keras)."""
    return any(cls.__name__ == class_name for cls in type(layer).__mro__)


def is_batch_norm(layer) -> bool:
    return is_a(layer, "BatchNormalization")


def is_dropout(layer) -> bool:
    return is_a(layer, "Dropout")


def batch_norm_layers(model) -> list:
    """Every BatchNormalization layer inside ``model``, at any depth."""
    return [layer for layer in iter_layers(model) if is_batch_norm(layer)]
