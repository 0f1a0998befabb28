"""The nurse's and physician's screens in real Chromium, against `vigil demo` as users start it.

Screenshots are saved under test-artifacts/ (kept by CI as evidence and for a human to look at).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, WebSocketRoute, async_playwright

from tests.conftest import REPO, VigilProcess, start, stop_with_ctrl_c

pytestmark = pytest.mark.e2e

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VigilProcess]:
    """`vigil demo` on an ephemeral port, stopped with Ctrl-C afterwards."""
    tmp = tmp_path_factory.mktemp("demo")
    vp = start(["demo", "--port", "0", "--hl7-port", "0", "--db", str(tmp / "demo.sqlite3")], cwd=tmp)
    yield vp
    code, log = stop_with_ctrl_c(vp)
    assert code == 0, log
    assert "Traceback" not in log, log


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian chromium (.ci/run does): /usr/bin/chromium is missing")
        pytest.skip("Debian chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)")
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        await b.close()


async def open_page(browser: Browser, url: str) -> tuple[Page, list[str]]:
    page = await browser.new_page(viewport={"width": 1600, "height": 900})
    problems: list[str] = []

    def on_console(msg: ConsoleMessage) -> None:
        if msg.type == "error":
            problems.append(msg.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    await page.goto(url)
    return page, problems


def age_seconds(text: str) -> float:
    """'now' / '2 s' / '1 min' style age texts as seconds."""
    t = text.strip().lower()
    if not t or t in ("now", "just now"):
        return 0.0
    m = re.search(r"(\d+(?:\.\d+)?)\s*(s|sec|min|m|h)\b", t)
    assert m, f"unreadable age text {text!r}"
    value, unit = float(m.group(1)), m.group(2)
    return value * {"s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}[unit]


async def canvas_ink(page: Page, channel: str) -> int:
    """How many pixels of a waveform canvas differ from its top-left (background) pixel."""
    ink: int = await page.evaluate(
        """(channel) => {
            const host = document.querySelector(`[data-channel="${channel}"]`);
            const canvas = host.tagName === 'CANVAS' ? host : (host.shadowRoot || host).querySelector('canvas');
            const ctx = canvas.getContext('2d');
            const {width, height} = canvas;
            const data = ctx.getImageData(0, 0, width, height).data;
            const bg = [data[0], data[1], data[2]];
            let n = 0;
            for (let i = 0; i < data.length; i += 4) {
                if (Math.abs(data[i] - bg[0]) + Math.abs(data[i + 1] - bg[1]) + Math.abs(data[i + 2] - bg[2]) > 60) n++;
            }
            return n;
        }""",
        channel,
    )
    return ink


async def test_bedside_shows_live_numbers_and_waveforms_then_goes_stale(demo: VigilProcess, browser: Browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page, problems = await open_page(browser, demo.url + "bedside.html?bay=bay1")
    await page.wait_for_selector("body[data-connection=open]", timeout=10_000)
    hr = page.locator('[data-param="hr"]')
    await page.wait_for_selector('[data-param="hr"][data-state="live"]', timeout=10_000)

    # Numbers update: the value is a number and its age stays fresh across several seconds.
    samples_before = int(await page.locator('[data-channel="ecg_ii"]').get_attribute("data-samples-drawn") or 0)
    values: set[str] = set()
    for _ in range(5):
        for key in ("hr", "spo2", "rr", "etco2"):
            tile = page.locator(f'[data-param="{key}"]')
            assert await tile.get_attribute("data-state") == "live"
            text = (await tile.locator(".value").inner_text()).strip()
            assert re.fullmatch(r"\d+(\.\d)?", text), f"{key} shows {text!r}"
            values.add(f"{key}={text}")
            assert age_seconds(await tile.locator(".age").inner_text()) <= 2.5
        await page.wait_for_timeout(1000)
    assert 40 <= int((await hr.locator(".value").inner_text()).strip()) <= 140

    # Waveforms are drawn: samples keep flowing and the canvases carry ink.
    for channel in ("ecg_ii", "pleth", "co2"):
        wf = page.locator(f'[data-channel="{channel}"]')
        assert await wf.get_attribute("data-state") == "live"
        assert await canvas_ink(page, channel) > 200, f"{channel} canvas is blank"
    samples_after = int(await page.locator('[data-channel="ecg_ii"]').get_attribute("data-samples-drawn") or 0)
    assert samples_after - samples_before > 500  # ≥ 2 s of 250 Hz ECG drawn while we watched
    await page.screenshot(path=str(ARTIFACTS / "bedside-live.png"))

    # NIBP arrives a few seconds after start (first cycle) and shows its age.
    nibp = page.locator('[data-param="nibp"]')
    await page.wait_for_function(
        "() => /\\d+\\s*\\/\\s*\\d+/.test(document.querySelector('[data-param=nibp] .value')?.textContent || '')",
        timeout=15_000,
    )
    assert await nibp.locator(".age").inner_text()

    # Stop the bay's simulated device: every tile turns stale within 5 s.
    async with httpx.AsyncClient(base_url=demo.url) as http:
        r = await http.post("/api/devices/sim-monitor-1/simulation", json={"fault": "silent"})
        assert r.status_code == 204
    t0 = time.monotonic()
    try:
        await page.wait_for_function(
            """() => ['hr', 'spo2', 'rr', 'etco2'].every(k =>
                   document.querySelector(`[data-param="${k}"]`).dataset.state === 'stale')""",
            timeout=5_000,
        )
        took = time.monotonic() - t0
        assert took <= 5.0
        print(f"\nbedside tiles stale {took:.2f} s after the device went silent")
        await page.wait_for_timeout(1500)
        assert "no data" in (await hr.inner_text()).lower()
        assert await page.locator('[data-channel="ecg_ii"]').get_attribute("data-state") == "nodata"
        await page.screenshot(path=str(ARTIFACTS / "bedside-stale.png"))
    finally:
        async with httpx.AsyncClient(base_url=demo.url) as http:
            await http.post("/api/devices/sim-monitor-1/simulation", json={"fault": "none"})

    # ... and live again when the device comes back.
    await page.wait_for_selector('[data-param="hr"][data-state="live"]', timeout=10_000)
    assert not problems, problems
    await page.close()


async def test_station_shows_every_bay_and_opens_bedside(demo: VigilProcess, browser: Browser) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page, problems = await open_page(browser, demo.url + "station.html")
    await page.wait_for_selector("body[data-connection=open]", timeout=10_000)
    for bay in ("bay1", "bay2", "bay3", "bay4"):
        await page.wait_for_selector(f'[data-bay="{bay}"][data-state="live"]', timeout=10_000)
    tiles = page.locator("[data-bay]")
    assert [await tiles.nth(i).get_attribute("data-bay") for i in range(await tiles.count())] == [
        "bay1",
        "bay2",
        "bay3",
        "bay4",
    ]
    await page.wait_for_timeout(2500)  # let the strips fill
    await page.screenshot(path=str(ARTIFACTS / "station.png"))
    await page.locator('[data-bay="bay3"]').click()
    await page.wait_for_url(re.compile(r"bedside\.html\?bay=bay3"), timeout=5_000)
    assert not problems, problems
    await page.close()


async def test_unknown_message_type_is_reported_loudly(demo: VigilProcess, browser: Browser) -> None:
    page = await browser.new_page()
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    routes: list[WebSocketRoute] = []

    def relay(ws: WebSocketRoute) -> None:  # pass the real server through, keep a handle to inject
        ws.connect_to_server()
        routes.append(ws)

    await page.route_web_socket(re.compile(r"/ws$"), relay)
    await page.goto(demo.url + "bedside.html?bay=bay2")
    await page.wait_for_selector("body[data-connection=open]", timeout=10_000)
    await page.wait_for_selector('[data-param="hr"][data-state="live"]', timeout=10_000)
    # A message type this page does not know, as a newer server might send.
    routes[-1].send(json.dumps({"v": 1, "seq": 0, "t": time.time(), "type": "teleport"}))
    notice = page.locator("#protocol-error")
    await notice.wait_for(state="visible", timeout=3_000)
    assert "teleport" in await notice.inner_text()
    assert any("teleport" in p for p in problems)
    await page.close()


def test_server_is_reachable(demo: VigilProcess) -> None:
    assert httpx.get(demo.url + "healthz", timeout=5).json()["status"] == "ok"
