"""The audit's verdict logic on typed matrix columns typed by hand, and on the matrix measured under every variant.

The columns below are what each check measured in the smoke profile, typed by hand (the keras column once from the
string-based matrix, the rows added since from their first measured run); the verdicts per claim are derived by hand
from them, claim by claim, in ``EXPECTED``.
"""

import re

import pytest
from conftest import ROOT

from companion import audit
from companion.checks.evidence import (
    AutoScale,
    BatchNormVariables,
    ByTraining,
    Count,
    FineTuneCounts,
    FrozenBase,
    PredictEvaluate,
    Recompile,
    Statistics,
    TrainableWeights,
    Training,
    Updates,
)
from companion.versions import matrix


def _fine_tune(bn_moved: int, bn: int, kernels: int) -> FineTuneCounts:
    return FineTuneCounts(Count(bn_moved, bn), Count(kernels, kernels))


KERAS = {
    "dropout_inverted": True, "dropout_inference": True, "dropout_frozen_drops": True,
    "forced_dropout_predict": False,
    "bn_trainable_stats": Statistics.BATCH, "bn_inference_stats": Statistics.MOVING,
    "bn_default_stats": Statistics.MOVING, "bn_frozen_stats": Statistics.MOVING,
    "bn_frozen_updates": False, "bn_trainable_updates": True, "bn_inference_updates": False,
    "bn_trainable_affine": True, "bn_variables": BatchNormVariables(4, True, True),
    "bn_batch_dependence": ByTraining(True, False), "bn_moving_average": True,
    "predict_mode": Training.FALSE, "evaluate_mode": Training.FALSE, "call_mode": Training.FALSE,
    "fit_passes_true": Training.TRUE, "inference_updates_bn": PredictEvaluate(False, False),
    "frozen_weights": TrainableWeights(0, 2), "frozen_base": FrozenBase(False, False),
    "frozen_predict_mode": Training.FALSE,
    "inference_mode_received": Training.FALSE, "inference_mode_updates": Updates(False, True, True),
    "dense_training_ignored": True,
    "nested_override": True, "nested_kernels": True, "nested_bn_mode": Training.TRUE, "dropout_inside_base": True,
    "dropout_leak_fit": True, "dropout_leak_call": True,
    "remedy": Updates(False, False, True), "remedy_dropout": True, "remedy_alone": Updates(False, False, True),
    "remedy_alone_dropout": True, "recompile": Recompile(True, False),
    "none_override": True, "none_dropout": True, "head_dropout_plain": True, "augmented_call": True,
    "trainable_setter": False, "false_then_true": True, "staged_unfreezing": False,
    "remedy_inside_dropout": True, "remedy_alone_inside_dropout": True,
    "autoscale_trainable": AutoScale(1, True, True), "autoscale_frozen": AutoScale(0, True, False),
    "autoscale_frozen_fit_training": True, "autoscale_forced_trainable": False, "autoscale_forced_frozen": False,
    "trainable_changes_mode": Count(0, 9),
    "tutorial_2019_call": Training.NONE, "tutorial_2020_call": Training.FALSE,
    "tutorial_xception_call": Training.FALSE,
    "mobilenet_2019": _fine_tune(18, 52, 18), "mobilenet_as_written": _fine_tune(18, 52, 18),
    "mobilenet_remedy": _fine_tune(0, 52, 18), "xception_as_written": _fine_tune(40, 40, 74),
    "xception_remedy": _fine_tune(0, 40, 74),
}
# What the two other variants measured differently: the fixed training=False is honoured (keras-nightly also lets it
# reach the layers after the base, and passes training=None down as a fixed value), and a forced training=True too.
PROTECTED = dict(forced_dropout_predict=True, nested_override=False, nested_bn_mode=Training.FALSE,
                 dropout_inside_base=False, autoscale_forced_trainable=True, autoscale_forced_frozen=True,
                 augmented_call=False, remedy_inside_dropout=False,
                 mobilenet_as_written=_fine_tune(0, 52, 18), xception_as_written=_fine_tune(0, 40, 74))
