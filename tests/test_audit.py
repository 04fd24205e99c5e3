"""The audit's verdict logic, on matrix columns built by hand (the real columns are computed in the book)."""

import re

import pytest

from companion import audit, matrix
from conftest import ROOT


def _column(**overrides):
    values = {row.id: "?" for row in matrix.ROWS}
    values.update(overrides)
    return {"versions": {"keras": "0"}, "values": values}


def test_every_claim_reads_existing_checks_and_names_a_known_source():
    ids = {row.id for row in matrix.ROWS}
    for claim in audit.CLAIMS:
        assert set(claim.evidence) <= ids
        assert claim.source in audit.SOURCES


def test_every_source_text_has_claims():
    assert {claim.source for claim in audit.CLAIMS} == set(audit.SOURCES)


def test_verdict_is_per_variant_then_overall():
    claim = next(c for c in audit.CLAIMS if c.evidence == ("forced_dropout_predict",))
    m = matrix.Matrix({"a": _column(forced_dropout_predict="yes"), "b": _column(forced_dropout_predict="no")}, {})
    (verdict,) = [v for v in audit.verdicts(m) if v.claim is claim]
    assert verdict.per_variant == {"a": True, "b": False}
    assert verdict.overall == audit.DEPENDS
    same = matrix.Matrix({"a": _column(forced_dropout_predict="no"), "b": _column(forced_dropout_predict="no")}, {})
    assert [v for v in audit.verdicts(same) if v.claim is claim][0].overall == audit.FAILS


def test_verdict_table_links_each_claim_to_its_evidence_rows():
    m = matrix.Matrix({"a": _column()}, {})
    table = audit.verdict_table(audit.verdicts(m), m)
    html = table._repr_html_()
    for claim in audit.CLAIMS:
        for row_id in claim.evidence:
            assert f'href="#evidence-{row_id}"' in html
    assert 'id="evidence-nested_override"' in m.table(anchors=True)._repr_html_()


def test_verdict_sentences_follow_the_measurements():
    m = matrix.Matrix({
        "keras": _column(nested_override="yes", dropout_leak_fit="yes", remedy="no / no / yes"),
        "keras-nightly": _column(nested_override="no", dropout_leak_fit="no", remedy="no / no / yes"),
        "tf-keras": _column(nested_override="no", dropout_leak_fit="yes", remedy="yes / no / yes"),
    }, {})
    sentences = m.verdict_sentences()
    assert sentences["verdict_override"].startswith("Under `keras 0`, `base(x, training=False)` did not protect")
    assert "under `keras-nightly 0` and `tf-keras 0` it did protect them" in sentences["verdict_override"]
    assert sentences["verdict_leak"].startswith("Under `keras-nightly 0`, the Dropout layer *after* the base")
    assert sentences["verdict_remedy"].endswith("but not under `tf-keras 0`.")


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
