"""The audit's verdict logic (``companion.audit``) on columns typed by hand, and on the kept matrix.

The three columns below hold what the checks the sources' claims rest on measure under the pinned Keras (3.15.1),
keras-nightly and tf-keras on TensorFlow, each value derived by hand from how the checks' models are built and from
how each Keras passes ``training`` (NOTES.md section 2: Keras 3.15.1's functional model passes fit's ``True`` over a
base's recorded ``training=False``; keras-nightly and tf-keras keep it, and keras-nightly also lets the fixed value
reach the layers after the base). The verdict of every claim of the sources in each column is derived by hand from
them, claim by claim, in ``EXPECTED``; the last tests hold the kept matrix to the same verdicts. (The book's own
claims are held to "holds" by ``tests/test_chapters_audit.py``.)
"""

import dataclasses
import re

import pytest
from conftest import ROOT

from companion import audit
from companion.audit.source_claims import AS_WRITTEN, PLAIN_CALL, SOURCE_CLAIMS, WRAPPED_CALL
from companion.checks import registry as r
from companion.checks.evidence import (
    AutoScale,
    BatchNormCall,
    BatchNormVariables,
    ByTraining,
    Count,
    Failed,
    FineTuned,
    NotApplicable,
    NotRun,
    Phase,
    PredictEvaluate,
    Statistics,
    TrainableTiming,
    TrainableWeights,
    Training,
)
from companion.checks.fine_tuning import CUSTOM_BLOCKS, FLAT, MOBILENET, OWN_DROPOUT, XCEPTION, check
from companion.checks.ways import PLAIN, REMEDY_TRAINING_FALSE, TRAINING_FALSE
from companion.core.columns import PINNED, REAL_MODELS, Column, variant_column
from companion.tutorials import recipes
from companion.tutorials.recipe_checks import CALLS
from companion.versions import matrix
from companion.versions.matrix import Matrix, Measured

KERAS, NIGHTLY, TF_KERAS = Column("keras", PINNED), variant_column("keras-nightly"), variant_column("tf-keras")
NONE_INSIDE = NotApplicable("no Dropout in the base")


def _phase(moved: int = 0, total: int = 1, affine: bool = False, trained: int = 0, kernels: int = 2,
           received: Training = Training.TRUE, inside=NONE_INSIDE, after: bool = True) -> Phase:
    return Phase(Count(moved, total), affine, Count(trained, kernels), received, inside, after)


def _frozen(**phase) -> Phase:
    """A frozen base: its BN layers in inference mode whatever they receive, no kernel trainable."""
    return _phase(kernels=0, **phase)


# The flat base (one BN, a Conv2D's kernel and bias), called plainly: fit's True reaches it in every Keras.
PLAIN_FLAT = FineTuned(_frozen(), _phase(moved=1, affine=True, trained=2), 0)
# Through the InferenceMode wrapper, whose own call passes False: in inference mode everywhere, gamma/beta trained.
WRAPPED_FLAT = FineTuned(_frozen(received=Training.FALSE), _phase(affine=True, trained=2, received=Training.FALSE), 0)
# The base with its own Dropout, called plainly: fit's True reaches that Dropout, frozen or not.
PLAIN_OWN_DROPOUT = FineTuned(_frozen(inside=True), _phase(moved=1, affine=True, trained=2, inside=True), 0)
# MobileNetV2 from layer 100 (18 of its 52 BN layers unfrozen) and the whole of Xception (40 BN).
MOBILENET_TOTAL, XCEPTION_TOTAL = 52, 40

