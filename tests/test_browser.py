"""The built book in a real browser: every chapter renders its tables and figures, shows no error.

Serves the HTML on loopback and opens each page in headless Chromium (Debian's `chromium` and
`chromium-driver`, installed by `make setup` where it can). Screenshots are kept in
`_build/test-artifacts/screenshots/`.
"""

import functools
import http.server
import os
import re
import shutil
import threading
from urllib.parse import unquote, urlparse

import pytest
import yaml
from conftest import PAGES_WITHOUT_FIGURES, ROOT
from PIL import Image

from companion.core import plots

# Debian's chromium here; the Chrome that hosted CI runners ship (with its driver in $CHROMEWEBDRIVER) elsewhere.
CHROMIUM = shutil.which("chromium") or shutil.which("google-chrome")
CHROMEDRIVER = shutil.which("chromedriver") or shutil.which("chromedriver", path=os.environ.get("CHROMEWEBDRIVER"))
SCREENSHOTS = ROOT / "_build" / "test-artifacts" / "screenshots"
READER_WINDOW = (1400, 1000)  # width and height in CSS px: the width at which every table must fit

if not (CHROMIUM and CHROMEDRIVER):
    reason = "Debian's chromium and chromium-driver are needed: apt-get install chromium chromium-driver"
    if os.environ.get("CI"):
        raise RuntimeError(reason)  # CI must run the browser test, never skip it
    pytest.skip(reason, allow_module_level=True)


def _pages():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [toc["root"], *(c["file"] for c in toc["chapters"])]


@pytest.fixture(scope="module")
def server(built_book):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(built_book))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size={},{}".format(*READER_WINDOW),
                 f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


# Markup that reached the reader as text: a MyST role or directive that was not rendered.
RAW_MYST = re.compile(r"\{(glue|glue:text|glue:md|glue:figure|doc|py:\w+|ref|numref)\}`|```\{\w")
SMALLEST_READABLE_PX = 9


_photographed: set[str] = set()


