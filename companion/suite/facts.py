"""The executed checks behind the book's claims about ``training`` and ``trainable`` on models: a small base
fine-tuned, the tutorials' architectures fine-tuned, the base's call in each recipe. One layer's behaviour is in
:mod:`companion.suite.layer_facts`.

Each check builds small real Keras models, runs a probe (:mod:`companion.flags.probes`) and returns what it
measured. Nothing here states an expected answer: the chapters print the measurements, and nbval compares
them with the committed outputs, so a change in Keras' behaviour fails CI.

The checks run under whichever Keras this process has (:func:`companion.core.variants.load_keras`), so the same
suite yields one column of the version matrix per variant (:mod:`companion.versions.matrix`).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from companion.core.profiles import Profile
from companion.core.variants import load_keras
from companion.flags import models, probes
from companion.flags.models import freeze_batch_norm, transfer_model, unfreeze
from companion.suite.layer_facts import binary_compile, random_images, seeded_generator
from companion.tutorials import backbones, recipes


def small_base(name="base", with_dropout: bool = True):
    """A tiny stand-in for a pretrained base: Conv2D -> BatchNormalization -> Dropout -> GlobalAveragePooling2D.

    The Dropout inside shows whether a ``training`` value given to the base reaches the base's own layers.
    """
    keras = load_keras()
    inputs = keras.Input((8, 8, 3))
    h = keras.layers.Conv2D(4, 3, name=f"{name}_conv")(inputs)
    h = keras.layers.BatchNormalization(name=f"{name}_bn")(h)
    if with_dropout:
        h = keras.layers.Dropout(0.5, name=f"{name}_dropout")(h)
    h = keras.layers.GlobalAveragePooling2D(name=f"{name}_pool")(h)
    return keras.Model(inputs, h, name=name)


def fine_tune_small(base_training: bool | None, remedy: bool, profile: Profile, seed: int = 0,
                    base_trainable: bool = True):
    """Put the small base in a transfer model, unfreeze it (or not), optionally apply the remedy, ``fit``,
    and probe."""
    load_keras().utils.set_random_seed(seed)
    base = small_base()
    model = transfer_model(base, base_training)
    base.trainable = base_trainable
    if remedy:
        freeze_batch_norm(base)
    binary_compile(model)
    x, y = random_images(profile.probe_steps * profile.probe_batch_size, seed=seed)
    return probes.observe(model, probes.fit(model, x, y, profile.probe_steps, profile.probe_batch_size))


def base_kernels_changed(report: probes.ProbeReport) -> bool:
    """Did any kernel or bias outside the head change?"""
    return any(not v.layer.startswith("head_") for v in report.changed(probes.KERNELS))


def inference_updates_batch_norm(seed: int = 0) -> dict[str, bool]:
    """``predict`` and ``evaluate`` with no ``training`` argument: do they move BN's moving statistics?"""
    keras = load_keras()
    keras.utils.set_random_seed(seed)
    model = transfer_model(small_base(), base_training=None)
    binary_compile(model)
    x, y = random_images(16, seed=seed)
    return {
        "predict": bool(probes.observe(model, lambda: model.predict(x, verbose=0)).changed(probes.BN_MOVING)),
        "evaluate": bool(probes.observe(model, lambda: model.evaluate(x, y, verbose=0)).changed(probes.BN_MOVING)),
    }


def forced_dropout_drops_in_predict(seed: int = 0) -> bool:
    """``Dropout(0.5)(x, training=True)`` inside a functional model: does it drop during ``predict``?

    The Keras FAQ says a layer called with ``training=True`` applies dropout "at training time *and* inference
    time".
    """
    keras = load_keras()
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((1000,))
    outputs = keras.layers.Dropout(0.5, name="forced_dropout")(inputs, training=True)
    model = keras.Model(inputs, outputs)
    out = np.asarray(model.predict(np.ones((4, 1000), dtype="float32"), verbose=0))
    return bool(np.any(out == 0))


def dropout_after_base_active(base_training: bool | None = False, seed: int = 0) -> bool:
    """Call the transfer model with ``training=True``: does the Dropout after the base drop anything?

    Measured from outputs: with dropout active, two ``training=True`` calls differ from the inference output.
    """
    keras = load_keras()
    keras.utils.set_random_seed(seed)
    # No Dropout inside the base, and a frozen base (its BN in inference mode): only the head can differ.
    base = small_base(with_dropout=False)
    model = transfer_model(base, base_training, dropout=0.5)
    base.trainable = False
    x, _ = random_images(8, seed=seed)
    inference = np.asarray(model(x, training=False))
    return any(not np.allclose(np.asarray(model(x, training=True)), inference) for _ in range(2))


