"""What a model states about the mode of its layers during ``fit``, read from the model itself, and whether its layers
behaved so (:class:`Watch`): the measuring behind the reader's guard (:mod:`companion.versions.guard`) and the
matrix's rows on it (:mod:`companion.checks.guard_checks`).

- A BatchNormalization layer with ``trainable = False``: its moving statistics, ``gamma`` and ``beta`` stay fixed.
- A BatchNormalization layer inside a layer or sub-model called with ``training=False`` in the model's graph (or,
  inside a subclassed model or a custom layer, one whose call received ``training=False`` while ``fit`` trained):
  its moving statistics stay fixed.
- Any other layer without layers inside that takes ``training`` (Dropout, augmentation): it runs in the mode its
  graph gives it, the value written at its call or else its caller's, ``fit``'s ``training=True`` at the top.

The statistics are compared with the companion's one snapshot (:class:`companion.flags.probes.Snapshot`, of the
BatchNormalization variables only), the modes recorded with its one recorder
(:class:`companion.flags.modes.ModeRecorder`) until the first comparison, then unhooked.

Inside a subclassed model or a custom layer, what a layer's call is passed is read from the source of ``call``
(``self.dropout(x)`` and ``self.dropout(x, training=training)`` pass the mode on, ``self.base(x, training=False)``
states inference). Two limits. Keras 3 writes a layer's default ``training`` at a node where none was passed, so a
value equal to the default (``Dropout()(x, training=False)``) is read as not written. Where the source does not say
(``**kwargs``, layers called from a list or another method), a received ``training=False`` cannot be told from one
Keras passed: it is taken as stated, and those layers' modes are not judged.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import textwrap

from companion.flags import modes, probes
from companion.flags.walk import LayerList, children, is_a, is_batch_norm, walk_layers

STATISTICS_FIXED = "moving statistics fixed"
WEIGHTS_FIXED = "moving statistics, gamma and beta fixed"
TRAINING_MODE = "runs in training mode"
INFERENCE_MODE = "runs in inference mode"


@dataclasses.dataclass(frozen=True)
class Stated:
    """The mode a model states for one of its layers, and where it says so."""

    training: bool | None  # None: called in more than one mode
    because: str
    written: bool = True  # written in a graph or a call's source (or fit's); False: read from what its call received


@dataclasses.dataclass(frozen=True)
class Mismatch:
    """One layer that did not behave as the model states."""

    path: str  # from the model, as :func:`companion.flags.walk.walk_layers` writes it
    kind: str  # the layer's class
    expected: str  # STATISTICS_FIXED, WEIGHTS_FIXED, TRAINING_MODE or INFERENCE_MODE
    found: str  # what happened instead
    because: str  # why the model states ``expected``
    largest_change: float | None = None  # of the variables that moved

    @property
    def what(self) -> str:
        """What happened, with the largest change where variables moved."""
        return self.found + (f" (largest change {self.largest_change:.3g})" if self.largest_change is not None else "")

    def __str__(self) -> str:
        return f"{self.kind} {self.path}: {self.what}, though {self.because}"


# --- What the model states ----------------------------------------------------------------------------------------


def _graph_calls(layer) -> list[tuple[object, bool | None]] | None:
    """Each call in ``layer``'s graph (a functional model, or a Sequential's) with the ``training`` value written at
    it (None where none is); None where ``layer`` has no graph (a subclassed model, a custom layer)."""
    graph = getattr(layer, "_functional", None) or layer  # Keras 3 keeps a Sequential's graph there
    nodes_by_depth = getattr(graph, "_nodes_by_depth", None)
    if not nodes_by_depth:
        return None
    calls = []
    for nodes in nodes_by_depth.values():
        for node in nodes:
            called = getattr(node, "operation", None) or getattr(node, "layer", None)  # Keras 3; tf-keras
            arguments = getattr(node, "arguments", None)
            kwargs = arguments.kwargs if arguments is not None else getattr(node, "call_kwargs", {}) or {}
            if called is None or is_a(called, "InputLayer"):
                continue
            training = kwargs.get("training")
            # Keras 3 writes the default of the layer's call at a node where none was passed: only a value other
            # than that default was written by the reader.
            written = isinstance(training, bool) and training is not _default_training(called)
            calls.append((called, training if written else None))
    return calls


# How a call in a ``call`` method's source passes ``training``: it passes nothing, ``None`` or a name (the caller's
# mode goes on, as Keras documents), or the source does not say (``**kwargs``, an expression, no call found).
INHERIT, UNKNOWN = "inherit", "unknown"


@functools.cache
def _written_in_call(cls) -> dict[str, set] | None:
    """Attribute name -> how the calls ``self.<name>(...)`` in ``cls.call``'s source pass ``training`` (True, False,
    INHERIT or UNKNOWN for each call); None where the source cannot be read."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls.call)))
    except (OSError, TypeError, SyntaxError):
        return None
    found: dict[str, set] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Name) and node.func.value.id == "self"):
            continue
        keywords = {keyword.arg: keyword.value for keyword in node.keywords}
        value = keywords.get("training")
        if None in keywords:  # **kwargs: may hold training
            passed = UNKNOWN
        elif value is None or isinstance(value, ast.Name) or (isinstance(value, ast.Constant) and value.value is None):
            passed = INHERIT
        elif isinstance(value, ast.Constant) and isinstance(value.value, bool):
            passed = value.value
        else:
            passed = UNKNOWN
        found.setdefault(node.func.attr, set()).add(passed)
    return found


