"""The audit's verdict logic on typed matrix columns: built by hand from a measured run, and measured again."""

import re

import pytest

from companion import audit, matrix
from companion.evidence import (AutoScale, BatchNormVariables, ByTraining, Count, FineTuneCounts, FrozenBase,
                                PredictEvaluate, Recompile, Statistics, Training, TrainableWeights, Updates)
from conftest import ROOT


def _fine_tune(bn_moved: int, bn: int, kernels: int) -> FineTuneCounts:
    return FineTuneCounts(Count(bn_moved, bn), Count(kernels, kernels))


# The smoke profile's values under keras 3.15.1, typed by hand from the string-based matrix as it was measured
# before rows returned typed values (each row rendered as the same string then and now).
KERAS = {
    "dropout_inverted": True, "dropout_inference": True, "dropout_frozen_drops": True,
    "forced_dropout_predict": False,
    "bn_trainable_stats": Statistics.BATCH, "bn_inference_stats": Statistics.MOVING,
    "bn_default_stats": Statistics.MOVING, "bn_frozen_stats": Statistics.MOVING,
    "bn_frozen_updates": False, "bn_trainable_updates": True, "bn_trainable_affine": True,
    "bn_variables": BatchNormVariables(4, True, True), "bn_batch_dependence": ByTraining(True, False),
    "predict_mode": Training.FALSE, "fit_passes_true": Training.TRUE,
    "inference_updates_bn": PredictEvaluate(False, False),
    "frozen_weights": TrainableWeights(0, 2), "frozen_base": FrozenBase(False, False),
    "nested_override": True, "nested_kernels": True, "nested_bn_mode": Training.TRUE, "dropout_inside_base": True,
    "dropout_leak_fit": True, "dropout_leak_call": True,
    "remedy": Updates(False, False, True), "remedy_dropout": True, "remedy_alone": Updates(False, False, True),
    "remedy_alone_dropout": True, "recompile": Recompile(True, False), "head_dropout_plain": True,
    "autoscale_trainable": AutoScale(1, True, True), "autoscale_frozen": AutoScale(0, True, False),
    "mobilenet_2019": _fine_tune(18, 52, 18), "mobilenet_as_written": _fine_tune(18, 52, 18),
    "mobilenet_remedy": _fine_tune(0, 52, 18), "xception_as_written": _fine_tune(40, 40, 74),
    "xception_remedy": _fine_tune(0, 40, 74),
}
# What the two other variants measured differently.
PROTECTED = dict(forced_dropout_predict=True, nested_override=False, nested_bn_mode=Training.FALSE,
                 dropout_inside_base=False, mobilenet_as_written=_fine_tune(0, 52, 18),
                 xception_as_written=_fine_tune(0, 40, 74))
COLUMNS = {
    "keras": KERAS,
    "keras-nightly": {**KERAS, **PROTECTED, "dropout_leak_fit": False, "dropout_leak_call": False,
                      "remedy_dropout": False},
    "tf-keras": {**KERAS, **PROTECTED},
}
VERSIONS = {"keras": "3.15.1", "keras-nightly": "3.16.0.dev2026102704", "tf-keras": "2.21.0"}
# The old (string) rendering of the keras column: typed values must still render so.
KERAS_TEXT = {
    "bn_variables": "4 / yes / yes", "bn_batch_dependence": "yes / no", "predict_mode": "False",
    "inference_updates_bn": "no / no", "frozen_weights": "0 / 2", "frozen_base": "no / no",
    "remedy": "no / no / yes", "recompile": "yes / no", "autoscale_frozen": "0 / yes / no",
    "bn_trainable_stats": "batch statistics", "forced_dropout_predict": "no",
    "mobilenet_as_written": "18 of 52 BN moved, 18 of 18 kernels updated",
}
# Per claim, in order, whether it held under keras / keras-nightly / tf-keras: computed by the string-based audit
# on the matrix measured before this change (H holds, F fails).
EXPECTED = ("FHH HHH HHH HHH HHH FFF HHH HHH HHH HHH HHH FFF HHH FFF HHH FFF FFF FHH FHH HHH FHH FFF HHH FFF FFF FFF "
            "HHH FHH HHH HHH HHH HHH HHH FHH FHH HHH HHH HHH").split()


def _matrix(columns=COLUMNS) -> matrix.Matrix:
    return matrix.Matrix({name: {"versions": {"keras": VERSIONS.get(name, "0")}, "values": dict(values)}
                          for name, values in columns.items()}, {})


def _column(**overrides):
    return {**KERAS, **overrides}


def _held(results) -> list[str]:
    return ["".join("H" if v.per_variant[name] else "F" for name in COLUMNS) for v in results]