# --- The tutorials' architectures ------------------------------------------------------------------------------

# The tutorial whose fine-tuning each architecture's checks follow (fine_tune_at: layers before it stay frozen).
ARCHITECTURE_RECIPES = {"MobileNetV2": recipes.MOBILENET_V2_2020, "Xception": recipes.XCEPTION_2020}


def architecture_base(architecture: str, profile: Profile, weights: str = "packaged"):
    """The tutorial's base at the profile's input size: the packaged pretrained weights by default (which variables
    change does not depend on the weights, but pretrained BatchNormalization statistics make the run realistic)."""
    return backbones.load(weights, architecture, profile.image_size(architecture))


@dataclasses.dataclass(frozen=True)
class FineTuneObservation:
    architecture: str
    variant_of_recipe: str
    bn_layers: int
    bn_layers_unfrozen: int
    bn_layers_moved: int
    bn_layers_affine_updated: int
    kernels_updated: int
    kernels_unfrozen: int
    head_dropout_training: bool | None
    report: probes.ProbeReport


def fine_tune_architecture(
    architecture: str, profile: Profile, base_training: bool | None = False, remedy: bool = False, seed: int = 0
) -> FineTuneObservation:
    """Fine-tune the tutorial model (``base(x, training=...)`` -> GAP -> Dropout(0.2) -> Dense(1)) on the
    architecture with its packaged pretrained weights for a few ``fit`` steps, and count what changed."""
    keras = load_keras()
    keras.utils.set_random_seed(seed)
    base = architecture_base(architecture, profile)
    size = base.input_shape[1]
    n = profile.probe_steps * profile.probe_batch_size
    rng = seeded_generator(seed)
    x = rng.uniform(-1, 1, size=(n, size, size, 3)).astype("float32")
    y = rng.integers(0, 2, size=(n, 1)).astype("float32")
    model = transfer_model(base, base_training, dropout=0.2, pool=True)
    label = "remedy: BN frozen" if remedy else f"base(x, training={base_training})"
    fine_tune_at = ARCHITECTURE_RECIPES[architecture].fine_tune_at
    return probe_fine_tuning(model, base, fine_tune_at, remedy, x, y, profile, architecture, label)


def probe_fine_tuning(model, base, fine_tune_at: int, freeze_bn: bool, x, y, profile: Profile,
                      architecture: str, label: str) -> FineTuneObservation:
    """The tutorials' fine-tuning step on ``model`` (which contains ``base``), probed over a few ``fit`` steps.

    Unfreezes the base except ``layers[:fine_tune_at]``, optionally freezes every BN layer (the remedy), compiles
    with ``RMSprop(1e-5)`` as the MobileNetV2 tutorial does, fits ``x, y`` and counts what changed in the base.
    """
    keras = load_keras()
    unfreeze(base, fine_tune_at)
    if freeze_bn:
        freeze_batch_norm(base)
    bn = models.batch_norm_layers(base)
    model.compile(
        optimizer=keras.optimizers.RMSprop(1e-5),
        loss=keras.losses.BinaryCrossentropy(from_logits=True),
    )
    unfrozen_kernels = sum(
        1 for layer in base.layers if layer.trainable and not models.is_batch_norm(layer)
        for _ in layer.trainable_weights
    )
    report = probes.observe(model, probes.fit(model, x, y, profile.probe_steps, profile.probe_batch_size))
    base_layers = {layer.name for layer in base.layers}
    base_kernels = [v for v in report.changed(probes.KERNELS) if v.layer in base_layers]
    head_dropout = next((name for name, kind in report.layer_kinds.items()
                         if kind == "Dropout" and name not in base_layers), None)
    return FineTuneObservation(
        architecture=architecture,
        variant_of_recipe=label,
        bn_layers=len(bn),
        bn_layers_unfrozen=sum(layer.trainable for layer in bn),
        bn_layers_moved=len([name for name in report.changed_layers(probes.BN_MOVING) if name in base_layers]),
        bn_layers_affine_updated=len([n for n in report.changed_layers(probes.BN_AFFINE) if n in base_layers]),
        kernels_updated=len(base_kernels),
        kernels_unfrozen=unfrozen_kernels,
        head_dropout_training=report.ran_in_training_mode(head_dropout) if head_dropout else None,
        report=report,
    )