COLUMNS = {
    "keras": KERAS,
    "keras-nightly": {**KERAS, **PROTECTED, "dropout_leak_fit": False, "dropout_leak_call": False,
                      "remedy_dropout": False, "none_override": False, "none_dropout": False},
    "tf-keras": {**KERAS, **PROTECTED, "call_mode": Training.NONE, "trainable_setter": True,
                 "staged_unfreezing": True},
}
VERSIONS = {"keras": "3.15.1", "keras-nightly": "3.16.0.dev2026102704", "tf-keras": "2.21.0"}
# The old (string) rendering of the keras column: typed values must still render so.
KERAS_TEXT = {
    "bn_variables": "4 / yes / yes", "bn_batch_dependence": "yes / no", "predict_mode": "False",
    "inference_updates_bn": "no / no", "frozen_weights": "0 / 2", "frozen_base": "no / no",
    "remedy": "no / no / yes", "recompile": "yes / no", "autoscale_frozen": "0 / yes / no",
    "bn_trainable_stats": "batch statistics", "forced_dropout_predict": "no",
    "mobilenet_as_written": "18 of 52 BN moved, 18 of 18 kernels updated", "trainable_changes_mode": "0 of 9",
}
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
    # The blog: transfer-level training=False (C20) depends; layers in inference mode are trained (C21, C22);
    # a frozen BN layer is in inference mode with or without training=False, but a frozen Dropout still drops
    # without it (C28 holds through dropout_frozen_drops); Dense has no mode (C34).
    "C20": K, "C21": F, "C22": F, "C23": H, "C24": H, "C25": H, "C26": H, "C27": H, "C28": H, "C29": H,
    "C30": H, "C31": H, "C32": H, "C33": H, "C34": F, "C35": H, "C36": H,
    # The FAQ: a forced training=True does not drop in predict on the pinned Keras (C39, C44).
    "C37": H, "C38": H, "C39": K, "C40": H, "C41": H, "C42": H, "C43": H, "C44": K, "C45": H, "C46": H,
    # The tutorials and the Keras 3 guide.
    "C47": K, "C48": K, "C49": H, "C50": H, "C51": H, "C52": K, "C53": K,
    # The book: every claim of its chapters holds on every variant, but C55, overstated: where the base's
    # training=False is honoured (nested_bn_mode False: keras-nightly, tf-keras) its BN receives False in fit.
    **{f"C{i}": H for i in range(54, 70)}, "C55": "HFF",
}


def _matrix(columns=COLUMNS) -> matrix.Matrix:
    return matrix.Matrix({name: {"versions": {"keras": VERSIONS.get(name, "0")}, "values": dict(values)}
                          for name, values in columns.items()}, {})


def _column(**overrides):
    return {**KERAS, **overrides}


def _held(results) -> dict[str, str]:
    return {v.claim.id: "".join({True: "H", False: "F", None: "-"}[v.per_variant[name]] for name in v.per_variant)
            for v in results}


def _verdict(claim_id: str, columns=COLUMNS) -> audit.Verdict:
    (verdict,) = audit.verdicts(_matrix(columns), [audit.BY_ID[claim_id]])
    return verdict


def test_claims_have_unique_ids_in_order_and_read_existing_checks():
    assert [c.id for c in audit.CLAIMS] == [f"C{i}" for i in range(1, len(audit.CLAIMS) + 1)]
    ids = {row.id for row in matrix.ROWS}
    for claim in audit.CLAIMS:
        assert set(claim.evidence) <= ids, claim.id
        assert claim.source in audit.SOURCES or claim.source in audit.CHAPTERS
        assert claim.said_by in ("", *audit.QUOTED)


