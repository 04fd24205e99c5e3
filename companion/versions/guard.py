"""The guard a reader puts in their own fine-tuning: a callback for ``fit`` (:func:`callback`), the same check for a
custom training loop (:func:`watch`), and a check of serving (:func:`serving`). They fail when a layer does not behave
as the reader's model states (:mod:`companion.flags.stated` reads that from the model and measures it).

A mismatch raises :class:`FineTuningMismatch` (or warns) with one message: the layers, what moved or ran in which
mode, the Keras and backend, and the fix for this Keras and backend as the book's matrix computes it
(:mod:`companion.versions.matrix`: the checks of the tutorials' kind of model, run here in a child process).
"""

from __future__ import annotations

import functools
import os
import warnings

from companion.checks import evidence, fine_tuning
from companion.checks.check import versions
from companion.checks.fine_tuning import FLAT, OWN_DROPOUT, ModelKind
from companion.checks.ways import Call
from companion.core import child
from companion.flags import modes, probes
from companion.flags.stated import INFERENCE_MODE, Mismatch, Watch, is_augmentation
from companion.flags.walk import walk_layers
from companion.versions import advice, matrix


class FineTuningMismatch(RuntimeError):
    """Layers that did not behave as the model states; :attr:`mismatches` lists them."""

    def __init__(self, message: str, mismatches: list[Mismatch]):
        super().__init__(message)
        self.mismatches = mismatches


class FineTuningMismatchWarning(UserWarning):
    pass


class Guard(Watch):
    """A :class:`companion.flags.stated.Watch` that reports: :meth:`check` raises or warns with the fix."""

    def check(self, on_mismatch: str = "raise", when: str = "after the step", fix: bool = True) -> list[Mismatch]:
        """The mismatches since the watch began; raised as :class:`FineTuningMismatch` (``on_mismatch="raise"``),
        warned (``"warn"``) or only returned (``"return"``). With ``fix``, the message ends with the fix the book's
        matrix computes for this Keras and backend."""
        _check_option(on_mismatch)
        found = self.mismatches()
        self.renew()
        if found and on_mismatch != "return":
            report(self.model, found, when, fix_here(kind_of(found)) if fix else None, on_mismatch)
        return found


def watch(model) -> Watch:
    """For a custom training loop: call before the first training step (the model built), then
    ``watcher.check()`` after it (and after later steps, for the statistics)::

        watcher = guard.watch(model)
        train_step(images, labels)
        watcher.check()
    """
    if not getattr(model, "built", True):
        raise ValueError(f"{model.name} is not built yet: call it once (or build it) before guard.watch(model)")
    return Guard(model)


# --- The message and the fix --------------------------------------------------------------------------------------


def message(model, found: list[Mismatch], when: str, fix: str | None) -> str:
    """One message for ``found``: the layers that did the same thing for the same reason on one line (the first three
    named, the others counted; the error's ``mismatches`` lists them all), then the fix."""
    here = versions()
    groups: dict[tuple[str, str, str], list[Mismatch]] = {}
    for mismatch in found:
        groups.setdefault((mismatch.kind, mismatch.found, mismatch.because), []).append(mismatch)
    lines = [f"{len(found)} layer{'s' * (len(found) != 1)} of {model.name} did not behave as the model states "
             f"({when}; keras {here['keras']}, {here['backend']} backend):"]
    for (kind, what, because), group in groups.items():
        if len(group) == 1:
            lines.append(f"  {group[0]}")
            continue
        named = ", ".join(m.path for m in group[:3]) + (f" and {len(group) - 3} more" if len(group) > 3 else "")
        changes = [m.largest_change for m in group if m.largest_change is not None]
        largest = f" (largest change {max(changes):.3g})" if changes else ""
        lines.append(f"  {len(group)} {kind} layers ({named}): {what}{largest}, though {because}")
    if fix:
        lines += ["", fix]
    return "\n".join(lines)


def _check_option(on_mismatch: str) -> None:
    if on_mismatch not in ("raise", "warn", "return"):
        raise ValueError(f'on_mismatch must be "raise", "warn" or "return", not {on_mismatch!r}')


def report(model, found: list[Mismatch], when: str, fix: str | None, on_mismatch: str) -> None:
    """Raise :class:`FineTuningMismatch` (``on_mismatch="raise"``) or warn with the one message for ``found``."""
    text = message(model, found, when, fix)
    if on_mismatch == "raise":
        raise FineTuningMismatch(text, found)
    warnings.warn(text, FineTuningMismatchWarning, stacklevel=3)


def kind_of(found: list[Mismatch]) -> ModelKind:
    """The kind of model whose fix answers ``found``: a base with its own Dropout where a Dropout that the model runs
    in inference mode (it sits under a ``training=False`` call) ran in training mode, since the remedy freezes
    BatchNormalization only; else the tutorials' functional base."""
    own_dropout = any(m.kind.endswith("Dropout") and m.expected == INFERENCE_MODE for m in found)
    return OWN_DROPOUT if own_dropout else FLAT


# What the wrapper of the InferenceMode(base)(x) call is, where the fix names it.
WRAPPER = ("InferenceMode is a layer whose call runs the base with training=False: its code is "
           "companion.checks.models.inference_mode, which `companion check` prints.")