SHARED = {
    r.DROPOUT_INVERTED: True, r.DROPOUT_INFERENCE: True, r.DROPOUT_FROZEN_DROPS: True,
    r.BN_CALLS[True, True]: BatchNormCall(Statistics.BATCH, True),
    **{r.BN_CALLS[key]: BatchNormCall(Statistics.MOVING, False)
       for key in ((True, False), (False, True), (False, False), (True, None))},
    r.BN_VARIABLES: BatchNormVariables(4, True, True), r.BN_BATCH_DEPENDENCE: ByTraining(True, False),
    r.BN_MOVING_AVERAGE: True, r.PREDICT_MODE: Training.FALSE, r.EVALUATE_MODE: Training.FALSE,
    r.CALL_MODE: Training.FALSE, r.INFERENCE_MOVES_BN: PredictEvaluate(False, False), r.DENSE_IGNORES_TRAINING: True,
    r.TRAINABLE_CHANGES_MODE: Count(0, 9), r.AUTOSCALE[True]: AutoScale(1, True, True, True),
    r.AUTOSCALE[False]: AutoScale(0, True, False, True), r.FROZEN_WEIGHTS: TrainableWeights(0, 2),
    r.TRAINABLE_TIMING: TrainableTiming(True, False, True, True),
    CALLS[recipes.MOBILENET_V2_2019]: Training.NONE, CALLS[recipes.MOBILENET_V2_2020]: Training.FALSE,
    CALLS[recipes.XCEPTION_2020]: Training.FALSE,
    PLAIN_CALL: PLAIN_FLAT, WRAPPED_CALL: WRAPPED_FLAT, check(OWN_DROPOUT, PLAIN): PLAIN_OWN_DROPOUT,
}
# Keras 3.15.1: fit's True reaches a base called with training=False, its BN and its own Dropout, frozen or not; a
# forced training=True is overridden by predict's False.
OVERRIDDEN = {
    AS_WRITTEN: PLAIN_FLAT,
    check(CUSTOM_BLOCKS, TRAINING_FALSE): FineTuned(
        _frozen(total=2), _phase(moved=2, total=2, affine=True, trained=4, kernels=4), 0),
    check(OWN_DROPOUT, TRAINING_FALSE): PLAIN_OWN_DROPOUT,
    check(MOBILENET, TRAINING_FALSE): FineTuned(_frozen(total=MOBILENET_TOTAL), _phase(
        moved=18, total=MOBILENET_TOTAL, affine=True, trained=18, kernels=18), 0),
    check(XCEPTION, TRAINING_FALSE): FineTuned(_frozen(total=XCEPTION_TOTAL), _phase(
        moved=XCEPTION_TOTAL, total=XCEPTION_TOTAL, affine=True, trained=74, kernels=74), 0),
    check(FLAT, REMEDY_TRAINING_FALSE): FineTuned(_frozen(), _phase(trained=2), 1),
    r.FORCED_DROPOUT_PREDICT: False, r.AUTOSCALE_FORCED[True]: False, r.AUTOSCALE_FORCED[False]: False,
}


def _kept(after: bool) -> dict:
    """Where a base's training=False is kept: in inference mode, statistics fixed, its own Dropout off; ``after``:
    whether the head's Dropout after the base still drops."""
    received = Training.FALSE
    return {
        AS_WRITTEN: FineTuned(_frozen(received=received, after=after),
                              _phase(affine=True, trained=2, received=received, after=after), 0),
        check(CUSTOM_BLOCKS, TRAINING_FALSE): FineTuned(
            _frozen(total=2, received=received, after=after),
            _phase(total=2, affine=True, trained=4, kernels=4, received=received, after=after), 0),
        check(OWN_DROPOUT, TRAINING_FALSE): FineTuned(
            _frozen(received=received, inside=False, after=after),
            _phase(affine=True, trained=2, received=received, inside=False, after=after), 0),
        check(MOBILENET, TRAINING_FALSE): FineTuned(
            _frozen(total=MOBILENET_TOTAL, received=received, after=after),
            _phase(total=MOBILENET_TOTAL, affine=True, trained=18, kernels=18, received=received, after=after), 0),
        check(XCEPTION, TRAINING_FALSE): FineTuned(
            _frozen(total=XCEPTION_TOTAL, received=received, after=after),
            _phase(total=XCEPTION_TOTAL, affine=True, trained=74, kernels=74, received=received, after=after), 0),
        check(FLAT, REMEDY_TRAINING_FALSE): FineTuned(
            _frozen(received=received, after=after), _phase(trained=2, received=received, after=after), 1),
        r.FORCED_DROPOUT_PREDICT: True, r.AUTOSCALE_FORCED[True]: True, r.AUTOSCALE_FORCED[False]: True,
    }