def _open(server, browser, page):
    """Load ``page`` in a window 1,400 px wide, as a reader's (with its scrollbar); the first time in a session, also
    photograph the whole page, in a window as tall as the page. The checks run in the reader's window: what they
    measure (layout, text, sizes) does not depend on the window's height, and Chromium painted a page as tall as the
    window at every load, which took most of this test's time on 2 CPU cores (48 loads: 42 s of CPU against 9)."""
    browser.get(f"{server}/{page}.html")
    if page not in _photographed:  # once per page and session: a screenshot of a long page takes seconds
        height = browser.execute_script("return document.documentElement.scrollHeight")
        browser.set_window_size(READER_WINDOW[0], min(height, 20000))
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOTS / f"{page.split('/')[-1]}.png"))
        _photographed.add(page)
        browser.set_window_size(*READER_WINDOW)


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.split("/")[-1])
def test_page_renders_tables_and_figures_without_errors(server, browser, page):
    from selenium.webdriver.common.by import By

    _open(server, browser, page)
    text = browser.find_element(By.TAG_NAME, "body").text
    assert "Traceback" not in text and not browser.find_elements(By.CSS_SELECTOR, ".output.traceback, .output.error")
    assert "Verified with TensorFlow" in text
    # Markup is only wrong outside code: code cells and inline code may show MyST on purpose.
    prose = browser.execute_script("const page = document.body.cloneNode(true);"
                                   "page.querySelectorAll('pre, code, .highlight').forEach(e => e.remove());"
                                   "return page.innerText;")
    assert not RAW_MYST.search(prose), f"raw MyST markup on {page}: {RAW_MYST.search(prose)[0]!r}"
    tables = browser.find_elements(By.CSS_SELECTOR, "table.fact-table")
    assert tables and all(t.is_displayed() for t in tables[:1])
    images = browser.find_elements(By.CSS_SELECTOR, "figure img, .cell_output img")
    loaded = [browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", i)
              for i in images]
    assert all(loaded), f"{sum(not x for x in loaded)} figure(s) failed to load on {page}"
    if page not in PAGES_WITHOUT_FIGURES:
        assert images, f"no figure on {page}"
    uncaptioned = browser.execute_script(
        "return Array.from(document.querySelectorAll('figure img, .cell_output img')).filter(image => {"
        "  const caption = image.closest('figure')?.querySelector('figcaption');"
        "  return !caption || !caption.innerText.trim(); }).length;")
    assert not uncaptioned, f"{uncaptioned} figure(s) without a caption on {page}"
    # No machine's paths: the data folder is named in the README and the set-up, never on a page.
    data_folder = os.environ.get("COMPANION_DATA_DIR")
    if data_folder:
        assert os.path.abspath(data_folder) not in browser.page_source, f"the data folder's path is shown on {page}"
    # Readers' buttons: download of the .ipynb and a Colab launch link built from the repository URL.
    source = browser.page_source
    assert "colab.research.google.com" in source and ".ipynb" in source


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.split("/")[-1])
def test_every_figure_is_readable_at_the_width_the_page_shows_it(server, browser, built_book, page):
    """Each figure's smallest text (recorded in its PNG by companion.core.plots) is at least 9 px as displayed."""
    from selenium.webdriver.common.by import By

    _open(server, browser, page)
    for image in browser.find_elements(By.CSS_SELECTOR, "figure img, .cell_output img"):
        shown = browser.execute_script("return arguments[0].getBoundingClientRect().width", image)
        path = built_book / unquote(urlparse(image.get_attribute("src")).path).lstrip("/")
        with Image.open(path) as png:
            natural, recorded = png.width, png.text.get(plots.SMALLEST_FONT_KEY)
        assert recorded is not None, f"{path.name} on {page} was not drawn through companion.core.plots"
        rendered = float(recorded) * shown / natural
        assert rendered >= SMALLEST_READABLE_PX, (
            f"{path.name} on {page}: smallest text {rendered:.1f} px as displayed ({shown:.0f} of {natural} px wide)")


# The first word of a fact table's cells that the browser broke across two lines, or null. A word is a run of
# letters, digits, dots and underscores ("keras", "3.0.5", "dev2026102704"): a break after a hyphen or a bracket
# ("non-" / "trainable", "metrics=[" / "keras...") falls between words, as in print; a break inside one does not.
WORD_BROKEN_ACROSS_LINES = """
for (const cell of document.querySelectorAll('table.fact-table td, table.fact-table th')) {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    for (const match of node.data.matchAll(/[\\w.]+/g)) {
      const range = document.createRange();
      range.setStart(node, match.index);
      range.setEnd(node, match.index + match[0].length);
      // Two lines: boxes whose tops differ by more than half a line (glyphs of another font sit a pixel off).
      const boxes = Array.from(range.getClientRects());
      if (boxes.some(box => Math.abs(box.top - boxes[0].top) > boxes[0].height / 2)) return match[0];
    }
  }
}
return null;
"""


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.split("/")[-1])
def test_no_table_is_wider_than_its_column_and_no_cell_breaks_a_word(server, browser, page):
    """A wide table scrolls inside its own box (the box fits the column); its cells wrap between words only."""
    from selenium.webdriver.common.by import By

    _open(server, browser, page)
    column = browser.execute_script(
        "return (document.querySelector('.bd-article') || document.querySelector('article') || document.body)"
        ".getBoundingClientRect().width")
    for table in browser.find_elements(By.CSS_SELECTOR, "table.fact-table"):
        width = browser.execute_script("return arguments[0].getBoundingClientRect().width", table)
        assert width <= column + 1, f"a table on {page} is {width:.0f} px wide, its column {column:.0f} px"
    broken = browser.execute_script(WORD_BROKEN_ACROSS_LINES)
    assert broken is None, f"a table cell on {page} breaks the word {broken!r} across two lines"


