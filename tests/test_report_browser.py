"""The report as a reader sees it: rendered in headless Chromium (Playwright), on screen and as printed.

Checks that every image loads, that no table is wider than the page (at 1280 px and at the A4 print width),
and that no raw escape sequence (a literal backslash-n or backslash-u) or internal validation id reaches the
reader. Screenshots (screen and print) are kept in a temporary folder whose path is printed (CI keeps it as an
artefact when ``PKCSF_ARTIFACTS`` names a folder).

Needs the ``playwright`` Python package (``pip install -e ".[test]"``) and a Chromium binary: Debian's
``chromium`` package (``apt-get install -y chromium``, as ``.ci/run`` does) or ``PKCSF_CHROMIUM``; the test
is skipped, with the reason, when either is missing (Playwright cannot download browsers here).
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("matplotlib")
playwright_sync = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                                      "(pip install -e '.[test]')")

from pkcsf import report as R  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: A4 (210 mm) minus 2 x 14 mm margins, at 96 CSS px per inch
A4_PRINT_WIDTH = round((210 - 28) / 25.4 * 96)


def _chromium() -> str | None:
    for c in (os.environ.get("PKCSF_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
              shutil.which("chromium-browser")):
        if c and os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


@pytest.fixture(scope="session")
def report_html(tmp_path_factory):
    """The report, built once per test session with 3 virtual patients per arm and low-resolution figures."""
    out = tmp_path_factory.mktemp("browser") / "report"
    mp = pytest.MonkeyPatch()
    mp.setattr(R.sections, "_DPI", 60)
    try:
        path = R.build_report(out, subjects=3, seed=7, progress=False)
    finally:
        mp.undo()
    return path


@pytest.fixture(scope="session")
def browser():
    exe = _chromium()
    if exe is None:
        pytest.skip("no Chromium binary (install Debian's chromium: apt-get install -y chromium, "
                    "or set PKCSF_CHROMIUM)")
    with playwright_sync.sync_playwright() as p:
        try:
            b = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS)
        except Exception as e:  # a broken or incompatible browser is an environment problem, said as such
            pytest.skip(f"Chromium at {exe} does not start under Playwright: {str(e).splitlines()[0]}")
        yield b
        b.close()


@pytest.fixture(scope="session")
def shots():
    base = os.environ.get("PKCSF_ARTIFACTS")
    folder = Path(base) / "report_screenshots" if base else Path(tempfile.mkdtemp(prefix="pkcsf-report-shots-"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nreport screenshots: {folder}")
    return folder


_OVERFLOW_JS = """() => Array.from(document.querySelectorAll('table')).map((t, i) => {
    const box = t.closest('.tw') || t.parentElement;
    const main = document.querySelector('main');
    return {i: i, table: t.scrollWidth, box: box.clientWidth, main: main.clientWidth,
            head: (t.querySelector('th') || {}).textContent || ''};
})"""


def _overflowing(page) -> list:
    return [r for r in page.evaluate(_OVERFLOW_JS) if r["table"] > r["box"] + 1 or r["table"] > r["main"] + 1]


def test_images_load_and_tables_fit_on_screen(report_html, browser, shots):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(report_html.as_uri(), wait_until="load")
    imgs = page.evaluate("() => Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, "
                         "i.naturalWidth])")
    assert len(imgs) >= 14
    broken = [src for src, done, w in imgs if not done or w == 0]
    assert not broken, f"images that do not load: {broken}"
    bad = _overflowing(page)
    page.screenshot(path=str(shots / "report_1280px.png"), full_page=True)
    assert not bad, f"tables wider than the page at 1280 px: {bad}"
    page.close()


def test_tables_fit_in_print(report_html, browser, shots):
    page = browser.new_page(viewport={"width": A4_PRINT_WIDTH, "height": 1100})
    page.emulate_media(media="print")
    page.goto(report_html.as_uri(), wait_until="load")
    bad = _overflowing(page)
    page.screenshot(path=str(shots / "report_print_a4.png"), full_page=True)
    page.pdf(path=str(shots / "report_a4.pdf"), format="A4", print_background=True)
    assert not bad, f"tables wider than an A4 page in print: {bad}"
    page.close()


def test_no_raw_escapes_or_internal_ids(report_html, browser):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(report_html.as_uri(), wait_until="load")
    text = page.inner_text("body")
    page.close()
    assert "\\n" not in text and "\\u" not in text, "raw escape sequences shown to the reader"
    ids = pd.read_csv(report_html.parent / "validation.csv")["id"]
    leaked = [i for i in ids if re.search(rf"\b{re.escape(i)}\b", text)]
    assert not leaked, f"internal observation ids shown to the reader: {leaked[:5]}"
    for remark in ("flagged from memory", "from the dossier", "nan"):
        assert not re.search(rf"\b{re.escape(remark)}\b", text), remark
