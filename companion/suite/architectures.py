"""The architecture checks: the decisive checks' questions (:mod:`companion.checks.decisive`) asked of the shapes of model
readers bring, beyond the tutorials' flat functional base.

Each check is a short function of plain Keras code in the decisive checks' style: it builds a base
(:mod:`companion.suite.architectures_models`: custom blocks, a real KerasHub backbone, ``keras.applications`` bases with
their own Dropout, a LayerNormalization-only base), puts the tutorials' head on it (or a subclassed model, or a
custom training loop), trains two steps and returns a typed value (:class:`companion.checks.evidence.BaseOutcome`, or
:class:`companion.checks.evidence.NotApplicable` where the check cannot run under this Keras). The remedy is the companion's
one remedy, :func:`companion.checks.decisive.freeze_batch_norm`. The ground truth is independent of it: the base's
BatchNormalization layers are found through its weights (every ``moving_mean`` variable, at any depth), their
statistics compared before and after, and the ``training`` value each Dropout received is recorded by wrapping its
``call`` (:func:`companion.checks.decisive.record_training`).

Statistics moving does not depend on pretrained weights, so random weights at small inputs suffice.
``python -m companion.suite.architectures`` prints one JSON line, as ``python -m companion.checks.questions`` does, with the
decisive checks' values and these: the release matrix (:mod:`companion.versions.releases`) runs it in its architecture
columns.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import warnings
from pathlib import Path

from companion.checks import decisive, evidence, questions
from companion.core.variants import load_keras
from companion.suite import architectures_models as models

# --- Measuring, through the base's weights --------------------------------------------------------------------------


def _unique(variables) -> list:
    """Each variable once (a shared layer lists its variables once per use)."""
    seen, kept = set(), []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            kept.append(variable)
    return kept


def _name(variable) -> str:
    """The variable's full name: its path on Keras 3, its name (scopes included) on tf-keras."""
    return getattr(variable, "path", None) or variable.name


def batch_norm_groups(base) -> list[dict]:
    """One dict per BatchNormalization layer in ``base``, at any depth: its ``statistics`` (moving mean and
    variance) and its ``affine`` (gamma and beta) variables, paired by the name they share up to the last part."""
    variables = _unique(base.weights)
    by_name = {_name(v): v for v in variables}
    groups = []
    for name in by_name:
        if "moving_mean" in name.rsplit("/", 1)[-1]:
            prefix, suffix = name.rsplit("moving_mean", 1)
            parts = {part: by_name.get(f"{prefix}{part}{suffix}") for part in ("moving_variance", "gamma", "beta")}
            groups.append({"statistics": [by_name[name], parts["moving_variance"]],
                           "affine": [v for v in (parts["gamma"], parts["beta"]) if v is not None]})
    return groups


def kernels(base) -> list:
    """The base's convolution and dense kernels (``kernel``, ``depthwise_kernel``), at any depth."""
    return [v for v in _unique(base.weights) if _name(v).rsplit("/", 1)[-1].split(":")[0] in
            ("kernel", "depthwise_kernel")]


def training_dependent_layers(keras, base) -> list:
    """The Dropout and stochastic-depth layers among ``base.layers`` (the applications bases keep them there)."""
    return [layer for layer in base.layers
            if isinstance(layer, keras.layers.Dropout) or type(layer).__name__ == "StochasticDepth"]


class Watch:
    """Snapshots of a base before training, and what training changed (:meth:`outcome`)."""

    def __init__(self, keras, base, frozen: list, after_base=None, inside: list = ()):
        self.groups, self.kernels, self.frozen = batch_norm_groups(base), kernels(base), len(frozen)
        self.before = [{kind: decisive.values(group[kind]) for kind in group} for group in self.groups]
        self.kernels_before = decisive.values(self.kernels)
        self.inside = [decisive.record_training(layer) for layer in inside]
        self.after = decisive.record_training(after_base) if after_base is not None else None

    def outcome(self) -> evidence.BaseOutcome:
        def ran_in_training_mode(received):
            return any(value is True for value in received)

        moved = [decisive.changed(old["statistics"], group["statistics"])
                 for old, group in zip(self.before, self.groups)]
        affine = any(decisive.changed(old["affine"], group["affine"]) for old, group in zip(self.before, self.groups))
        inside = (any(map(ran_in_training_mode, self.inside)) if self.inside
                  else evidence.NotApplicable("no Dropout or stochastic depth among the base's layers"))
        after = (ran_in_training_mode(self.after) if self.after is not None
                 else evidence.NotApplicable("no Dropout after the base"))
        return evidence.BaseOutcome(len(self.groups), self.frozen, sum(moved), affine,
                                    decisive.changed(self.kernels_before, self.kernels), inside, after)


