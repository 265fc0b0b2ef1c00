"""Browser check of the built book: every page in headless Chromium, with no network.

Serves the HTML on 127.0.0.1, loads each page of the table of contents, and asserts: no
JavaScript errors and no request leaving 127.0.0.1, every image loaded, every formula typeset by
MathJax, and — over the whole book — at least one ipywidget and one plotly figure actually
rendered. A full-page screenshot of each page is saved.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlparse

CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run",
                  "--disable-quic"]
PAGE_TIMEOUT_MS = 60_000
SETTLE_MS = 1_500
"""Time given to scripts after the page's load event (widgets and plots render asynchronously)."""

_PAGE_STATE_JS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const main = document.querySelector('main') || document.body;
  const imgs = Array.from(main.querySelectorAll('img'));
  return {
    images: imgs.length,
    broken: imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src.slice(0, 120)),
    mathSource: main.querySelectorAll('.math').length,
    mathRendered: main.querySelectorAll('mjx-container').length,
    mathErrors: main.querySelectorAll('mjx-merror').length,
    widgetViews: main.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
    widgetsRendered: main.querySelectorAll('.jupyter-widgets').length,
    plotlyDivs: main.querySelectorAll('.tsrobust-plotly').length,
    plotlyRendered: main.querySelectorAll('.tsrobust-plotly.js-plotly-plot').length,
  };
}"""


class CheckError(AssertionError):
    pass


def _serve(directory: Path):
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def find_chromium() -> str:
    for candidate in (os.environ.get("TSROBUST_CHROMIUM"), "chromium", "chromium-browser",
                      "google-chrome"):
        if candidate and shutil.which(candidate):
            return shutil.which(candidate)
    raise CheckError(
        "no Chromium found: install it (Debian: apt-get install chromium) or set TSROBUST_CHROMIUM"
    )


def check_book(html: Path, screenshots: Path, pages: list[str], *,
               whole_book: bool = True) -> dict[str, dict]:
    """Load every page; raise ``CheckError`` listing every problem found. Returns page states.

    ``whole_book``: also require at least one rendered ipywidget and plotly figure in the book
    (off when only some chapters were built).
    """
    from playwright.sync_api import sync_playwright

    html = Path(html)
    if not (html / "index.html").exists():
        raise CheckError(f"no built book at {html}: run python -m tsrobust.book build first")
    screenshots.mkdir(parents=True, exist_ok=True)
    server = _serve(html)
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    problems: list[str] = []
    states: dict[str, dict] = {}
    try:
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile_dir:
            context = pw.chromium.launch_persistent_context(
                profile_dir, executable_path=find_chromium(), headless=True,
                args=CHROMIUM_FLAGS, viewport={"width": 1280, "height": 900},
            )
            for page_file in pages:
                url = base + page_file + ".html"
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e, errors=errors: errors.append(f"JS error: {e}"))
                page.on("console", lambda m, errors=errors: errors.append(f"console: {m.text}")
                        if m.type == "error" and "Failed to load resource" not in m.text else None)
                page.on("response", lambda r, errors=errors: errors.append(
                    f"HTTP {r.status} for {r.url[:160]}") if r.status >= 400 else None)

                def route(r, errors=errors):
                    host = urlparse(r.request.url).hostname
                    if host not in (None, "127.0.0.1") and not r.request.url.startswith("data:"):
                        errors.append(f"request leaves the machine: {r.request.url[:120]}")
                        return r.abort()
                    return r.continue_()

                page.route("**/*", route)
                # "load": the whole document is parsed (networkidle alone can come while the
                # parser still waits on a large script); then give late scripts a moment.
                response = page.goto(url, wait_until="load", timeout=PAGE_TIMEOUT_MS)
                page.wait_for_timeout(SETTLE_MS)
                if response is None or response.status != 200:
                    problems.append(f"{page_file}: HTTP {response and response.status}")
                    page.close()
                    continue
                state = page.evaluate(_PAGE_STATE_JS)
                if state["widgetViews"] and not state["widgetsRendered"]:
                    page.wait_for_timeout(3000)  # the widget manager renders asynchronously
                    state = page.evaluate(_PAGE_STATE_JS)
                states[page_file] = state
                page.screenshot(path=str(screenshots / (Path(page_file).name + ".png")),
                                full_page=True)
                page.close()
                problems += [f"{page_file}: {e}" for e in errors]
                if state["broken"]:
                    problems.append(f"{page_file}: images not loaded: {state['broken']}")
                if page_file.startswith("notebooks/") and state["images"] == 0 \
                        and state["plotlyDivs"] == 0:
                    problems.append(f"{page_file}: a chapter without any figure")
                if state["mathSource"] and (state["mathRendered"] < state["mathSource"]
                                            or state["mathErrors"]):
                    problems.append(
                        f"{page_file}: formulas not typeset ({state['mathRendered']} of "
                        f"{state['mathSource']}, {state['mathErrors']} errors)"
                    )
                if state["plotlyDivs"] != state["plotlyRendered"]:
                    problems.append(f"{page_file}: {state['plotlyDivs']} plotly figures, "
                                    f"{state['plotlyRendered']} drawn")
                if state["widgetViews"] and state["widgetsRendered"] == 0:
                    problems.append(f"{page_file}: widgets saved but none rendered")
            context.close()
    finally:
        server.shutdown()
    if whole_book and not any(s["widgetsRendered"] for s in states.values()):
        problems.append("no page of the book renders an ipywidget")
    if whole_book and not any(s["plotlyRendered"] for s in states.values()):
        problems.append("no page of the book renders a plotly figure")
    for name, s in states.items():
        print(f"[check] {name}: {s['images']} images, {s['mathRendered']}/{s['mathSource']} "
              f"formulas, {s['widgetsRendered']} widgets, {s['plotlyRendered']} plotly figures")
    if problems:
        raise CheckError("browser check failed:\n  " + "\n  ".join(problems))
    print(f"[check] {len(states)} pages passed; screenshots in {screenshots}")
    return states

