"""The book audits itself, and its concept chapters show their Keras.

- Every sentence of a chapter's Markdown that states what ``training``, ``trainable``, BatchNormalization or Dropout
  do is a claim of the book registered by quotation (:mod:`companion.audit.book_claims`), or carries a glued number,
  or reports a claim it links; each registered sentence is still in its chapter, and its verdict over its scope, in
  the book's one matrix, is "holds".
- The concept chapters run the flags themselves in executed code (parsed with ``ast``) or show the code of the checks
  that do, from their one definition.
- The tutorial chapters apply the remedy with its one definition and measure every fit.
"""

import ast
import re

import nbformat
import pytest
import yaml
from conftest import BOOK, ROOT

from companion import audit
from companion.core.counts import Count


def _chapters():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [ROOT / f"{name}.ipynb" for name in [toc["root"], *(chapter["file"] for chapter in toc["chapters"])]]


CHAPTERS = _chapters()
CONCEPT_CHAPTERS = ("trainable_versus_training", "keras3_surprise")
TUTORIAL_CHAPTERS = ("mobilenet_v2_2019", "mobilenet_v2_2020", "keras_guide_xception_2020")


def _cells(name_or_path, kind):
    path = name_or_path if not isinstance(name_or_path, str) else BOOK / f"{name_or_path}.ipynb"
    return [c for c in nbformat.read(path, 4).cells if c.cell_type == kind]


def _markdown(path) -> str:
    return "\n\n".join(c.source for c in _cells(path, "markdown"))


# --- The detector, on sentences whose answer is known -------------------------------------------------------------


@pytest.mark.parametrize("sentence", [
    "`fit` passes `training=True` to every layer.",
    "A frozen BatchNormalization layer runs in inference mode whatever `training` it receives.",
    "With `trainable=False` the Dropout layer still drops.",
    "On Keras 3 `base(x, training=False)` no longer protects BatchNormalization.",
    "The moving statistics are updated by an exponential average.",
    "# The Keras 3 surprise: `training=False` no longer protects BatchNormalization",
])
def test_statements_of_behaviour_are_found(sentence):
    assert audit.unsupported_statements(sentence, {}) == [sentence]


# What the glued names below hold, as an executed chapter's glued values would (chapters.glued_values).
GLUED_VALUES = {"moved_written": 18, "val_accuracy": "0.912", "share": 0.5, "k3_overridden": "overridden",
                "honoured": True, "moved_columns": "1 column", "columns": "5 columns"}


@pytest.mark.parametrize("sentence", [
    "Under {glue:md}`k3_overridden`, `training=False` did not protect BatchNormalization.",
    "The override was {glue:text}`honoured`: the statistics did not move under `training=False`.",
    "The statistics moved in {glue:text}`never_glued` layers under `training=False`.",
])
def test_a_glued_word_or_an_unknown_name_is_not_support(sentence):
    assert audit.unsupported_statements(sentence, GLUED_VALUES) == [sentence]


def test_a_registered_sentence_is_support_and_only_word_for_word():
    sentence = "`fit` passes `training=True` to every layer."
    assert audit.unsupported_statements(sentence, {}, registered=[sentence]) == []
    assert audit.unsupported_statements(sentence, {}, registered=["`fit` passes `training=True` to each layer."]) \
        == [sentence]


def test_a_bold_lead_in_is_a_sentence_of_its_own():
    sentence = "`fit` passes `training=True` to every layer."
    assert audit.sentences(f"**What happens.** {sentence}") == ["**What happens.**", sentence]
    assert audit.unsupported_statements(f"**What happens.** {sentence}", {}, registered=[sentence]) == []