def fit(keras, model, size: int) -> None:
    """Compile ``model`` and ``fit`` it for two steps, as the decisive checks do."""
    decisive.compile_model(keras, model)
    x, y = models.images(size)
    model.fit(x, y, batch_size=decisive.BATCH_SIZE, epochs=1, shuffle=False, verbose=0)


def fine_tune(keras, base, size: int, remedy: bool, **call) -> evidence.BaseOutcome:
    """Phase 2 of the tutorials on ``base``: the model around it, the base unfrozen (and the remedy applied, when
    asked), two ``fit`` steps."""
    model = models.transfer_model(keras, base, **call)
    base.trainable = True
    frozen = decisive.freeze_batch_norm(keras, base) if remedy else []
    watch = Watch(keras, base, frozen, model.get_layer("head_dropout"), training_dependent_layers(keras, base))
    fit(keras, model, size)
    return watch.outcome()


def frozen_base(keras, base, size: int, **call) -> evidence.BaseOutcome:
    """Phase 1 of the tutorials on ``base``: the base frozen (``base.trainable = False``), the head trained."""
    model = models.transfer_model(keras, base, **call)
    base.trainable = False
    watch = Watch(keras, base, [], model.get_layer("head_dropout"), training_dependent_layers(keras, base))
    fit(keras, model, size)
    return watch.outcome()


# --- The checks ----------------------------------------------------------------------------------------------------

# How a fine-tuning check calls the base: the tutorials' call, the remedy with it, the remedy with plain base(x).
REGIMES = {"as_written": (False, {"training": False}), "remedy": (True, {"training": False}),
           "remedy_alone": (True, {})}


def custom_blocks(keras, regime: str) -> evidence.BaseOutcome:
    """A base whose two BatchNormalization layers sit inside custom block layers, fine-tuned."""
    remedy, call = REGIMES[regime]
    return fine_tune(keras, models.custom_block_base(keras), 8, remedy, **call)


def keras_hub_backbone(keras, regime: str):
    """KerasHub's EfficientNetBackbone (fused and unfused blocks), fine-tuned; not applicable where KerasHub is not."""
    unsupported = models.keras_hub_unsupported(keras)
    if unsupported is not None:
        return unsupported
    remedy, call = REGIMES[regime]
    return fine_tune(keras, models.keras_hub_efficientnet(keras), models.HUB_SIZE, remedy, **call)


def layer_norm_only(keras, regime: str) -> evidence.BaseOutcome:
    """A base with LayerNormalization and no BatchNormalization, fine-tuned."""
    remedy, call = REGIMES[regime]
    return fine_tune(keras, models.layer_norm_base(keras), 8, remedy, **call)


def internal_dropout(keras, architecture: str, call_training: bool) -> evidence.BaseOutcome:
    """A ``keras.applications`` base with its own Dropout, frozen as in phase 1, called as
    ``base(x, training=False)`` (``call_training``) or as plain ``base(x)``."""
    build = {"efficientnet": models.efficientnet_b0, "convnext": models.convnext_tiny}[architecture]
    call = {"training": False} if call_training else {}
    return frozen_base(keras, build(keras), models.APPLICATION_SIZE, **call)


def subclassed(keras, remedy: bool) -> evidence.BaseOutcome:
    """A subclassed transfer model whose ``call`` runs ``head(dropout(base(x, training=False)))``, the tiny base
    unfrozen (and the remedy applied, when asked), two ``fit`` steps."""
    base = decisive.tiny_base(keras)
    model = models.subclassed_model(keras, base)
    base.trainable = True
    frozen = decisive.freeze_batch_norm(keras, base) if remedy else []
    watch = Watch(keras, base, frozen, model.dropout)
    fit(keras, model, 8)
    return watch.outcome()