def test_every_source_text_and_quoted_author_has_claims():
    assert set(audit.SOURCES) <= {claim.source for claim in audit.CLAIMS}
    assert set(audit.QUOTED) == {claim.said_by for claim in audit.CLAIMS if claim.said_by}


def test_hand_typed_columns_cover_every_row_and_render_as_before():
    assert [set(c) for c in COLUMNS.values()] == [{row.id for row in matrix.ROWS}] * 3
    m = _matrix()
    assert {row: m.text("keras", row) for row in KERAS_TEXT} == KERAS_TEXT


def test_verdicts_are_those_derived_by_hand():
    assert _held(audit.verdicts(_matrix())) == EXPECTED


def test_each_check_reads_the_typed_value_it_names():
    """Change one value and the verdicts of exactly the claims whose evidence names that row can change."""
    before = _held(audit.verdicts(_matrix()))
    changed = _held(audit.verdicts(_matrix({**COLUMNS, "keras": _column(nested_override=False)})))
    moved = {key for key in before if before[key] != changed[key]}
    assert {"C1"} <= moved <= {c.id for c in audit.CLAIMS if "nested_override" in c.evidence}
    remedy_broken = _column(mobilenet_remedy=_fine_tune(3, 52, 18))
    for claim in audit.CLAIMS:
        if "mobilenet_remedy" in claim.evidence:
            assert _verdict(claim.id, {"keras": remedy_broken}).per_variant == {"keras": False}, claim.id


def test_verdict_is_per_variant_then_overall():
    columns = {"a": _column(forced_dropout_predict=True), "b": _column(forced_dropout_predict=False)}
    verdict = _verdict("C39", columns)
    assert verdict.per_variant == {"a": True, "b": False} and verdict.overall == audit.DEPENDS
    same = {"a": _column(forced_dropout_predict=False), "b": _column(forced_dropout_predict=False)}
    assert _verdict("C39", same).overall == audit.FAILS


def test_verdict_table_links_each_claim_to_its_evidence_rows_and_names_who_said_it():
    m = _matrix({"a": KERAS})
    table = audit.verdict_table(audit.verdicts(m), m)
    html = table._repr_html_()
    for claim in audit.CLAIMS:
        for row_id in claim.evidence:
            assert f'href="keras3_surprise.html#evidence-{row_id}"' in html
        assert f'id="claim-{claim.id}"' in html
    assert 'id="evidence-nested_override"' in m.table(anchors=True)._repr_html_()
    rows = {row[0]: row for row in table.rows}
    assert rows["C17"][1] == "Géron, quoted in the SE answer"
    assert rows["C57"][1] == "this book: trainable_versus_training"
    assert "Why this reading: " in rows["C31"][3]


# --- The items, one test each -------------------------------------------------------------------------------


def test_claim_6_tests_the_reading_of_its_quote():
    """"training=True implies the weights are from the backwards pass": the reading says the same (not the
    opposite), and the check would hold if weight updates followed the mode."""
    claim = audit.BY_ID["C6"]
    assert "a layer that runs in training mode has its weights updated" in claim.reading
    assert _verdict("C6").overall == audit.FAILS
    as_the_quote_says = _column(autoscale_frozen=AutoScale(0, True, True),
                                inference_mode_updates=Updates(False, False, False))
    assert _verdict("C6", {"keras": as_the_quote_says}).overall == audit.HOLDS


def test_checks_on_inference_mode_are_not_tested_where_the_layers_were_in_training_mode():
    """C21 and C22 rest on layers that received training=False; where they did not, no verdict is drawn. C6 has a
    second part (a frozen layer in training mode), which still refutes it alone, and is untested when it does not."""
    overridden = {"keras": _column(inference_mode_received=Training.TRUE)}
    for claim_id in ("C21", "C22"):
        verdict = _verdict(claim_id, overridden)
        assert verdict.per_variant == {"keras": None} and verdict.overall == audit.NOT_TESTED
        assert audit.verdict_table([verdict], _matrix(overridden)).rows[0][4] == audit.NOT_TESTED
    assert _verdict("C6", overridden).overall == audit.FAILS
    scale_moved = {"keras": _column(inference_mode_received=Training.TRUE, autoscale_frozen=AutoScale(0, True, True))}
    assert _verdict("C6", scale_moved).overall == audit.NOT_TESTED