COLUMNS = {
    KERAS: {**SHARED, **OVERRIDDEN},
    NIGHTLY: {**SHARED, **_kept(after=False)},
    # tf-keras: a call without training passes None; compile fixes the trainable weights (a change before the next
    # compile is not honoured, not even by a train step traced again).
    TF_KERAS: {**SHARED, **_kept(after=True), r.CALL_MODE: Training.NONE,
               r.TRAINABLE_TIMING: TrainableTiming(False, False, False, True)},
}
EVIDENCE = {c for claim in SOURCE_CLAIMS for c in claim.evidence}

# Per claim, whether it holds under keras / keras-nightly / tf-keras (H holds, F fails), derived by hand from the
# columns above.
H, F, K = "HHH", "FFF", "FHH"  # K: fails on the pinned Keras 3 release only
EXPECTED = {
    # The question: the override (C1); what training=True implies (C4, C5 hold; C6 fails: a frozen layer in
    # training mode keeps its weights, layers in inference mode are trained); its premises (C7, C8).
    "C1": K, "C2": H, "C3": H, "C4": H, "C5": H, "C6": F, "C7": H, "C8": H,
    # The answer: predict/evaluate do not update BN (C10 fails); Keras compensates in training (C12 fails).
    "C9": H, "C10": F, "C11": H, "C12": F,
    # Quoted in the answer: the Keras BN documentation, d2l.ai, Géron.
    "C13": H, "C14": H, "C15": H, "C16": H, "C17": H, "C18": H, "C19": H,
    # The blog: training=False passed to a base in fit (C20) and to a frozen base with a Dropout of its own (C28)
    # depend on the override; layers in inference mode are trained (C21, C22); Dense has no mode (C34).
    "C20": K, "C21": F, "C22": F, "C23": H, "C24": H, "C25": H, "C26": H, "C27": H, "C28": K, "C29": H,
    "C30": H, "C31": H, "C32": H, "C33": H, "C34": F, "C35": H, "C36": H,
    # The FAQ: a forced training=True does not drop in predict on the pinned Keras (C39, C44).
    "C37": H, "C38": H, "C39": K, "C40": H, "C41": H, "C42": H, "C43": H, "C44": K, "C45": H, "C46": H,
    # The tutorials and the Keras 3 guide.
    "C47": K, "C48": K, "C49": H, "C50": H, "C51": H, "C52": K, "C53": K,
}


def _matrix(columns=COLUMNS) -> Matrix:
    return Matrix([Measured(column, {}, values) for column, values in columns.items()], tuple(EVIDENCE))


def _held(results) -> dict[str, str]:
    return {v.claim.id: "".join({True: "H", False: "F", None: "-"}[held] for held in v.per_column.values())
            for v in results}


def _verdict(claim_id: str, values: dict, column: Column = KERAS) -> audit.Verdict:
    (verdict,) = audit.verdicts(_matrix({column: values}), [audit.BY_ID[claim_id]])
    return verdict


def _with(*changes: tuple, column: Column = KERAS) -> dict:
    """The column's values with some changed: each change a (check, value) pair."""
    return {**COLUMNS[column], **dict(changes)}


def _tuned(value: FineTuned, **fields) -> FineTuned:
    """``value`` with some fields of its fine-tuning phase changed."""
    return dataclasses.replace(value, fine_tuning=dataclasses.replace(value.fine_tuning, **fields))


# --- The claims ----------------------------------------------------------------------------------------------------


def test_claims_have_unique_ids_in_order_and_rest_on_rows_of_the_matrix():
    assert [c.id for c in SOURCE_CLAIMS] == [f"C{i}" for i in range(1, len(SOURCE_CLAIMS) + 1)] == list(EXPECTED)
    assert len(audit.BY_ID) == len(audit.CLAIMS) and audit.CLAIMS[:len(SOURCE_CLAIMS)] == SOURCE_CLAIMS
    for claim in audit.CLAIMS:
        assert claim.evidence and set(claim.evidence) <= set(matrix.ROWS), claim.id
        assert claim.source in audit.SOURCES or claim.source in audit.CHAPTERS
        assert claim.said_by in ("", *audit.QUOTED)


