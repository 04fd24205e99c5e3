"""The remedy, defined once: the function the checks run, ``companion check`` prints and the book shows, for a
reader to copy into a project that does not install the companion (it needs nothing but Keras).
"""

from __future__ import annotations


def freeze_batch_norm(model):
    """After unfreezing (``base.trainable = True``), set ``trainable = False`` on every BatchNormalization layer inside
    ``model`` (the base, or the whole model), at any depth: nested models, the layers a custom layer holds, a shared
    layer once. Compile after it. Returns the layers it froze.

    Changes nothing and raises ``ValueError`` where ``model`` holds statistics this cannot freeze, which ``fit``
    would then move: a layer with ``moving_mean`` and ``moving_variance`` that is not a BatchNormalization, or a
    BatchNormalization that Keras does not track (held in a plain Python object).
    """
    def is_batch_norm(layer):  # by the class's ancestry: Keras 3 and tf-keras alike
        return any(cls.__name__ == "BatchNormalization" for cls in type(layer).__mro__)

    def layers_in(obj, depth=3):  # layers held in plain Python objects, not Keras' (or a backend's) own
        if isinstance(obj, (list, tuple, set)):
            items = list(obj)
        elif isinstance(obj, dict):
            items = list(obj.values())
        elif hasattr(obj, "__dict__") and type(obj).__module__.split(".")[0] not in (
                "keras", "tf_keras", "tensorflow", "jax", "jaxlib", "torch", "numpy", "builtins", "keras_hub"):
            items = list(vars(obj).values())
        else:
            return []
        return [item for item in items if hasattr(item, "_flatten_layers")] + [
            layer for item in items if depth > 1 and not hasattr(item, "_flatten_layers")
            for layer in layers_in(item, depth - 1)]

    # `model.layers` stops at the first level; Keras' private `_flatten_layers` walks every layer Keras tracks
    # (Keras 3 and tf-keras alike): no public method reaches the layers a custom layer holds.
    tracked = list(model._flatten_layers(include_self=True, recursive=True))
    known = {id(layer) for layer in tracked}
    problems = [f"{layer.name} ({type(layer).__name__}) has moving statistics but is not a BatchNormalization"
                for layer in tracked if not is_batch_norm(layer)
                and hasattr(layer, "moving_mean") and hasattr(layer, "moving_variance")]
    for holder in tracked:
        for value in vars(holder).values():
            for held in layers_in(value) if not hasattr(value, "_flatten_layers") else []:
                problems += [f"{layer.name} is held by {holder.name} where Keras does not track it"
                             for layer in held._flatten_layers(include_self=True, recursive=True)
                             if is_batch_norm(layer) and id(layer) not in known]
    if problems:
        raise ValueError(f"{model.name}: freeze_batch_norm cannot freeze every BatchNormalization statistic, so "
                         f"fit would move some ({'; '.join(dict.fromkeys(problems))}). Make them BatchNormalization "
                         "layers assigned to a layer's attributes (or its lists and dicts), or set their "
                         "trainable = False yourself.")
    frozen = [layer for layer in tracked if is_batch_norm(layer)]
    for layer in frozen:
        layer.trainable = False
    return frozen
