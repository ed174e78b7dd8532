"""The dashboard as a user sees it: `llmvigil dashboard` on the demo's store, each page in
headless Chromium (Debian's, driven by playwright), screenshots kept in the test's folder."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from llmvigil.dashboard.routes import PAGES
from llmvigil.demo import DEMO_APP
from llmvigil.storage.store import open_store
from tests.dashboard.fixture_store import PROBES
from tests.storage.spans_factory import make_span

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
#: OFFLINE.md: without these Chromium's own connections are refused on a closed network.
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    assert Path(CHROMIUM).exists(), "install Chromium: apt-get install -y chromium (.ci/run does)"
    folder = tmp_path_factory.mktemp("dashboard")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLMVIGIL_")}
    command = [sys.executable, "-m", "llmvigil.cli"]
    subprocess.run([*command, "demo", "--requests", "240"], cwd=folder, env=env, check=True,
                   capture_output=True, timeout=600)  # fmt: skip
    url = f"duckdb:///{folder / 'llmvigil-demo.duckdb'}"
    with open_store(url) as store:  # spans whose text would run as HTML or Markdown
        latest = max(s["start_time"] for s in store.spans(limit=None))
        store.append_spans(
            [make_span(i, span_id=f"probe{i}", trace_id="probe-trace", app=DEMO_APP,
                       start_time=latest, end_time=latest, input_text=p, output_text=p)
             for i, p in enumerate(PROBES)]
        )  # fmt: skip
    port = _free_port()
    log = (folder / "dashboard.log").open("w")
    process = subprocess.Popen(
        [*command, "dashboard", "--store", url, "--port", str(port)],
        cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/_stcore/health", timeout=2)
            break
        except OSError:
            assert process.poll() is None, (folder / "dashboard.log").read_text()
            time.sleep(0.5)
    yield base, folder
    process.terminate()
    process.wait(30)
    # A clean exit releases the store: the listen file is gone.
    assert not (folder / "llmvigil-demo.duckdb.listen.json").exists()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        chromium = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def _load(browser, url: str, shot: Path, plots: int = 0):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    outside: list[str] = []
    page.on("request", lambda r: r.url.startswith("http") and "127.0.0.1" not in r.url
            and outside.append(r.url))  # fmt: skip
    page.goto(url)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning'] h1",
                           timeout=90_000)  # fmt: skip
    if plots:
        page.wait_for_function(f"document.querySelectorAll('.js-plotly-plot').length >= {plots}",
                               timeout=60_000)  # fmt: skip
    page.wait_for_timeout(500)
    page.screenshot(path=str(shot), full_page=True)
    body = page.inner_text("body")
    assert "Traceback" not in body
    assert page.locator("[data-testid='stException']").count() == 0
    assert not outside, f"the page called out: {outside}"
    return page, body


@pytest.mark.parametrize("route, title, path", PAGES)
def test_each_page_loads_in_chromium_with_its_title_and_no_error(
    served, browser, route, title, path
):
    base, folder = served
    plots = {"overview": 4, "quality": 3, "drift": 1}.get(path, 0)
    page, body = _load(browser, f"{base}/{path}?range=24h", folder / f"{path}.png", plots)
    assert page.locator("h1").first.inner_text() == title
    assert page.url.startswith(f"{base}/{path}")
    assert Path(folder / f"{path}.png").stat().st_size > 20_000
    expected = {
        "overview": ["Calls", "Error rate", "Latency p95 (ms)", "Cost (USD)"],
        "metrics": ["Time grain", "Download CSV"],
        "quality": ["relevance", "toxicity", "Worst spans"],
        "drift": ["Flagged", "New topics"],
        "traces": ["Search prompts and responses"],
        "alerts": ["Firing now", "Events", "Deliveries", "Hook runs"],
        "sessions": ["Select a session"],
    }[path]
    for text in expected:
        assert text in body, text
    page.close()


def test_the_overview_counts_what_the_store_holds(served, browser):
    base, folder = served
    page, _ = _load(browser, f"{base}/overview?range=30d&app={DEMO_APP}", folder / "o.png")
    assert page.locator("[data-testid='stMetricLabel']").first.inner_text() == "Calls"
    calls = page.locator("[data-testid='stMetricValue']").first.inner_text()
    # 240 requests, each one model call (the chain and retrieval spans are not counted).
    assert int(calls.replace(",", "")) == 240 + len(PROBES)
    page.close()


def test_the_root_opens_the_overview_keeping_the_view(served, browser):
    base, folder = served
    page, _ = _load(browser, f"{base}/?range=7d", folder / "root.png")
    assert page.url.startswith(f"{base}/overview") and "range=7d" in page.url
    page.close()


def test_prompts_that_hold_html_or_markdown_render_as_text_and_run_nothing(served, browser):
    base, folder = served
    page, _ = _load(browser, f"{base}/traces?range=24h&trace=probe-trace", folder / "xss.png")
    # Code blocks fill in after the script run ends: wait for the texts (or fail after 30 s).
    page.wait_for_function(
        "probes => probes.every(p => document.body.innerText.includes(p))", arg=list(PROBES),
        timeout=30_000,
    )  # fmt: skip
    assert page.evaluate("window.__xss") is None
    main = page.locator("[data-testid='stMain']")
    assert main.locator("img[src='x']").count() == 0
    assert main.locator("a[href^='javascript']").count() == 0
    assert main.locator("h1", has_text="Heading injected").count() == 0
    page.close()