def test_every_source_text_and_quoted_author_has_claims():
    assert set(audit.SOURCES) <= {claim.source for claim in audit.CLAIMS}
    assert set(audit.QUOTED) == {claim.said_by for claim in audit.CLAIMS if claim.said_by}


def test_verdicts_are_those_derived_by_hand():
    assert _held(audit.verdicts(_matrix(), SOURCE_CLAIMS)) == EXPECTED


def test_each_claim_reads_only_the_checks_it_names():
    """Each evidence check in turn not run: exactly the claims that name it are not measured; the others are judged
    as before (a claim reading a check it does not name would raise or change)."""
    before = {claim.id: claim.held(COLUMNS[KERAS]) for claim in SOURCE_CLAIMS}
    for evidence in EVIDENCE:
        values = {**COLUMNS[KERAS], evidence: NotRun("in this test")}
        for claim in SOURCE_CLAIMS:
            assert claim.held(values) == (None if evidence in claim.evidence else before[claim.id]), (
                claim.id, evidence)


def test_a_failed_step_inside_a_value_is_evidence_too():
    # A Keras whose fit refuses a trainable change until it is compiled again (JAX) still honours the recompile.
    timing = TrainableTiming(True, Failed("ValueError: changed model"), Failed("ValueError: changed model"), True)
    assert _verdict("C50", _with((r.TRAINABLE_TIMING, timing))).overall == audit.HOLDS
    assert _verdict("C50", _with((r.TRAINABLE_TIMING, Failed("ImportError: x")))).overall == audit.NOT_TESTED


def test_a_verdict_is_per_column_then_overall_and_says_what_it_supports():
    forced = {KERAS: COLUMNS[KERAS], TF_KERAS: COLUMNS[TF_KERAS]}
    found = _matrix(forced)
    (verdict,) = audit.verdicts(found, [audit.BY_ID["C39"]])
    assert verdict.per_column == {KERAS: False, TF_KERAS: True} and verdict.overall == audit.DEPENDS
    assert verdict.columns(True) == [TF_KERAS] and verdict.columns(False) == [KERAS]
    assert verdict.supported(found) == "holds in tf-keras 2.21.0; fails in keras 3.15.1"
    (holds,) = audit.verdicts(found, [audit.BY_ID["C5"]])
    assert holds.overall == audit.HOLDS and holds.supported(found) == "holds in every column"
    assert _verdict("C39", COLUMNS[KERAS]).overall == audit.FAILS


def test_a_claim_is_judged_in_the_columns_of_its_scope_only():
    jax = Column("keras", PINNED, "jax")
    found = _matrix({KERAS: COLUMNS[KERAS], jax: COLUMNS[KERAS]})
    (real_models,) = audit.verdicts(found, [audit.BY_ID["C47"]])
    assert audit.BY_ID["C47"].scope is REAL_MODELS and list(real_models.per_column) == [KERAS]
    (everywhere,) = audit.verdicts(found, [audit.BY_ID["C1"]])
    assert list(everywhere.per_column) == [KERAS, jax]
    table = audit.verdict_table([real_models, everywhere], found)
    assert table.rows == [["C47", audit.FAILS, "MobileNetV2 2020", "fails", "-"],
                          ["C1", audit.FAILS, "SE question", "fails", "fails"]]


def test_a_column_that_did_not_run_or_a_check_not_run_there_counts_neither_way():
    broken = Measured(NIGHTLY, {}, {}, error="ImportError: x")
    found = Matrix([Measured(KERAS, {}, COLUMNS[KERAS]), broken], tuple(EVIDENCE))
    (verdict,) = audit.verdicts(found, [audit.BY_ID["C1"]])
    assert verdict.per_column == {KERAS: False, NIGHTLY: None} and verdict.overall == audit.FAILS
    assert verdict.supported(found) == f"fails in keras 3.15.1; not measured in keras-nightly {NIGHTLY.version}"
    not_run = _verdict("C1", _with((AS_WRITTEN, NotRun("x"))))
    assert not_run.overall == audit.NOT_TESTED