def custom_loop(keras, remedy: bool):
    """The tutorial model (``base(x, training=False)``, base unfrozen) trained by a custom loop instead of ``fit``:
    ``GradientTape`` on TensorFlow, the stateless API (``stateless_call`` and ``jax.grad``) on JAX, ``backward()`` on
    PyTorch, as the keras-io guides on custom loops write them; two SGD steps with ``model(x, training=True)``. Not
    applicable on other backends."""
    backend = keras.backend.backend()
    loops = {"tensorflow": _tape_steps, "jax": _stateless_steps, "torch": _backward_steps}
    if backend not in loops:
        return evidence.NotApplicable(f"no custom loop written for the {backend} backend")
    base = decisive.tiny_base(keras)
    model = models.transfer_model(keras, base, training=False)
    base.trainable = True
    frozen = decisive.freeze_batch_norm(keras, base) if remedy else []
    watch = Watch(keras, base, frozen, model.get_layer("head_dropout"))
    loops[backend](keras, model, *models.images(8))
    return watch.outcome()


LEARNING_RATE = 0.01


def _batches(x, y):
    size = decisive.BATCH_SIZE
    return [(x[i:i + size], y[i:i + size]) for i in range(0, len(x), size)]


def _tape_steps(keras, model, x, y) -> None:
    import tensorflow as tf

    optimizer, loss = keras.optimizers.SGD(LEARNING_RATE), keras.losses.BinaryCrossentropy(from_logits=True)
    for images, labels in _batches(x, y):
        with tf.GradientTape() as tape:
            value = loss(labels, model(images, training=True))
        gradients = tape.gradient(value, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))


def _stateless_steps(keras, model, x, y) -> None:
    import jax

    loss = keras.losses.BinaryCrossentropy(from_logits=True)

    def compute(trainable, non_trainable, images, labels):
        outputs, non_trainable = model.stateless_call(trainable, non_trainable, images, training=True)
        return loss(labels, outputs), non_trainable

    gradient = jax.value_and_grad(compute, has_aux=True)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]
    for images, labels in _batches(x, y):
        (_, non_trainable), gradients = gradient(trainable, non_trainable, images, labels)
        trainable = [t - LEARNING_RATE * g for t, g in zip(trainable, gradients)]
    for variable, value in [*zip(model.trainable_variables, trainable),
                            *zip(model.non_trainable_variables, non_trainable)]:
        variable.assign(value)


def _backward_steps(keras, model, x, y) -> None:
    import torch

    optimizer, loss = keras.optimizers.SGD(LEARNING_RATE), keras.losses.BinaryCrossentropy(from_logits=True)
    for images, labels in _batches(x, y):
        value = loss(labels, model(images, training=True))
        model.zero_grad()
        value.backward()
        with torch.no_grad():
            optimizer.apply([v.value.grad for v in model.trainable_variables], model.trainable_variables)


# --- The registry --------------------------------------------------------------------------------------------------

# What the Keras documentation and the tutorials lead a reader to expect of each regime: no BatchNormalization
# statistics move (training=False, or trainable=False, keeps them), the Dropout after the base follows fit, the
# kernels train in phase 2 and not in phase 1, the remedy freezes every BatchNormalization layer and its gamma/beta,
# and a Dropout inside a base runs in inference mode under training=False and follows fit under plain base(x)
# (trainable does not change Dropout). ALL: as many as the base has.
ALL = "all"
EXPECTED = {
    "as_written": {"statistics_moved": 0, "kernels_updated": True, "dropout_after": True},
    "remedy": {"frozen": ALL, "statistics_moved": 0, "affine_updated": False, "kernels_updated": True,
               "dropout_after": True},
    "frozen_inference": {"statistics_moved": 0, "kernels_updated": False, "dropout_inside": False,
                         "dropout_after": True},
    "frozen_plain": {"statistics_moved": 0, "kernels_updated": False, "dropout_inside": True, "dropout_after": True},
}
EXPECTED["remedy_alone"] = EXPECTED["remedy"]
# How each regime calls the base, for a figure's rows and the chapter's table.
CALLS = {"as_written": "base(x, training=False), unfrozen", "remedy": "remedy + base(x, training=False)",
         "remedy_alone": "remedy + base(x)", "frozen_inference": "frozen, base(x, training=False)",
         "frozen_plain": "frozen, base(x)"}