def trainable_variable_counts(architecture: str, profile: Profile) -> dict[str, int]:
    """How many variables backprop may change in the tutorial model as the base is frozen and unfrozen."""
    fine_tune_at = ARCHITECTURE_RECIPES[architecture].fine_tune_at
    base = architecture_base(architecture, profile, weights="random")
    model = transfer_model(base, False, dropout=0.2, pool=True)
    counts = {"layers in the base": len(base.layers)}
    base.trainable = False
    counts["base frozen: the base's own trainable weights"] = len(base.trainable_weights)
    counts["base frozen"] = len(model.trainable_weights)
    base.trainable = True
    counts["base unfrozen"] = len(model.trainable_weights)
    if fine_tune_at:
        unfreeze(base, fine_tune_at)
        counts[f"layers[:{fine_tune_at}] refrozen"] = len(model.trainable_weights)
    return counts


# --- Smaller facts the claims audit needs -----------------------------------------------------------------------


def fit_in_inference_mode(profile: Profile, seed: int = 0) -> probes.ProbeReport:
    """``fit`` a model whose unfrozen base runs in inference mode: the base is called with ``training=False`` from
    inside a custom layer's ``call``, where every Keras variant honours an explicit argument (unlike a fixed
    ``training`` recorded in a functional model, which Keras 3 releases override: see ``nested_override``).

    The report says which ``training`` value the base's BatchNormalization received and what ``fit`` changed, so a
    claim about "layers in inference mode" is tested on layers that were in inference mode."""
    keras = load_keras()
    keras.utils.set_random_seed(seed)

    class InferenceModeCall(keras.layers.Layer):
        """Calls the layer it wraps with ``training=False``, whatever mode the model runs in."""

        def __init__(self, inner, **kwargs):
            super().__init__(**kwargs)
            self.inner = inner

        def call(self, inputs):
            return self.inner(inputs, training=False)

    base = small_base()
    inputs = keras.Input((8, 8, 3))
    h = InferenceModeCall(base, name="inference_mode_call")(inputs)
    h = keras.layers.Dropout(0.5, name="head_dropout")(h)
    model = keras.Model(inputs, keras.layers.Dense(1, name="head_dense")(h), name="transfer")
    binary_compile(model)
    x, y = random_images(profile.probe_steps * profile.probe_batch_size, seed=seed)
    return probes.observe(model, probes.fit(model, x, y, profile.probe_steps, profile.probe_batch_size))


def base_updates(report: probes.ProbeReport) -> dict[str, bool]:
    """What a probed ``fit`` changed outside the head: BN statistics, BN gamma/beta, kernels and biases."""
    def changed(kind):
        return any(not v.layer.startswith("head_") for v in report.changed(kind))

    return {"statistics": changed(probes.BN_MOVING), "affine": changed(probes.BN_AFFINE),
            "kernels": changed(probes.KERNELS)}


def frozen_base_predict_mode(seed: int = 0):
    """``base.trainable = False``, the model built as ``base(x)``, then ``predict``: the ``training`` value the base's
    BatchNormalization received."""
    keras = load_keras()
    keras.utils.set_random_seed(seed)
    base = small_base()
    model = transfer_model(base, None)
    base.trainable = False
    x, _ = random_images(8, seed=seed)
    return probes.observe(model, lambda: model.predict(x, verbose=0)).modes["base_bn"][0]


def _training_kwarg(nodes):
    """The ``training`` keyword recorded in a layer's inbound nodes (Keras 3 and tf_keras configs), else None."""
    if isinstance(nodes, dict):
        if "training" in nodes:
            return nodes["training"]
        return next((v for v in map(_training_kwarg, nodes.values()) if v is not None), None)
    if isinstance(nodes, (list, tuple)):
        return next((v for v in map(_training_kwarg, nodes) if v is not None), None)
    return None


def recipe_base_call(recipe) -> bool | None:
    """The ``training`` argument the recipe's model, as :func:`companion.flags.models.build_recipe_model` builds it, passes
    to its base, read from the saved model config (``None``: not passed)."""
    load_keras().utils.set_random_seed(0)
    size = 32
    keras = load_keras()
    inputs = keras.Input((size, size, 3))
    # A feature map, as a base without its top returns (the recipe's model pools it).
    base = keras.Model(inputs, keras.layers.BatchNormalization()(keras.layers.Conv2D(2, 3)(inputs)),
                       name="recipe_base")
    model = models.build_recipe_model(recipe, base, size).model
    layers = model.get_config()["layers"]
    (entry,) = [layer for layer in layers if layer.get("config", {}).get("name") == base.name
                or layer.get("name") == base.name]
    return _training_kwarg(entry.get("inbound_nodes", []))