def test_the_keras_3_guide_is_audited_beyond_its_remedy_and_depends_on_the_version():
    guide = {c.id for c in audit.CLAIMS if c.source == "Keras 3 guide"}
    assert guide == {"C51", "C52", "C53"}
    assert "or otherwise call the model with training=False" in audit.BY_ID["C52"].quote
    assert "still running in inference mode since we passed training=False" in audit.BY_ID["C53"].quote
    assert "not among the shared sources" in audit.SOURCES["Keras 3 guide"]
    for claim_id in ("C52", "C53"):
        assert _held(audit.verdicts(_matrix(), [audit.BY_ID[claim_id]]))[claim_id] == "FHH"


def test_the_blog_is_tested_on_fair_readings():
    # "limited to predict by its own words": read in predict, on the frozen base's layers.
    assert audit.BY_ID["C31"].evidence == ("frozen_predict_mode",)
    # ResNet50 has no Dropout: the frozen-layers claim reads BatchNormalization rows only.
    assert not any("dropout" in row for row in audit.BY_ID["C33"].evidence)
    # "can lead to": a possibility, tested on the article's own fine-tuning example.
    assert audit.BY_ID["C29"].evidence == ("mobilenet_2019",)
    # "training=None (or False ...)": read as "not training mode", which True would contradict.
    assert _verdict("C36", {"keras": _column(call_mode=Training.TRUE)}).overall == audit.FAILS
    for claim_id in ("C29", "C31", "C33", "C36"):
        assert audit.BY_ID[claim_id].why and _verdict(claim_id).overall == audit.HOLDS
    blog = [v for v in audit.verdicts(_matrix()) if v.claim.speaker == "blog"]
    assert [v.claim.id for v in blog if v.overall == audit.FAILS] == ["C21", "C22", "C34"]
    assert [v.claim.id for v in blog if v.overall == audit.DEPENDS] == ["C20"]


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
    counts = audit.tally(audit.verdicts(_matrix()))
    assert counts["Géron"] == {audit.HOLDS: 4} and counts["SE answer"] == {audit.HOLDS: 2, audit.FAILS: 2}


def test_no_check_is_counted_twice_for_one_speaker():
    seen = {}
    for claim in audit.CLAIMS:
        key = (claim.speaker, claim.evidence)
        assert key not in seen, f"{claim.id} repeats {seen[key]}"
        seen[key] = claim.id
    assert not any(c.evidence == ("nested_override",) for c in audit.CLAIMS if c.speaker == "blog")


def test_claims_about_gamma_and_beta_read_gamma_and_beta():
    """C22 ("gradient calculations bypass these layers") covers BN gamma/beta: kernels kept but gamma/beta trained
    still refutes it, while C21 (kernels only) would then hold."""
    only_affine = {"keras": _column(inference_mode_updates=Updates(False, True, False), nested_kernels=False)}
    assert _verdict("C22", only_affine).overall == audit.FAILS
    assert _verdict("C21", only_affine).overall == audit.HOLDS


@pytest.mark.parametrize("claim_id, overrides", [
    ("C44", dict(autoscale_forced_frozen=False)),  # "at training time *and* inference time", frozen
    ("C45", dict(frozen_base=FrozenBase(False, True))),  # "will not update its state during training"
    ("C46", dict(trainable_changes_mode=Count(1, 9))),  # "For every other layer ... remain independent"
    ("C46", dict(bn_frozen_stats=Statistics.BATCH)),  # "only applies for BatchNormalization": BN must be affected
])
def test_faq_checks_are_as_strong_as_their_statements(claim_id, overrides):
    nightly = COLUMNS["keras-nightly"]
    assert _verdict(claim_id, {"keras-nightly": nightly}).overall == audit.HOLDS
    assert _verdict(claim_id, {"keras-nightly": {**nightly, **overrides}}).overall == audit.FAILS


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


