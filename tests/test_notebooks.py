"""The chapters as notebooks: their structure, papermill parameters, nbval's guard, and the built book.

nbval itself executes every chapter in CI (`pytest --nbval-lax book`); these tests check what nbval
cannot: that the committed notebooks are in the shape nbval relies on, that papermill injection works and
rejects bad names, that an altered fact output is caught, and that the HTML book builds with every chapter.
"""

import re
import subprocess
import sys

import nbformat
import papermill
import pytest
import yaml
from conftest import BOOK, PAGES_WITHOUT_FIGURES, ROOT

from companion import audit
from companion.pages import chapters
from companion.pages.notebook import is_fact_cell


def _toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"], *(chapter["file"] for chapter in toc["chapters"])]


CHAPTERS = [ROOT / f"{name}.ipynb" for name in _toc_files()]


def test_every_notebook_is_in_the_table_of_contents():
    assert sorted(BOOK.glob("*.ipynb")) == sorted(CHAPTERS)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_first_code_cell_is_the_parameters_cell_then_start(path):
    code = [c for c in nbformat.read(path, 4).cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    assert "notebook.start(globals()" in code[1].source


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_only_fact_cells_carry_committed_outputs(path):
    for cell in nbformat.read(path, 4).cells:
        if cell.cell_type != "code":
            continue
        if is_fact_cell(cell):
            assert cell.outputs, f"fact cell without reference output: {cell.source[:80]!r}"
            assert all(o.output_type != "error" for o in cell.outputs)
        else:
            assert not cell.outputs, f"committed output in a non-fact cell: {cell.source[:80]!r}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_fact_cells_are_marked_by_their_tag_not_by_a_comment_a_reader_sees(path):
    cells = nbformat.read(path, 4).cells
    assert not [c.source[:60] for c in cells if c.cell_type == "code" and "NBVAL_CHECK_OUTPUT" in c.source]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_every_statement_of_behaviour_is_a_registered_claim_or_has_a_glued_number(path, executed_chapters):
    """The self-audit (companion.audit.prose) on the executed chapter, whose glued values say which glued names are
    numbers, with the sentences the chapter registered as claims of the book."""
    executed = nbformat.read(executed_chapters / path.name, 4)
    markdown = "\n\n".join(cell.source for cell in executed.cells if cell.cell_type == "markdown")
    registered = [claim.quote for claim in audit.CLAIMS if claim.source == path.stem]
    assert audit.unsupported_statements(markdown, chapters.glued_values(executed), registered) == []


def _execute(path, tmp_path, **parameters):
    return papermill.execute_notebook(
        str(path), str(tmp_path / path.name), parameters=parameters, cwd=str(BOOK), progress_bar=False,
        kernel_name="python3",
    )


def test_papermill_injects_parameters(tmp_path):
    executed = _execute(BOOK / "how_it_is_verified.ipynb", tmp_path, profile="full", seed=3)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and 'profile = "full"' in injected[0].source
    stamp = "".join(o.get("data", {}).get("text/plain", "") for c in executed.cells for o in c.get("outputs", []))
    assert "profile 'full'" in stamp


@pytest.mark.parametrize(
    "parameters, message",
    [
        ({"profile": "tiny"}, "unknown profile 'tiny'; valid profiles: smoke, offline, full"),
        ({"epochs": 3}, "unknown parameter 'epochs'; valid parameters: profile, seed"),
    ],
)
def test_bad_parameters_fail_with_the_valid_names(tmp_path, parameters, message):
    with pytest.raises(papermill.PapermillExecutionError) as error:
        _execute(BOOK / "how_it_is_verified.ipynb", tmp_path, **parameters)
    assert message in str(error.value)


def test_nbval_catches_an_altered_fact(tmp_path):
    """Tamper with one fact output in a copy of a chapter: nbval must fail on exactly that cell."""
    source = BOOK / "trainable_versus_training.ipynb"
    nb = nbformat.read(source, 4)
    fact = next(c for c in nb.cells if is_fact_cell(c) and "normalised with" in c.source)
    output = fact.outputs[0]
    for mime in ("text/plain", "text/html"):
        output.data[mime] = output.data[mime].replace("batch statistics", "moving statistics", 1)
    copy = tmp_path / source.name
    nbformat.write(nb, copy)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
         "-q", str(copy)],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert done.returncode == 1, done.stdout[-3000:]
    assert re.search(r"1 failed", done.stdout), done.stdout[-3000:]
    assert "batch statistics" in done.stdout


def test_book_builds_with_every_chapter(built_book):
    """Jupyter Book 1 executed every chapter offline (a failing cell fails the build); each page has its stamp,
    its fact tables and its figures."""
    for name in _toc_files():
        page = (built_book / f"{name}.html").read_text()
        assert "Traceback (most recent call last)" not in page and 'class="output traceback"' not in page, name
        assert "Verified with TensorFlow" in page, name
        assert 'class="fact-table"' in page, name
        if name not in PAGES_WITHOUT_FIGURES:
            assert "<figcaption" in page and "<img" in page, f"{name} has no captioned figure"


def test_the_api_page_has_an_entry_for_every_name_its_table_links_to(built_book):
    """Sphinx autodoc ran on the API page: each name of its table links to an entry built from the docstring (an
    ``id`` Sphinx gives it), and no directive was left as text (as when it sat in a Markdown cell)."""
    page = (built_book / "book" / "api.html").read_text()
    anchors = re.findall(r'href="#(companion\.[\w.]+)"', page)
    assert len(anchors) >= 10, anchors
    assert [anchor for anchor in anchors if f'id="{anchor}"' not in page] == []
    assert not re.search(r"\.\. (py:|auto)\w+::", page)