def test_the_tables_link_each_claim_to_its_evidence_and_name_who_said_it():
    found = _matrix({KERAS: COLUMNS[KERAS]})
    results = audit.verdicts(found, SOURCE_CLAIMS)
    html = audit.claims_table(results, found)._repr_html_()
    for claim in SOURCE_CLAIMS:
        for evidence in claim.evidence:
            assert f'href="{audit.EVIDENCE_PAGE}#check-{evidence.id}"' in html
    assert 'id="check-dropout_inverted"' in Matrix([Measured(KERAS, {}, COLUMNS[KERAS])], (r.DROPOUT_INVERTED,)
                                                   ).table(anchors=True)._repr_html_()
    table = audit.verdict_table(results, found)
    assert 'id="claim-C17"' in table._repr_html_()
    rows = {row[0]: row for row in table.rows}
    assert rows["C17"][2] == "Géron, quoted in the SE answer" and rows["C1"][1:3] == [audit.FAILS, "SE question"]
    assert "Why this reading: " in {row[0]: row for row in audit.claims_table(results, found).rows}["C31"][2]


# --- The items, one test each -------------------------------------------------------------------------------


def test_claim_6_tests_the_reading_of_its_quote():
    """"training=True implies the weights are from the backwards pass": the reading says the same (not the
    opposite), and the check would hold if weight updates followed the mode."""
    claim = audit.BY_ID["C6"]
    assert "a layer that runs in training mode has its weights updated" in claim.reading
    kept = FineTuned(_frozen(received=Training.FALSE), _phase(received=Training.FALSE), 0)  # nothing trained
    as_the_quote_says = _with((r.AUTOSCALE[False], AutoScale(0, True, True, True)), (WRAPPED_CALL, kept))
    assert _verdict("C6", as_the_quote_says).overall == audit.HOLDS


def test_checks_on_inference_mode_are_not_tested_where_the_layers_were_in_training_mode():
    """C21 and C22 rest on layers that received training=False; where they did not, no verdict is drawn. C6 has a
    first part (a frozen layer in training mode), which still refutes it alone, and is untested when it does not."""
    overridden = _with((WRAPPED_CALL, _tuned(WRAPPED_FLAT, bn_received=Training.TRUE)))
    for claim_id in ("C21", "C22"):
        verdict = _verdict(claim_id, overridden)
        assert verdict.per_column == {KERAS: None} and verdict.overall == audit.NOT_TESTED
    assert _verdict("C6", overridden).overall == audit.FAILS
    scale_moved = {**overridden, r.AUTOSCALE[False]: AutoScale(0, True, True, True)}
    assert _verdict("C6", scale_moved).overall == audit.NOT_TESTED


def test_the_keras_3_guide_is_audited_beyond_its_remedy_and_depends_on_the_version():
    guide = {c.id for c in audit.CLAIMS if c.source == "Keras 3 guide"}
    assert guide == {"C51", "C52", "C53"}
    assert "or otherwise call the model with training=False" in audit.BY_ID["C52"].quote
    assert "still running in inference mode since we passed training=False" in audit.BY_ID["C53"].quote
    assert "not among the shared sources" in audit.SOURCES["Keras 3 guide"]