def test_tally_counts_the_sources_by_speaker_and_the_book_apart():
    results = audit.verdicts(_matrix())
    sources, book = audit.tally(results), audit.tally(results, by_the_book=True)
    assert sum(sum(c.values()) for c in sources.values()) == 53
    # C28 holds since its reading counts a frozen base's own Dropout: 13 of the blog's claims hold, 3 fail.
    assert sources["blog"] == {audit.HOLDS: 13, audit.FAILS: 3, audit.DEPENDS: 1}
    assert set(book) == set(audit.CHAPTERS) & {c.source for c in audit.CLAIMS}
    # The book's own claims hold on every variant, but C55 (trainable_versus_training), which depends on it.
    assert {name: dict(c) for name, c in book.items() if set(c) != {audit.HOLDS}} == {
        "trainable_versus_training": {audit.HOLDS: sum(c.source == "trainable_versus_training" for c in audit.CLAIMS) - 1,
                                      audit.DEPENDS: 1}}


# --- Measured ----------------------------------------------------------------------------------------------------


def test_measured_matrix_gives_the_same_typed_values_and_verdicts(smoke):
    """The three variants measured (smoke profile; the chapters that show the matrix reuse these kept columns):
    the typed values are those above, read back from the cache unchanged, and the verdicts those derived by hand, so
    every claim of the book holds on every variant."""
    measured = matrix.compute(smoke, progress=False)
    assert {name: column["values"] for name, column in measured.columns.items()} == COLUMNS
    assert _held(audit.verdicts(measured)) == EXPECTED
    kept = matrix.compute(smoke, progress=False)
    assert kept.columns == measured.columns
    assert all(type(kept.value("keras", row)) is type(value) for row, value in KERAS.items())


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


# --- The compile checks (companion.checks.compile_checks), for the matrix rows the audit's C54 and the Keras 3 chapter read


def test_on_keras_3_a_change_before_the_first_fit_is_honoured_and_an_optimizer_is_not_reused(keras):
    from companion.checks import compile_checks
    from companion.checks.evidence import Failed

    # Keras 3.15.1 traces the train step at the first fit, reading trainable then: a change between compile and that
    # fit is honoured; one after a fit is ignored until the step is made again (make_train_function(force=True)).
    assert compile_checks.trainable_change(keras) == compile_checks.TrainableChange(True, False, True)
    # Its optimizer is built at the first fit for the head's two variables; the unfrozen base's are unknown to it.
    reuse = compile_checks.optimizer_reuse(keras)
    assert isinstance(reuse.same_instance, Failed) and "Unknown variable" in reuse.same_instance.error
    assert reuse.new_instance is True


def test_on_tf_keras_compile_collects_the_trainable_weights():
    import subprocess
    import sys

    from companion.core import variants

    code = ("from companion.checks import compile_checks; from companion.core.variants import load_keras; k = load_keras(); "
            "print(compile_checks.trainable_change(k)); print(compile_checks.optimizer_reuse(k).same_instance.error)")
    done = subprocess.run([sys.executable, "-c", code], env=variants.environment(variants.get("tf-keras")),
                          capture_output=True, text=True, timeout=600)
    # tf-keras fixes the trainable weights at compile: no change after compile is honoured before the next compile,
    # not even with make_train_function(force=True); its optimizer refuses the base's variables with a KeyError.
    assert done.stdout.splitlines()[0] == "no / no / no", done.stderr[-2000:]
    assert done.stdout.splitlines()[1].startswith("KeyError:") and "cannot recognize variable" in done.stdout