def _calls_in_source(container) -> list[tuple[object, object]]:
    """Each layer directly inside ``container`` (a subclassed model, a custom layer) with how its ``call``'s source
    passes ``training`` to it: True or False where every call of it writes that value, INHERIT where every call passes
    the mode on, else UNKNOWN (called in several ways, from another method, through a list, or no source)."""
    written = _written_in_call(type(container))
    calls = []
    for layer in children(container):
        # getattr, not vars(): under PyTorch a layer's layers are kept in torch's `_modules`
        names = [name for name in written or () if getattr(container, name, None) is layer]
        passed = set().union(*(written.get(name, set()) for name in names)) if written and names else set()
        calls.append((layer, passed.pop() if len(passed) == 1 else UNKNOWN))
    return calls


def _default_training(layer):
    try:
        return inspect.signature(type(layer).call).parameters["training"].default
    except (KeyError, TypeError, ValueError):
        return None


def stated_modes(model, received: dict[int, list] | None = None) -> dict[int, Stated]:
    """Layer id -> the mode ``model`` states for it during ``fit`` (which calls the model with ``training=True``).

    In a graph, a layer takes the value written at its call, else its caller's. Inside a layer without a graph
    (a subclassed model, a custom layer), the same is read from the source of its ``call``
    (:func:`_calls_in_source`); where the source does not say, a layer takes ``False`` where ``received`` (layer id ->
    the values its call received in a training step) says its call received only that, else its caller's.
    """
    received = received or {}
    found: dict[int, Stated] = {}

    def visit(container, state: Stated) -> None:
        if not children(container):
            return
        calls = _graph_calls(container)
        where = container.name
        if calls is None:
            calls, where = _calls_in_source(container), f"{type(container).__name__}.call"
        for layer, training in calls:
            values = received.get(id(layer), ())
            if isinstance(training, bool):
                mine = Stated(training, f"{layer.name} is called with training={training} in {where}")
            elif training is UNKNOWN and False in values and True not in values:
                mine = Stated(False, f"{layer.name} received training=False from {where}", written=False)
            else:
                mine = state
            if id(layer) in found and found[id(layer)].training != mine.training:
                mine = Stated(None, f"{layer.name} is called in more than one mode")
            if id(layer) not in found or mine.training is None:
                found[id(layer)] = mine
                visit(layer, mine)

    visit(model, Stated(True, "fit trains the model"))
    return found