@dataclasses.dataclass(frozen=True)
class ArchitectureCheck:
    id: str
    architecture: str  # the kind of model, as the chapter's grid names it
    regime: str  # a key of EXPECTED
    measure: functools.partial  # keras -> evidence.BaseOutcome, or evidence.NotApplicable

    @property
    def question(self) -> str:
        return f"{self.architecture}, {CALLS[self.regime]}, fit: BN moved / gamma,beta / kernels / Dropout"

    @property
    def short(self) -> str:
        return f"{self.architecture}: {CALLS[self.regime]}"

    def documented(self, outcome) -> bool | None:
        """Did ``outcome`` match what the documentation leads a reader to expect? None where the check did not
        measure (not applicable, or it raised)."""
        if not isinstance(outcome, evidence.BaseOutcome):
            return None
        return all(isinstance(getattr(outcome, field), evidence.NotApplicable) or getattr(outcome, field) == (
            outcome.batch_norm if expected == ALL else expected) for field, expected in EXPECTED[self.regime].items())


def _checks() -> tuple[ArchitectureCheck, ...]:
    fine_tuned = [("custom_blocks", "custom-block base", custom_blocks),
                  ("keras_hub", "KerasHub EfficientNetBackbone", keras_hub_backbone),
                  ("layer_norm", "LayerNorm-only base", layer_norm_only)]
    checks = [ArchitectureCheck(f"{name}_{regime}", kind, regime, functools.partial(measure, regime=regime))
              for name, kind, measure in fine_tuned for regime in ("as_written", "remedy", "remedy_alone")]
    checks += [ArchitectureCheck(f"{name}_{regime}", kind, regime, functools.partial(
        internal_dropout, architecture=name, call_training=regime == "frozen_inference"))
        for name, kind in (("efficientnet", "EfficientNetB0"), ("convnext", "ConvNeXtTiny"))
        for regime in ("frozen_inference", "frozen_plain")]
    checks += [ArchitectureCheck(f"{name}_{regime}", kind, regime, functools.partial(measure, remedy=regime != "as_written"))
               for name, kind, measure in (("subclassed", "subclassed transfer model", subclassed),
                                           ("custom_loop", "custom training loop", custom_loop))
               for regime in ("as_written", "remedy")]
    return tuple(checks)


CHECKS = _checks()
BY_ID = {check.id: check for check in CHECKS}


@functools.lru_cache(maxsize=None)
def value(check_id: str):
    """One check's typed value under this process's Keras (seeded; computed once), or :class:`evidence.Failed`."""
    keras = load_keras()
    questions.seed(keras)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return BY_ID[check_id].measure(keras)
    except Exception as error:  # a Keras that lacks an API the check uses: say so in its cell
        return evidence.Failed(evidence.first_line(error))


def measure() -> dict:
    """Every architecture check under this process's Keras: check id -> typed value."""
    return {check.id: value(check.id) for check in CHECKS}


def not_run(reason: str) -> dict:
    """Every architecture check's value in a column where they do not run."""
    return {check.id: evidence.NotApplicable(reason) for check in CHECKS}


def fingerprint() -> str:
    """A hash of the architecture checks' code: a kept column that ran them is valid for this hash only."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("architectures*.py")):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def measured() -> dict:
    """This process's versions, every decisive and architecture check's value (JSON), or the error that stopped
    them: what a release's child process returns (:mod:`companion.core.child`)."""
    try:
        values = {**questions.measure(), **measure()}
        return {"versions": questions.versions(), "values": evidence.values_to_json(values)}
    except Exception as error:  # Keras does not import, or cannot run at all
        return {"error": evidence.first_line(error)}


if __name__ == "__main__":
    print(json.dumps(measured()))