def test_the_blog_is_tested_on_fair_readings():
    # "limited to predict by its own words": read in predict.
    assert audit.BY_ID["C31"].evidence == (r.PREDICT_MODE,)
    # ResNet50 has no Dropout: the frozen-layers claim reads BatchNormalization only.
    assert not any("dropout" in c.id for c in audit.BY_ID["C33"].evidence)
    # "can lead to": a possibility, tested on the article's own fine-tuning example.
    assert audit.BY_ID["C29"].evidence == (PLAIN_CALL,)
    # "training=None (or False ...)": read as "not training mode", which True would contradict.
    assert _verdict("C36", _with((r.CALL_MODE, Training.TRUE))).overall == audit.FAILS
    for claim_id in ("C29", "C31", "C33", "C36"):
        assert audit.BY_ID[claim_id].why and _verdict(claim_id, COLUMNS[KERAS]).overall == audit.HOLDS
    blog = [v for v in audit.verdicts(_matrix(), SOURCE_CLAIMS) if v.claim.speaker == "blog"]
    assert [v.claim.id for v in blog if v.overall == audit.FAILS] == ["C21", "C22", "C34"]
    assert [v.claim.id for v in blog if v.overall == audit.DEPENDS] == ["C20", "C28"]


def _geron_passages() -> list[str]:
    """Géron's words in the answer: each passage from its start to its '[Quoted - Hands-on' attribution."""
    text = _normalised((SOURCES_DIR / "000_38b87eb532d90e27.txt").read_text())
    passages = []
    for start in ("each bn layer adds four parameters", "suppose p = 50%"):
        begin = text.index(start)
        passages.append(text[begin:text.index("[quoted - hands-on", begin)])
    return passages


@pytest.mark.skipif(not (ROOT.parent / "shared" / "sources").is_dir(), reason="the shared sources are not here")
def test_words_the_answer_quotes_are_attributed_to_their_author():
    passages = _geron_passages()
    for claim in audit.CLAIMS:
        if claim.source != "SE answer":
            continue
        parts = [_normalised(p).strip() for p in re.sub(r"\[[^\]]*\]", "", claim.quote).split("...")]
        in_geron = all(any(part in passage for passage in passages) for part in parts)
        assert (claim.said_by == "Géron") == in_geron, claim.id
    assert {c.id for c in audit.CLAIMS if c.said_by == "Géron"} == {"C16", "C17", "C18", "C19"}
    assert {c.id for c in audit.CLAIMS if c.said_by == "Keras BN documentation"} == {"C13", "C14"}


def test_claims_about_gamma_and_beta_read_gamma_and_beta():
    """C22 ("gradient calculations bypass these layers") covers BN gamma/beta: kernels kept but gamma/beta trained
    still refutes it, while C21 (kernels only, through the wrapper and as written) would then hold."""
    values = _with((WRAPPED_CALL, _tuned(WRAPPED_FLAT, kernels=Count(0, 2))),
                   (AS_WRITTEN, _tuned(COLUMNS[NIGHTLY][AS_WRITTEN], kernels=Count(0, 2))))
    assert values[WRAPPED_CALL].fine_tuning.affine
    assert _verdict("C22", values).overall == audit.FAILS
    assert _verdict("C21", values).overall == audit.HOLDS


@pytest.mark.parametrize("claim_id, change", [
    ("C44", (r.AUTOSCALE_FORCED[False], False)),  # "at training time *and* inference time", frozen
    ("C45", (PLAIN_CALL, dataclasses.replace(PLAIN_FLAT, frozen_phase=_frozen(moved=1)))),  # "will not update"
    ("C46", (r.TRAINABLE_CHANGES_MODE, Count(1, 9))),  # "For every other layer ... remain independent"
    ("C46", (r.BN_CALLS[False, True], BatchNormCall(Statistics.BATCH, False))),  # "only applies for BN"
], ids=["C44", "C45", "C46 other layers", "C46 BN"])
def test_faq_checks_are_as_strong_as_their_statements(claim_id, change):
    assert _verdict(claim_id, COLUMNS[NIGHTLY], NIGHTLY).overall == audit.HOLDS
    assert _verdict(claim_id, _with(change, column=NIGHTLY), NIGHTLY).overall == audit.FAILS


@pytest.mark.parametrize("source, words", [
    ("SE question", "whereas in the first they make no mention of training=false"),
    ("SE answer", "really means"),
    ("blog", "training=true for trainable layers"),
    ("blog", "self.dense(inputs, training=training)"),
    ("Keras FAQ", "for every other layer"),
])
def test_statements_the_review_found_uncovered_are_claims(source, words):
    assert any(words in _normalised(c.quote) for c in audit.CLAIMS if c.source == source)