def is_augmentation(layer) -> bool:
    """Keras 3's image augmentation layers and tf-keras' (``RandomFlip``, ``RandomRotation``, ...)."""
    return any(cls.__name__.startswith("Random") or cls.__name__ in (
        "BaseImagePreprocessingLayer", "BaseImageAugmentationLayer") for cls in type(layer).__mro__)


def acts_on_mode(layer) -> bool:
    """Whether the guard judges the mode ``layer`` ran in: a layer without layers inside (one that holds layers passes
    its mode on to them) whose output depends on ``training``: Keras' Dropout and noise layers, augmentation, and the
    reader's own layers that take ``training``. BatchNormalization is judged by its statistics; Keras' other layers
    (``Dense`` takes ``training`` and ignores it) are not judged."""
    if is_batch_norm(layer) or children(layer) or not modes.takes_training_argument(layer):
        return False
    keras_own = type(layer).__module__.split(".")[0] in ("keras", "tf_keras")
    name = type(layer).__name__
    return not keras_own or "Dropout" in name or "Noise" in name or is_augmentation(layer)


def _expected_of_batch_norm(layer, stated: Stated | None) -> tuple[str, str] | None:
    if not layer.trainable:
        return WEIGHTS_FIXED, f"{layer.name} has trainable = False"
    if stated is not None and stated.training is False:
        return STATISTICS_FIXED, stated.because
    return None


# --- Watching -------------------------------------------------------------------------------------------------------


class Watch:
    """What one model states, and what it did since :func:`watch`: the snapshot of its BatchNormalization variables,
    and the modes its layers ran in during the first step (recorded until the first :meth:`check`)."""

    def __init__(self, model, recording: bool = True):
        self.model = model
        self.layers = walk_layers(model)
        self.batch_norm = [(path, layer) for path, layer in self.layers if is_batch_norm(layer)]
        self.renew()
        self.recorder = modes.ModeRecorder(model) if recording else None
        if self.recorder is not None:
            self.recorder.__enter__()
        self.received: dict[int, list] = {}
        self._modes_judged = False  # the modes are judged once, at the first comparison

    def stop_recording(self) -> None:
        """Unhook the recorder (the modes recorded so far are kept)."""
        if self.recorder is not None:
            self.received = {id(layer): list(self.recorder.values[path]) for path, layer in self.recorder.entries}
            self.recorder.__exit__(None, None, None)
            self.recorder = None


    def mismatches(self) -> list[Mismatch]:
        """The layers that did not behave as the model states since the watch began (or the last :meth:`renew`); the
        modes, recorded until the first call, are judged in the first call only."""
        self.stop_recording()
        stated = stated_modes(self.model, self.received)
        found = []
        for path, layer in self.batch_norm:
            expected = _expected_of_batch_norm(layer, stated.get(id(layer)))
            if expected is None:
                continue
            snapshot = self._snapshots[id(layer)]
            moved = [v for v in snapshot.variables if v.changed and (
                v.kind == probes.BN_MOVING or (expected[0] == WEIGHTS_FIXED and v.kind == probes.BN_AFFINE))]
            if moved:
                what = ", ".join(dict.fromkeys(v.name for v in moved))
                found.append(Mismatch(path, "BatchNormalization", expected[0], f"{what} moved", expected[1],
                                      max(v.max_abs_change for v in moved)))
        for path, layer in self.layers if not self._modes_judged else ():
            values = self.received.get(id(layer))
            mine = stated.get(id(layer))
            if not (values and mine is not None and mine.training is not None and mine.written
                    and acts_on_mode(layer)):
                continue
            ran = probes.ran_in_training_mode(values)
            if ran is not mine.training and "symbolic" not in values:
                expected = TRAINING_MODE if mine.training else INFERENCE_MODE
                found.append(Mismatch(path, modes.layer_kind(layer), expected,
                                      f"ran in {'training' if ran else 'inference'} mode (its call received "
                                      f"training={', '.join(map(str, values))})", mine.because))
        self._modes_judged = True
        return found

    def renew(self) -> None:
        """Compare with the variables as they are now from here on."""
        self._snapshots = {id(layer): probes.Snapshot(LayerList([layer])) for _, layer in self.batch_norm}
