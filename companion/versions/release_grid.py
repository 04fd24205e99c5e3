"""The release matrix's figure (:meth:`companion.versions.releases.ReleaseMatrix.figure`): one row per yes/no answer
of a decisive check, one column per release and backend, drawn as :mod:`companion.versions.architectures_grid` draws
its grid."""

from __future__ import annotations

import dataclasses

from companion.checks import evidence, questions

# How a field of a typed value reads at the end of a figure's row label.
FIELD_WORDS = {"statistics": "BN statistics", "affine": "BN gamma/beta", "kernels": "kernels",
               "without_recompile": "without recompiling", "after_recompile": "after recompiling"}


def _fields(check: questions.Check) -> list[str]:
    """The fields of a check's typed value that the figure shows as rows of their own ([""]: the value is a bool)."""
    return [f.name for f in dataclasses.fields(check.kind)] if dataclasses.is_dataclass(check.kind) else [""]


def row_labels(check: questions.Check) -> list[str]:
    return [f"{check.short} {FIELD_WORDS[name]}" if name else check.short for name in _fields(check)]


def answers(check: questions.Check, value) -> list:
    """The yes/no answers in a check's value, one per row of :func:`row_labels` (a Failed value answers them all)."""
    return [getattr(value, name) if name and not isinstance(value, evidence.Failed) else value
            for name in _fields(check)]


def grid(matrix, title: str):
    """One row per yes/no answer of a decisive check, one column per release; every cell says yes, no, "err" (the step
    raised an error instead of answering: see :meth:`ReleaseMatrix.errors`) or "-" (the release did not run), and is
    coloured by whether the answer is the one Keras' documentation leads a reader to expect
    (:attr:`companion.checks.questions.Check.documented`)."""
    import numpy as np

    from companion.versions import architectures_grid

    labels = [label for check in questions.CHECKS for label in row_labels(check)]
    expected = [answer for check in questions.CHECKS for answer in check.documented]
    cells = np.full((len(labels), len(matrix.columns)), "-", dtype=object)
    shade = np.full(cells.shape, np.nan)
    for j, c in enumerate(matrix.columns):
        if c.ran:
            answered = [a for check in questions.CHECKS for a in answers(check, c.values[check.id])]
            cells[:, j] = [evidence.show(a) if isinstance(a, bool) else "err" for a in answered]
            shade[:, j] = [float(a != documented) if isinstance(a, bool) else np.nan
                           for a, documented in zip(answered, expected)]
    # Thicker lines between the numbered releases, the side variants and the JAX and PyTorch columns.
    groups = [(c.release.numbered, c.release.backend) for c in matrix.columns]
    return architectures_grid.draw_cells(cells, shade, labels, [c.release.short_label for c in matrix.columns],
                                         groups, title, "not answered (err: the step raised; -: did not run)")