@pytest.mark.parametrize("markdown", [
    "`fit` passes `training=True` to every layer ([C55](claims_audit.ipynb#claim-C55)).",
    "The statistics moved in {glue:text}`moved_written` layers under `training=False`.",
    "BatchNormalization moved in {glue:text}`moved_columns` of the {glue:text}`columns` under `training=False`.",
    "With the remedy Dropout still drops, and accuracy was {glue:text}`val_accuracy`.",
    "BatchNormalization moved in a share of {glue:text}`share:.0%` of the runs.",
    "Does `training=False` still protect BatchNormalization?",
    "This chapter measures whether `training=False` protects BatchNormalization.",
    'The blog says "Setting training=False disables this dropout".',
    "How many BatchNormalization layers moved their statistics:",
    "```python\nx = base_model(inputs, training=False)  # keeps BatchNormalization in inference mode\n```",
    "The cell builds the model with `training=False` and a `Dropout(0.2)` head.",
])
def test_numbers_markers_questions_quotes_and_setups_are_not_flagged(markdown):
    assert audit.unsupported_statements(markdown, GLUED_VALUES) == []


def test_a_count_shows_its_noun_singular_for_one_and_reads_as_a_number():
    assert [str(Count(n, "column")) for n in (0, 1, 2)] == ["0 columns", "1 column", "2 columns"]
    assert repr(Count(1, "Keras 3 release")) == "1 Keras 3 release"  # what myst-nb glues as the value's text
    assert str(Count(3, "batch", "batches")) == "3 batches"
    sentence = "BatchNormalization moved in {glue:text}`n` columns under `training=False`."
    assert audit.unsupported_statements(sentence, {"n": Count(2, "column")}) == []
    with pytest.raises(ValueError, match="whole number"):
        Count(True, "column")


def test_a_marker_shown_as_code_is_not_a_citation():
    markdown = "Write ``[C54](claims_audit.ipynb#claim-C54) `` next to it; see [C12](claims_audit.ipynb#claim-C12)."
    assert audit.markers(markdown) == ["C12"]


# --- Every chapter -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_claim_links_cite_existing_claims_of_their_chapter_or_of_a_source(path):
    for claim_id in audit.markers(_markdown(path)):
        assert claim_id in audit.BY_ID, f"{path.stem} cites {claim_id}, which is not a claim"
        claim = audit.BY_ID[claim_id]
        assert not claim.by_the_book or claim.source == path.stem, \
            f"{path.stem} cites {claim_id}, a claim of {claim.source}"


BOOK_CLAIMS = [claim for claim in audit.CLAIMS if claim.by_the_book]


@pytest.mark.parametrize("claim", BOOK_CLAIMS, ids=lambda c: c.id)
def test_every_claim_of_the_book_is_a_sentence_of_its_chapter(claim):
    assert audit.registered_in(_markdown(BOOK / f"{claim.source}.ipynb"), claim.quote), \
        f"{claim.id}: its sentence is not in {claim.source} word for word: {claim.quote!r}"


def test_removing_a_registered_sentence_from_its_chapter_fails_the_audit():
    """C61's sentence taken out of its chapter: the audit names C61 missing, and only it."""
    claim = audit.BY_ID["C61"]
    markdown = _markdown(BOOK / f"{claim.source}.ipynb")
    assert audit.missing_claims(claim.source, markdown, audit.CLAIMS) == []
    # The sentence as the chapter wraps it: its words, with any run of whitespace between them.
    sentence = re.compile(r"\s+".join(map(re.escape, claim.quote.split())))
    assert len(sentence.findall(markdown)) == 1
    without = sentence.sub("", markdown)
    assert audit.missing_claims(claim.source, without, audit.CLAIMS) == [claim]


@pytest.fixture(scope="module")
def book_verdicts():
    from companion.versions import matrix

    return {v.claim.id: v for v in audit.verdicts(matrix.compute(progress=False), BOOK_CLAIMS)}


@pytest.mark.parametrize("claim", BOOK_CLAIMS, ids=lambda c: c.id)
def test_every_claim_of_the_book_holds_in_every_column_of_its_scope(claim, book_verdicts):
    verdict = book_verdicts[claim.id]
    assert verdict.overall == audit.HOLDS and not verdict.columns(None), \
        f"{claim.id} ({claim.scope.name}): held in {[c.label for c in verdict.columns(True)]}, failed in " \
        f"{[c.label for c in verdict.columns(False)]}, not measured in {[c.label for c in verdict.columns(None)]}"


