"""Shared fixtures: paths to the repo, its recipes and ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED / "data").is_dir():
        pytest.skip(f"{SHARED / 'data'} is absent (tests that need ../shared skip without it)")
    return SHARED / "data"


# --- opening a report in headless Chromium -------------------------------------------
# The reports promise to be self-contained pages a person can read: these tests open them
# in a real browser, with every network request refused and recorded, and check that the
# page raises no console error and paints its charts. Chromium comes from Debian's
# `chromium` package (.ci/run installs it) and is driven by Playwright, which is told to
# use that binary (it never downloads one). Without Chromium the tests skip, unless
# SUPERLAB_REQUIRE_BROWSER=1 (as .ci/run sets) turns the skip into a failure.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture
def open_in_browser(tmp_path: Path):
    """``open_in_browser(html_path)``: load it in headless Chromium; what the page did.

    Returns a dict: ``errors`` (console errors and warnings, uncaught exceptions),
    ``requests`` (every URL the page asked for other than the file itself; all refused),
    ``charts`` (per ``<svg>``: its ``box`` in page pixels and the share of the screenshot's
    pixels in that box that are ``painted``, unlike the box's commonest colour), ``text``
    (the page's visible text) and ``screenshot`` (the full-page PNG's path).
    """
    import os

    chromium = _chromium()
    required = os.environ.get("SUPERLAB_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if chromium is None or sync_playwright is None:
        why = "no chromium on PATH" if chromium is None else "playwright is not installed"
        if required:
            pytest.fail(f"SUPERLAB_REQUIRE_BROWSER=1 but {why}")
        pytest.skip(f"{why} (apt-get install chromium; pip install playwright)")

    def run(path: Path) -> dict:
        url = path.resolve().as_uri()
        errors: list[str] = []
        requests: list[str] = []
        shot = tmp_path / f"{path.stem}.png"
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.on(
                    "console",
                    lambda m: (
                        errors.append(f"console.{m.type}: {m.text}")
                        if m.type in ("error", "warning", "assert")
                        else None
                    ),
                )
                page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))

                def route(r) -> None:
                    if r.request.url == url:
                        r.continue_()
                    else:
                        requests.append(r.request.url)
                        r.abort()

                page.route("**/*", route)
                page.goto(url, wait_until="load")
                charts = page.eval_on_selector_all(
                    "svg",
                    "els => els.map(e => { const r = e.getBoundingClientRect(); return"
                    " [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height]; })",
                )
                text = page.inner_text("body")
                page.screenshot(path=str(shot), full_page=True)
            finally:
                browser.close()
        return {
            "errors": errors,
            "requests": requests,
            "charts": [{"box": box, "painted": _painted(shot, box)} for box in charts],
            "text": text,
            "screenshot": shot,
        }

    return run


def _painted(png: Path, box: list[float]) -> float:
    """Share of pixels in ``box`` (x, y, w, h) that differ from the box's commonest colour."""
    from PIL import Image

    with Image.open(png) as im:
        x, y, w, h = (round(v) for v in box)
        region = im.convert("RGB").crop((x, y, x + w, y + h))
        counts = region.getcolors(maxcolors=w * h) or []
    if not counts:
        return 0.0
    total = sum(n for n, _ in counts)
    return 1.0 - max(n for n, _ in counts) / total