def test_every_claim_reads_existing_checks_and_names_a_known_source():
    ids = {row.id for row in matrix.ROWS}
    for claim in audit.CLAIMS:
        assert set(claim.evidence) <= ids
        assert claim.source in audit.SOURCES


def test_every_source_text_has_claims():
    assert {claim.source for claim in audit.CLAIMS} == set(audit.SOURCES)


def test_hand_typed_columns_cover_every_row_and_render_as_before():
    assert [set(c) for c in COLUMNS.values()] == [{row.id for row in matrix.ROWS}] * 3
    m = _matrix()
    assert {row: m.text("keras", row) for row in KERAS_TEXT} == KERAS_TEXT


def test_typed_verdicts_are_the_verdicts_of_the_string_based_audit():
    assert _held(audit.verdicts(_matrix())) == EXPECTED


def test_each_check_reads_the_typed_value_it_names():
    """Change one value and the verdicts of exactly the claims whose evidence names that row can change."""
    before = _held(audit.verdicts(_matrix()))
    changed = _held(audit.verdicts(_matrix({**COLUMNS, "keras": _column(nested_override=False)})))
    moved = {i for i, (a, b) in enumerate(zip(before, changed)) if a != b}
    assert moved == {i for i, claim in enumerate(audit.CLAIMS) if "nested_override" in claim.evidence}
    remedy_broken = _column(mobilenet_remedy=_fine_tune(3, 52, 18))
    (claim,) = [v for v in audit.verdicts(_matrix({"keras": remedy_broken})) if "mobilenet_remedy" in v.claim.evidence]
    assert claim.per_variant == {"keras": False}


def test_verdict_is_per_variant_then_overall():
    claim = next(c for c in audit.CLAIMS if c.evidence == ("forced_dropout_predict",))
    m = _matrix({"a": _column(forced_dropout_predict=True), "b": _column(forced_dropout_predict=False)})
    (verdict,) = [v for v in audit.verdicts(m) if v.claim is claim]
    assert verdict.per_variant == {"a": True, "b": False}
    assert verdict.overall == audit.DEPENDS
    same = _matrix({"a": _column(forced_dropout_predict=False), "b": _column(forced_dropout_predict=False)})
    assert [v for v in audit.verdicts(same) if v.claim is claim][0].overall == audit.FAILS


def test_verdict_table_links_each_claim_to_its_evidence_rows():
    m = _matrix({"a": KERAS})
    table = audit.verdict_table(audit.verdicts(m), m)
    html = table._repr_html_()
    for claim in audit.CLAIMS:
        for row_id in claim.evidence:
            assert f'href="#evidence-{row_id}"' in html
    assert 'id="evidence-nested_override"' in m.table(anchors=True)._repr_html_()


def test_measured_matrix_gives_the_same_typed_values_and_verdicts(smoke):
    """The three variants measured (smoke profile; the chapters that show the matrix reuse these kept columns):
    the typed values are those above, read back from the cache unchanged, and the verdicts are the old ones."""
    measured = matrix.compute(smoke, progress=False)
    assert {name: column["values"] for name, column in measured.columns.items()} == COLUMNS
    assert _held(audit.verdicts(measured)) == EXPECTED
    kept = matrix.compute(smoke, progress=False)
    assert kept.columns == measured.columns
    assert all(type(kept.value("keras", row)) is type(value) for row, value in KERAS.items())


SOURCES_DIR = ROOT.parent / "shared" / "sources"
# Which of the shared source files each short source name quotes.
SOURCE_FILES = {"SE question": ("000", "001"), "SE answer": ("000", "001", "002"), "blog": ("003",),
                "Keras FAQ": ("004",)}


def _normalised(text: str) -> str:
    for fancy, plain in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"'), ("`", ""), ("*", "")):
        text = text.replace(fancy, plain)
    return re.sub(r"\s+([,.;:])", r"\1", re.sub(r"\s+", " ", text)).lower()


@pytest.mark.skipif(not SOURCES_DIR.is_dir(), reason="the shared source texts are not beside the checkout")
@pytest.mark.parametrize("claim", [c for c in audit.CLAIMS if c.source in SOURCE_FILES], ids=lambda c: c.quote[:40])
def test_every_quote_is_in_its_source(claim):
    """Each part of a quote between '...' (bracketed glosses aside) stands in one of its source's files."""
    texts = [_normalised(path.read_text(errors="replace")) for prefix in SOURCE_FILES[claim.source]
             for path in SOURCES_DIR.glob(f"{prefix}_*.txt")]
    for part in re.sub(r"\[[^\]]*\]", "", claim.quote).split("..."):
        part = _normalised(part).strip()
        assert part and any(part in text for text in texts), f"not found in {claim.source}: {part!r}"