def test_the_audit_knows_every_chapter():
    assert {path.stem for path in CHAPTERS} <= set(audit.CHAPTERS)


GLUED = audit.GLUE  # a value glued into a sentence (not a figure); the self-audit's own pattern


def test_the_glue_counter_counts_every_kind_of_inline_reference_by_its_name():
    assert GLUED.findall("{glue:text}`a:.3f` and {glue:md}`b`, {glue:any}`c`;\n```{glue:figure} d\n```") == \
        ["a", "b", "c"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_markdown_cell_is_stitched_from_more_than_eight_glued_values(path):
    """Prose written by hand with a few glued numbers: what differs by variant goes into a table or a figure."""
    crowded = [(i, len(GLUED.findall(cell.source))) for i, cell in enumerate(_cells(path, "markdown"))
               if len(GLUED.findall(cell.source)) > 8]
    assert not crowded, f"Markdown cells (index, glued values) of {path.stem}: {crowded}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_glued_count_of_columns_releases_or_rows_is_followed_by_its_noun(path):
    """"in 1 columns": a count of what varies by profile is glued with its noun (companion.core.counts.Count)."""
    assert not re.findall(r"\{glue:text\}`[^`]+` (?:columns|rows|releases|variants|Keras 3 releases)\b",
                          _markdown(path))


def test_no_chapter_types_a_count_of_rows():
    """"the last four rows" were five: such counts are glued."""
    for path in CHAPTERS:
        assert not re.search(r"\b(?:last|first) (?:two|three|four|five|six|seven) rows\b", _markdown(path)), path.stem


# --- The concept chapters show their Keras ---------------------------------------------------------------------------


def _code(name) -> ast.Module:
    """The chapter's code cells as one module (IPython magics and shell lines left out)."""
    lines = [line for cell in _cells(name, "code") for line in cell.source.splitlines()
             if not line.lstrip().startswith(("%", "!"))]
    return ast.parse("\n".join(lines))


def _calls(tree, attribute=None):
    return [node for node in ast.walk(tree) if isinstance(node, ast.Call)
            and (attribute is None or isinstance(node.func, ast.Attribute) and node.func.attr == attribute)]


def _shown_functions(tree) -> list:
    """The functions a chapter shows by their source (``notebook.source(module.function, ...)``), as objects."""
    import importlib

    shown = []
    imported = {alias.asname or alias.name: f"{node.module}.{alias.name}" for node in ast.walk(tree)
                if isinstance(node, ast.ImportFrom) and node.module for alias in node.names}
    for call in _calls(tree, "source"):
        for argument in call.args:
            if isinstance(argument, ast.Attribute) and isinstance(argument.value, ast.Name):
                shown.append(getattr(importlib.import_module(imported[argument.value.id]), argument.attr))
            elif isinstance(argument, ast.Name):
                module, _, name = imported[argument.id].rpartition(".")
                shown.append(getattr(importlib.import_module(module), name))
    return shown


def _code_and_shown(name) -> ast.Module:
    """The chapter's code cells and the source of the functions it shows, as one module."""
    import inspect

    tree = _code(name)
    return ast.parse("\n".join([ast.unparse(tree), *(inspect.getsource(f) for f in _shown_functions(tree))]))


@pytest.mark.parametrize("name", CONCEPT_CHAPTERS)
def test_concept_chapters_set_the_flags_in_executed_or_shown_code(name):
    tree = _code_and_shown(name)
    assert any(keyword.arg == "training" for call in _calls(tree) for keyword in call.keywords), \
        f"{name}: no call passes training= in a code cell"
    assert any(isinstance(target, ast.Attribute) and target.attr == "trainable"
               for node in ast.walk(tree) if isinstance(node, ast.Assign) for target in node.targets), \
        f"{name}: no code cell assigns .trainable ="
    assert _calls(tree, "compile") and _calls(tree, "fit"), f"{name}: no compile and fit in a code cell"
    assert any(isinstance(node, ast.Import) and any(alias.name == "keras" for alias in node.names)
               for node in ast.walk(_code(name))), f"{name}: the Keras code does not `import keras`"


def test_the_keras3_chapter_measures_around_its_fits():
    """Each ``fit`` of the chapter's small-model cells runs inside ``with probes.watching(...)``."""
    tree = _code("keras3_surprise")
    watched = {id(call) for node in ast.walk(tree) if isinstance(node, ast.With)
               and any(isinstance(item.context_expr, ast.Call) and isinstance(item.context_expr.func, ast.Attribute)
                       and item.context_expr.func.attr == "watching" for item in node.items)
               for call in _calls(node, "fit")}
    assert len(watched) == len(_calls(tree, "fit")) == 3


def test_the_keras3_chapter_shows_the_checks_and_the_remedy_from_their_one_definition():
    from companion.checks import fine_tuning, models
    from companion.flags import remedy

    tree = _code("keras3_surprise")
    shown = _shown_functions(tree)
    assert {fine_tuning.fine_tune, models.tutorial_model, remedy.freeze_batch_norm} <= set(shown)
    defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
    assert not defined & {"fine_tune", "tutorial_model", "freeze_batch_norm"}


@pytest.mark.parametrize("name", [*TUTORIAL_CHAPTERS, "introduction"])
def test_chapters_apply_the_remedy_with_its_one_definition(name):
    tree = _code(name)
    calls = [c for c in _calls(tree) if isinstance(c.func, ast.Name) and c.func.id == "freeze_batch_norm"]
    imported = [alias for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                and node.module == "companion.flags.remedy" for alias in node.names]
    assert calls and [alias.name for alias in imported] == ["freeze_batch_norm"], name
    assert not [node for node in ast.walk(tree) if isinstance(node, ast.For)
                and "BatchNormalization" in ast.unparse(node)], f"{name}: a loop of its own freezes BatchNormalization"


@pytest.mark.parametrize("name", TUTORIAL_CHAPTERS)
def test_tutorial_chapters_run_the_tutorials_keras_and_measure_every_fit(name):
    """A tutorial chapter's cells set the flags, compile and fit as the tutorial does (the recipe's model:
    tests/test_chapters_code.py), and every ``fit`` runs inside ``page.phase1(...)`` or ``page.fine_tuning(...)``."""
    tree = _code(name)
    assert any(isinstance(target, ast.Attribute) and target.attr == "trainable"
               for node in ast.walk(tree) if isinstance(node, ast.Assign) for target in node.targets)
    assert len(_calls(tree, "compile")) >= 3 and len(_calls(tree, "fit")) >= 3
    measured = {id(call) for node in ast.walk(tree) if isinstance(node, ast.With)
                and any(isinstance(item.context_expr, ast.Call) and isinstance(item.context_expr.func, ast.Attribute)
                        and item.context_expr.func.attr in ("phase1", "fine_tuning") for item in node.items)
                for call in _calls(node, "fit")}
    assert {id(call) for call in _calls(tree, "fit")} == measured, f"{name}: a fit runs outside the page's measuring"


def test_the_recommended_remedy_always_drops_training_false():
    """On keras-nightly, keeping `training=False` with the remedy turns the head's Dropout off: every chapter that
    recommends the remedy also says to call the base without it."""
    for path in CHAPTERS:
        text = re.sub(r"\s+", " ", _markdown(path))
        for sentence in re.findall(r"[^.]*trainable = False` on every BatchNormalization layer[^.]*then compile", text):
            assert re.search(r"without (?:`training=False`|a `training` argument)|as `base\(x\)`", sentence), \
                f"{path.stem}: {sentence}"


def test_no_chapter_types_which_keras_is_affected_outside_a_registered_sentence():
    """"on Keras 3 releases" typed by hand was unchecked: a sentence that names the Keras versions a behaviour holds
    on is a registered claim, whose verdict is computed over that scope."""
    registered = {audit.prose.normalised(c.quote) for c in BOOK_CLAIMS}
    for path in CHAPTERS:
        for sentence in audit.sentences(_markdown(path)):
            if re.search(r"\b[Oo]n (?:every )?Keras 3(?: releases?)?\b(?! port)", sentence):
                assert audit.prose.normalised(sentence) in registered, f"{path.stem}: {sentence}"