@functools.cache
def fix_here(kind: ModelKind = FLAT) -> str:
    """The fix on this Keras and backend: the way the book's matrix finds to behave as the tutorials intend for
    ``kind`` of model (:func:`kind_of`), computed here by the matrix's checks in a child process."""
    column = matrix.here()
    checks = [fine_tuning.check(kind, way) for way in kind.ways]
    try:
        found = child.call("companion.versions.matrix:measured", dict(os.environ), timeout=600,
                           ids=[c.id for c in checks])
    except child.ChildFailed as failed:
        return (f"The book's matrix could not be computed here ({failed.reason}); the remedy is "
                "companion.flags.remedy.freeze_batch_norm(base) after unfreezing, then compile.")
    if "error" in found:
        return f"The book's matrix could not be computed here ({found['error']})."
    values = {c: evidence.from_json(found["values"][c.id]) for c in checks}
    answer = advice.advise(values, kind, column)
    model = "a functional base" if kind is FLAT else f"a {kind.name}"
    if answer.recommended is None:
        return (f"On {column.label}, the book's matrix finds no way of fine-tuning {model} that behaves as the "
                f"tutorials intend ({answer.answer}); `companion check` shows every kind of model.")
    way = answer.recommended
    steps = ("after base.trainable = True, call freeze_batch_norm(base) (companion.flags.remedy, or its source "
             "copied from the book) and compile again; " if way.remedy else "")
    wrapper = f" {WRAPPER}" if way.call is Call.WRAPPED else ""
    return (f"The fix on {column.label}, from the book's matrix for {model}: {way.label}: {steps}"
            f"call the base as {way.call.value} in the model.{wrapper} `companion check` gives the way for other "
            "kinds of model.")


# --- fit --------------------------------------------------------------------------------------------------------


def _sync(model) -> None:
    """JAX keeps fit's state outside the variables between steps; put it back before reading them."""
    if hasattr(model, "jax_state_sync"):
        model.jax_state_sync()


class _Guard:
    """The callback's behaviour, on the ``Callback`` class of the Keras that runs (:func:`callback`)."""

    def __init__(self, on_mismatch: str = "raise", every_n_batches: int | None = None, fix: bool = True):
        super().__init__()
        if on_mismatch not in ("raise", "warn"):
            raise ValueError(f'on_mismatch must be "raise" or "warn", not {on_mismatch!r}')
        if every_n_batches is not None and every_n_batches < 1:
            raise ValueError(f"every_n_batches must be a positive number of batches, not {every_n_batches!r}")
        self.on_mismatch, self.every_n_batches, self.fix = on_mismatch, every_n_batches, fix
        self.watcher: Guard | None = None
        self.mismatches: list[Mismatch] = []
        self._batches = 0

    def on_train_begin(self, logs=None):
        _sync(self.model)
        self.watcher = Guard(self.model)
        self._batches = 0

    def _check(self, when: str) -> None:
        _sync(self.model)
        try:
            found = self.watcher.check(self.on_mismatch, when, self.fix)
        except FineTuningMismatch as error:  # kept on the callback too, for code after the fit that caught it
            self.mismatches += error.mismatches
            raise
        self.mismatches += found

    def on_train_batch_end(self, batch, logs=None):
        self._batches += 1
        if self._batches == 1:
            self._check("after the first training batch")
        elif self.every_n_batches and self._batches % self.every_n_batches == 0:
            self._check(f"after training batch {self._batches}")

    def on_epoch_end(self, epoch, logs=None):
        self._check(f"at the end of epoch {epoch + 1}")

    def on_train_end(self, logs=None):
        if self.watcher is not None:
            self.watcher.stop_recording()


@functools.cache
def _callback_class(keras):
    return type("FineTuningGuard", (_Guard, keras.callbacks.Callback), {"__doc__": callback.__doc__})


def callback(on_mismatch: str = "raise", every_n_batches: int | None = None, fix: bool = True, keras=None):
    """The guard for ``model.fit(..., callbacks=[guard.callback()])``: after the first training batch, at the end of
    each epoch (and every ``every_n_batches`` if given) it raises :class:`FineTuningMismatch` (or warns, with
    ``on_mismatch="warn"``) when a layer did not behave as the model states. ``keras``: the Keras module of the model
    (default: the one this process runs, ``tf_keras`` under ``TF_USE_LEGACY_KERAS=1``)."""
    if keras is None:
        from companion.core.variants import load_keras

        keras = load_keras()
    return _callback_class(keras)(on_mismatch=on_mismatch, every_n_batches=every_n_batches, fix=fix)


# --- Serving ----------------------------------------------------------------------------------------------------


def serving(model, x, on_mismatch: str = "raise") -> list[Mismatch]:
    """Call ``model(x)`` as a server would and check that no augmentation layer inside ran in training mode (Keras'
    augmentation layers do by default when called without ``training``); the fix is ``model(x, training=False)`` or
    ``model.predict(x)``."""
    _check_option(on_mismatch)
    augmentation = [(path, layer) for path, layer in walk_layers(model) if is_augmentation(layer)]
    with modes.ModeRecorder(model, is_augmentation) as recorder:
        model(x)
    found = [Mismatch(path, type(layer).__name__, INFERENCE_MODE,
                      "ran in training mode (its call received training="
                      f"{', '.join(map(str, recorder.values[path]))})",
                      f"a direct {model.name}(x) call serves the model")
             for path, layer in augmentation if probes.ran_in_training_mode(recorder.values[path])]
    if found and on_mismatch != "return":
        report(model, found, "serving", "The fix: serve with model(x, training=False) or model.predict(x).",
               on_mismatch)
    return found