def test_every_claim_link_lands_on_its_row_of_the_audit(server, browser):
    """The chapters cite claims as [C12](claims_audit.ipynb#claim-C12): each link's fragment is a row of the table."""
    from selenium.webdriver.common.by import By

    cited = set()
    for page in _pages():
        _open(server, browser, page)
        cited |= {unquote(urlparse(a.get_attribute("href")).fragment)
                  for a in browser.find_elements(By.CSS_SELECTOR, "a[href*='claims_audit.html#claim-']")}
    assert cited, "no chapter links to a claim"
    _open(server, browser, "book/claims_audit")
    missing = sorted(f for f in cited if not browser.find_elements(By.ID, f))
    assert not missing, f"claim links without a row on the audit page: {missing}"


def test_every_evidence_link_of_the_audit_lands_on_its_row_of_the_version_matrix(server, browser):
    """The matrix is shown once, on the chapter on Keras versions; the audit's evidence cells link to its rows."""
    from selenium.webdriver.common.by import By

    _open(server, browser, "book/claims_audit")
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a[href*='#check-']")]
    assert links, "the audit links to no evidence row"
    assert {urlparse(href).path.rsplit("/", 1)[-1] for href in links} == {"keras_versions.html"}
    _open(server, browser, "book/keras_versions")
    missing = sorted({unquote(urlparse(href).fragment) for href in links
                      if not browser.find_elements(By.ID, unquote(urlparse(href).fragment))})
    assert not missing, f"evidence links without a row of the version matrix: {missing}"


# What a reader should not see of a chapter's plumbing: set-up, injected parameters, glue and display calls.
PLUMBING = ("notebook.start(", "glue_values(", "glue_figure(", "glue(", "# Parameters", "%pip install", "page.glue(",
            "Markdown(", "weights_note(", "weights_line(", "page.provenance(")


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.split("/")[-1])
def test_no_plumbing_is_shown(server, browser, page):
    from selenium.webdriver.common.by import By

    _open(server, browser, page)
    shown = [cell.text for cell in browser.find_elements(By.CSS_SELECTOR, ".cell_input") if cell.is_displayed()]
    found = sorted({marker for text in shown for marker in PLUMBING if marker in text})
    assert not found, f"plumbing shown on {page}: {found}"


def test_search_page_exists(built_book):
    assert (built_book / "search.html").is_file()


def test_the_summary_page_shows_its_tables_and_launches_from_the_books_home(server, browser):
    """The one-page summary: its fact tables (the matrix's rows on the override, the two-by-two, the advice) and the
    remedy's code render, it links to the pages with the whole matrix and every way, and the launch buttons open
    this very notebook from the repository _config.yml names (Colab and Binder)."""
    from selenium.webdriver.common.by import By

    from companion.pages import home

    _open(server, browser, "book/summary")
    tables = browser.find_elements(By.CSS_SELECTOR, "table.fact-table")
    texts = [table.text for table in tables]
    for shown in ("fine-tuned: BN moved", "batch statistics", "remedy + base(x)"):
        assert any(shown in text for text in texts), (shown, [text[:80] for text in texts])
    hrefs = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a[href]")]
    assert any(h.endswith("keras_versions.html") for h in hrefs), hrefs
    assert any(h.endswith("is_my_model_affected.html") for h in hrefs), hrefs
    assert "def freeze_batch_norm" in browser.find_element(By.TAG_NAME, "body").text
    owner, name = home.read().owner_and_name
    branch = home.read().branch
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "a[href]")]
    colab = f"https://colab.research.google.com/github/{owner}/{name}/blob/{branch}/book/summary.ipynb"
    assert colab in links, [link for link in links if "colab" in link]
    binder = [link for link in links if link.startswith(f"https://mybinder.org/v2/gh/{owner}/{name}/{branch}")]
    assert binder and "book/summary.ipynb" in binder[0], [link for link in links if "binder" in link]