def test_statements_not_audited_are_listed_with_a_reason():
    assert len(audit.NOT_AUDITED) >= 10
    claims = {_normalised(c.quote) for c in audit.CLAIMS}
    for source, quote, why in audit.NOT_AUDITED:
        assert source in audit.SOURCES and len(why) > 10
        assert _normalised(quote) not in claims
    assert audit.not_audited_table().rows[0] == list(audit.NOT_AUDITED[0])


def test_tally_counts_the_sources_by_speaker():
    counts = audit.tally(audit.verdicts(_matrix(), SOURCE_CLAIMS))
    assert sum(sum(c.values()) for c in counts.values()) == 53
    # From EXPECTED: the blog's C20 to C36, of which C21, C22 and C34 fail and C20 and C28 depend on the version;
    # the answer's own words, C9 to C12 (C10 and C12 fail); Géron's four hold.
    assert counts["blog"] == {audit.HOLDS: 12, audit.FAILS: 3, audit.DEPENDS: 2}
    assert counts["SE answer"] == {audit.HOLDS: 2, audit.FAILS: 2} and counts["Géron"] == {audit.HOLDS: 4}
    assert audit.tally(audit.verdicts(_matrix(), SOURCE_CLAIMS), by_the_book=True) == {}


# --- Measured ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kept():
    """The whole matrix, computed once (kept in the cache folder: the chapters and the other tests read the same)."""
    return matrix.compute(progress=False)


def test_the_kept_matrix_gives_the_verdicts_derived_by_hand(kept):
    """Each claim of the sources judged in the measured columns of the pinned Keras, keras-nightly and tf-keras."""
    measured = [kept.at(column) for column in COLUMNS]
    missing = [m.column.label for m in measured if m.error == "not installed"]
    if missing:
        pytest.skip(f"not installed (companion variants install --releases): {', '.join(missing)}")
    assert all(m.ran for m in measured), [m.error for m in measured]
    assert _held(audit.verdicts(Matrix(measured, kept.rows), SOURCE_CLAIMS)) == EXPECTED


# --- Quotes --------------------------------------------------------------------------------------------------------

SOURCES_DIR = ROOT.parent / "shared" / "sources"
# Which of the shared source files each short source name quotes.
SOURCE_FILES = {"SE question": ("000", "001"), "SE answer": ("000", "001", "002"), "blog": ("003",),
                "Keras FAQ": ("004",)}


def _normalised(text: str) -> str:
    for fancy, plain in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"'), ("`", ""), ("*", "")):
        text = text.replace(fancy, plain)
    return re.sub(r"\s+([,.;:])", r"\1", re.sub(r"\s+", " ", text)).lower()


def _in_source(source: str, quote: str) -> list[str]:
    """The parts of ``quote`` (between '...', bracketed glosses aside) that are not in the source's files."""
    texts = [_normalised(path.read_text(errors="replace")) for prefix in SOURCE_FILES[source]
             for path in SOURCES_DIR.glob(f"{prefix}_*.txt")]
    parts = [_normalised(part).strip() for part in re.sub(r"\[[^\]]*\]", "", quote).split("...")]
    return [part for part in parts if not (part and any(part in text for text in texts))]


@pytest.mark.skipif(not SOURCES_DIR.is_dir(), reason="the shared source texts are not beside the checkout")
@pytest.mark.parametrize("claim", [c for c in audit.CLAIMS if c.source in SOURCE_FILES], ids=lambda c: c.id)
def test_every_quote_is_in_its_source(claim):
    assert _in_source(claim.source, claim.quote) == []


@pytest.mark.skipif(not SOURCES_DIR.is_dir(), reason="the shared source texts are not beside the checkout")
@pytest.mark.parametrize("entry", audit.NOT_AUDITED, ids=lambda e: e[1][:40])
def test_every_statement_not_audited_is_in_its_source(entry):
    assert _in_source(entry[0], entry[1]) == []
