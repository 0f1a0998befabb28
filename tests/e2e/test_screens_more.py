"""The rest of the live screens of issue 9 in real Chromium: the bedside trend panel (history, live
extension, phase bands), the station's sparklines, session clocks, paging beyond 16 bays with alarms on
the other page called out, the highest-priority bay drawing attention, and keyboard use (Tab to a tile
with a visible focus ring, Enter opens the bay; every bedside control reachable by Tab).

Servers run in-process (uvicorn on port 0, real SQLite). History is written into the store before the page
opens so the trend shapes are known: a 30 min HR history with one 150/min peak must still show that peak
after the server's min/max downsampling.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, WebSocketRoute

from app.config import SimulatedMonitor
from app.store.base import Record
from monitors.models import Reading
from tests.conftest import RunningServer, running_server, small_settings
from tests.e2e.test_bedside import ARTIFACTS, browser, open_page  # noqa: F401 - browser is a fixture

pytestmark = pytest.mark.e2e

PATIENT = {"identifier": "MRN-9009", "name": "Robin Ash Bell", "birth_date": "1975-05-06", "weight_kg": 70}
PLAN = {"dose_mg_per_kg": 0.5, "duration_min": 40, "concentration_mg_per_ml": 1}
PEAK_HR = 150.0


async def seed_history(srv: RunningServer, bay: str, *, minutes: float = 30, until_ago_s: float = 300) -> float:
    """1 Hz HR / SpO2 and a few NIBPs for ``bay`` from ``minutes`` ago to ``until_ago_s`` ago (device
    "hist-<bay>"), with one HR peak of 150 in the middle; returns the peak's time."""
    now = time.time()
    t0 = now - minutes * 60
    t1 = now - until_ago_s
    peak_t = t0 + (t1 - t0) / 2
    recs: list[Record] = []
    t = t0
    i = 0

    def reading(param: str, unit: str, value: float, at: float) -> Record:
        when = datetime.fromtimestamp(at, UTC)
        r = Reading(device_id=f"hist-{bay}", param=param, value=value, unit=unit, t_device=when, t_received=when)
        return Record(bay=bay, item=r)

    while t < t1:
        hr = PEAK_HR if abs(t - peak_t) < 0.5 else 72.0 + (i % 5)
        recs.append(reading("hr", "/min", hr, t))
        recs.append(reading("spo2", "%", 96.0 + (i % 3), t))
        if i % 300 == 0:
            recs += [
                reading(p, "mm[Hg]", v, t) for p, v in (("nibp_sys", 128.0), ("nibp_dia", 78.0), ("nibp_mean", 95.0))
            ]
        t += 1.0
        i += 1
    await srv.services.store.append(recs)
    await srv.services.store.flush()
    return peak_t


async def start_session(http: httpx.AsyncClient, bay: str, identifier: str = "MRN-9009") -> str:
    """Register a patient and open a session in ``bay`` moved to baseline; returns the session id."""
    r = await http.post("/api/patients", json={**PATIENT, "identifier": identifier})
    assert r.status_code == 201, r.text
    r = await http.post("/api/sessions", json={"patient_id": r.json()["id"], "bay": bay, "plan": PLAN})
    assert r.status_code == 201, r.text
    sid: str = r.json()["session"]["id"]
    r = await http.post(f"/api/sessions/{sid}/transition", json={"to": "baseline"})
    assert r.status_code == 200, r.text
    return sid


async def figure(page: Page) -> dict[str, Any]:
    """What the canvas trend panel drew: per-parameter points, phase names, limit lines, x range, stale."""
    fig: dict[str, Any] = await page.evaluate("() => document.querySelector('vigil-trends').figure()")
    fig["by_param"] = {s["param"]: s for s in fig["series"]}
    return fig


async def trend_ink(page: Page, colour: tuple[int, int, int]) -> int:
    """Pixels of the trend canvas within a small distance of ``colour`` (a trace's colour)."""
    n: int = await page.evaluate(
        """([r, g, b]) => {
            const c = document.querySelector('vigil-trends canvas.trend-canvas');
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let n = 0;
            for (let i = 0; i < d.length; i += 4) {
                if (Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) < 60) n++;
            }
            return n;
        }""",
        list(colour),
    )
    return n


HR_GREEN = (0x3E, 0xE0, 0x5A)  # lib/params.js CANVAS_COLOUR.ecg


async def test_bedside_trends_show_history_peaks_extend_live_and_follow_the_session(
    tmp_path: Path,
    browser: Browser,  # noqa: F811
) -> None:
    """The canvas trend panel (no plotly on the live bedside): history with its peak, limit lines, live
    extension, the header's patient once a session starts, phase bands, and stale marking."""
    ARTIFACTS.mkdir(exist_ok=True)
    async with running_server(small_settings(tmp_path, bays=1)) as srv:
        await seed_history(srv, "bay1")
        page, problems = await open_page(browser, srv.http + "/bedside.html?bay=bay1")
        await page.set_viewport_size({"width": 1920, "height": 1080})
        trends = page.locator("vigil-trends")
        await page.wait_for_selector("vigil-trends[data-state=ready]", timeout=20_000)
        assert await trends.get_attribute("data-window") == "2h"
        # No session: the header says so plainly instead of a placeholder.
        header_patient = page.locator("vigil-header .patient")
        await page.wait_for_selector('vigil-header .patient[data-linked="false"]', timeout=10_000)
        assert "NO SESSION" in await header_patient.inner_text()
        assert await page.evaluate("() => typeof window.Plotly") == "undefined"  # plotly is not loaded here
        fig = await figure(page)
        by = fig["by_param"]
        assert set(by) == {"hr", "spo2", "etco2", "rr", "nibp_sys", "nibp_dia", "nibp_mean"}
        hr = by["hr"]
        assert PEAK_HR in hr["v"]  # the 1 s peak survived the downsampling
        assert 25 * 60 / 10 * 0.8 <= hr["n"] <= 30 * 60 / 10 + 10  # ≈ 1 point per 10 s, not 1 per second
        assert by["nibp_sys"]["v"][:2] == [128.0, 128.0]
        # The profile's absolute limits are drawn (e.g. SpO2 low), each with its priority.
        assert any(x["param"] == "spo2" and x["op"].startswith("<") for x in fig["limits"]), fig["limits"]
        # The x axis covers the history and ends a little after now.
        assert fig["x"][0] <= hr["t"][0] and fig["x"][1] > time.time()
        assert await trend_ink(page, HR_GREEN) > 200  # the HR line is on the canvas
        n0 = int(await trends.get_attribute("data-points") or 0)
        draws0 = int(await trends.get_attribute("data-draws") or 0)

        # Live: the simulated monitor's readings extend the trend (20 s buckets, checked every 5 s) and the
        # canvas is redrawn for them.
        await page.wait_for_function(
            "(n) => document.querySelector('vigil-trends').figure().series[0].n > n", arg=hr["n"], timeout=60_000
        )
        assert int(await trends.get_attribute("data-updates") or 0) >= 1
        n1 = int(await trends.get_attribute("data-points") or 0)
        assert n1 > n0
        assert int(await trends.get_attribute("data-draws") or 0) > draws0
        hr_live = (await figure(page))["by_param"]["hr"]
        assert hr_live["n"] > hr["n"] and 40 <= hr_live["v"][-1] <= 140
        await page.screenshot(path=str(ARTIFACTS / "bedside-trends.png"))

        # A session starts: the trend reloads to "the session so far", with its phase bands; the header
        # names the session's patient; the procedure (phase, clock) shows in large type.
        async with httpx.AsyncClient(base_url=srv.http, timeout=30) as http:
            sid = await start_session(http, "bay1")
            await page.wait_for_selector("vigil-trends[data-window=session][data-state=ready]", timeout=15_000)
            fig = await figure(page)
            assert fig["phases"][:2] == ["planned", "baseline"]
            assert PEAK_HR not in fig["by_param"]["hr"]["v"]  # the history before the session is not its trend
            assert "session since" in await trends.locator(".trend-span").inner_text()
            await page.wait_for_selector('vigil-header .patient[data-linked="true"]', timeout=10_000)
            who = await header_patient.inner_text()
            assert str(PATIENT["name"]) in who and str(PATIENT["identifier"]) in who, who
            assert "not linked" not in who
            procedure = page.locator("vigil-procedure")
            await page.wait_for_selector("vigil-procedure[data-phase=baseline]", timeout=15_000)
            assert await procedure.locator(".proc-phase").inner_text() == "BASELINE"
            assert re.fullmatch(r"\d\d:\d\d", await procedure.locator(".proc-clock").inner_text())

            # Infusion: planned time on the clock, the dose running, one more phase band.
            loads = int(await trends.get_attribute("data-loads") or 0)
            for path, body in (
                ("baseline", {"from_monitor": True}),
                ("transition", {"to": "infusion"}),
                ("infusion", {"action": "start"}),
            ):
                r = await http.post(f"/api/sessions/{sid}/{path}", json=body)
                assert r.status_code == 200, r.text
        await page.wait_for_selector("vigil-procedure[data-phase=infusion]", timeout=15_000)
        assert re.fullmatch(r"\d\d:\d\d / 40:00", await procedure.locator(".proc-clock").inner_text())
        assert re.match(r"Ketamine \d+(\.\d)? mg", await procedure.locator(".proc-dose").inner_text())
        assert "estimate" in await procedure.locator(".proc-ce").inner_text()
        # The phase change reloads the trend: bands for planned, baseline and infusion.
        await page.wait_for_function(
            """() => document.querySelector('vigil-trends').figure().phases.join() === 'planned,baseline,infusion'""",
            timeout=15_000,
        )
        assert int(await trends.get_attribute("data-loads") or 0) > loads
        await page.screenshot(path=str(ARTIFACTS / "bedside-trends-session.png"))

        # The monitor goes silent: the trend panels say NO DATA (hatched from the last point), not a
        # line that looks current.
        await page.locator("vigil-sim-control button", has_text="Silence").click()
        await page.wait_for_function(
            "() => (document.querySelector('vigil-trends').dataset.stale || '').split(' ').includes('hr')",
            timeout=30_000,
        )
        assert "hr" in (await figure(page))["stale"]
        await page.screenshot(path=str(ARTIFACTS / "bedside-trends-stale.png"))
        await page.locator("vigil-sim-control button", has_text="Restore").click()
        assert not problems, problems
        await page.close()


async def test_bedside_controls_are_all_reachable_by_tab_with_a_visible_ring(
    tmp_path: Path,
    browser: Browser,  # noqa: F811
) -> None:
    async with running_server(small_settings(tmp_path, bays=1)) as srv:
        page, problems = await open_page(browser, srv.http + "/bedside.html?bay=bay1")
        await page.wait_for_selector("body[data-connection=open]", timeout=10_000)
        await page.wait_for_selector("vigil-sim-control button", timeout=10_000)
        expected: list[str] = await page.evaluate(
            """() => [...document.querySelectorAll('a[href], button:not([disabled]), select, input')]
                  .filter((e) => e.offsetParent !== null && e.tabIndex >= 0)
                  .map((e) => e.outerHTML.slice(0, 60))"""
        )
        assert len(expected) >= 5
        seen: list[str] = []
        for _ in range(len(expected) + 3):
            await page.keyboard.press("Tab")
            info = await page.evaluate(
                """() => {
                    const e = document.activeElement;
                    if (!e || e === document.body) return null;
                    const cs = getComputedStyle(e);
                    return { html: e.outerHTML.slice(0, 60), style: cs.outlineStyle,
                             width: parseFloat(cs.outlineWidth), visible: e.matches(':focus-visible') };
                }"""
            )
            if info is None:
                continue
            assert info["visible"] and info["style"] != "none" and info["width"] >= 2, info  # a clear ring
            seen.append(info["html"])
        assert set(expected) <= set(seen), set(expected) - set(seen)
        assert not problems, problems
        await page.close()


def _twenty_bays(tmp_path: Path) -> Any:
    """20 bays: waveforms only on the first four (CPU), bay 18 in over-sedation at 30x (a HIGH within
    seconds), bay 20 without any monitor (offline)."""
    monitors = [
        SimulatedMonitor(
            name=f"sim{i}",
            device_id=f"dev{i}",
            bay=f"bay{i}",
            seed=i,
            nibp_first_s=0.5,
            waveforms=i <= 4,
            **({"scenario": "oversedation", "speed": 30.0, "offset_min": 24.0} if i == 18 else {}),
        )
        for i in range(1, 20)
    ]
    return small_settings(tmp_path, bays=20, monitors=monitors)


async def test_station_pages_sparklines_clocks_attention_and_keyboard(
    tmp_path: Path,
    browser: Browser,  # noqa: F811
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with running_server(_twenty_bays(tmp_path)) as srv:
        await seed_history(srv, "bay1", minutes=28, until_ago_s=60)
        async with httpx.AsyncClient(base_url=srv.http, timeout=30) as http:
            await start_session(http, "bay2")
        page, problems = await open_page(browser, srv.http + "/station.html")
        await page.set_viewport_size({"width": 1920, "height": 1080})
        await page.wait_for_selector("body[data-connection=open]", timeout=10_000)
        tiles = page.locator("#tiles vigil-bay-tile")
        await page.wait_for_function("() => document.querySelectorAll('#tiles vigil-bay-tile').length === 16")
        order = [await tiles.nth(i).get_attribute("data-bay") for i in range(16)]
        assert order == [f"bay{i}" for i in range(1, 17)]  # fixed order, first page
        pager = page.locator("#station-bar .pager")
        assert await pager.is_visible()
        assert await pager.locator(".page-of").inner_text() == "Page 1 / 2"

        # Bay 18 (page 2) raises a HIGH: the bar says so, the "next page" button carries its colour.
        others = pager.locator(".other-pages")
        await page.wait_for_selector('#station-bar .other-pages[data-priority="high"]', timeout=30_000)
        text = await others.inner_text()
        assert "Bay 18" in text and "!!!" in text, text
        assert await pager.locator(".page-next").get_attribute("data-alarm") == "high"
        highest = page.locator("#station-bar .highest")
        assert "Bay 18" in await highest.inner_text() and await highest.get_attribute("data-priority") == "high"
        assert "!!! 1 HIGH" in await page.locator('#station-bar .count[data-priority="high"]').inner_text()

        # Sparklines: bay 1's HR history (28 min, with its peak) is drawn, every tile draws on a timer.
        hr_spark = page.locator('vigil-bay-tile[data-bay="bay1"] vigil-sparkline[param="hr"]')
        await page.wait_for_function(
            """() => Number(document.querySelector('vigil-bay-tile[data-bay="bay1"] vigil-sparkline[param="hr"]')
                       ?.dataset.points || 0) > 100""",
            timeout=15_000,
        )
        ink = await hr_spark.evaluate(
            """(el) => {
                const c = el.querySelector('canvas');
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let n = 0;
                for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++;
                return { n, w: c.width, h: c.height };
            }"""
        )
        assert ink["w"] > 40 and ink["h"] > 8 and ink["n"] > ink["w"], ink  # a line across the canvas
        assert await page.locator("vigil-sparkline[data-drawn]").count() >= 16 * 3 - 3

        # Session clocks and patient initials on bay 2's tile; a bay without session shows its phase plainly.
        bay2 = page.locator('vigil-bay-tile[data-bay="bay2"]')
        await page.wait_for_selector('vigil-bay-tile[data-bay="bay2"][data-phase="baseline"]', timeout=10_000)
        assert await bay2.locator(".tile-patient").inner_text() == "R.A.B."
        assert re.fullmatch(r"\d\d:\d\d", await bay2.locator(".phase-clock").inner_text())
        assert await bay2.locator(".phase-word").inner_text() == "BASELINE"
        await page.wait_for_timeout(1500)
        await page.screenshot(path=str(ARTIFACTS / "station-20-bays-page1.png"))

        # PgDn: page 2 with bays 17-20 in a grid of the same size; bay 18 draws attention (data-top).
        await page.keyboard.press("PageDown")
        await page.wait_for_function("() => document.querySelector('#tiles').dataset.page === '2'")
        order = [await tiles.nth(i).get_attribute("data-bay") for i in range(await tiles.count())]
        assert order == ["bay17", "bay18", "bay19", "bay20"]
        await page.wait_for_selector('vigil-bay-tile[data-bay="bay18"][data-top][data-alarm="high"]', timeout=5_000)
        bay18 = page.locator('vigil-bay-tile[data-bay="bay18"]')
        assert (await bay18.locator(".tile-alarm").inner_text()).startswith("!!!")
        assert await bay18.locator(".tile-alarm svg.alarm-icon").is_visible()  # icon + text + colour
        width = await bay18.evaluate("(el) => parseFloat(getComputedStyle(el).borderTopWidth)")
        assert width >= 6
        assert await page.get_attribute('vigil-bay-tile[data-bay="bay20"]', "data-state") == "offline"
        assert "NO DATA" in await page.locator('vigil-bay-tile[data-bay="bay20"] .tile-nodata').inner_text()
        assert await pager.locator(".page-next").is_disabled()
        await page.screenshot(path=str(ARTIFACTS / "station-20-bays-page2.png"))
        await page.keyboard.press("PageUp")
        await page.wait_for_function("() => document.querySelector('#tiles').dataset.page === '1'")
        await pager.locator(".page-next").click()  # the buttons work as well as the keys
        await page.wait_for_function("() => document.querySelector('#tiles').dataset.page === '2'")
        await pager.locator(".page-prev").click()
        await page.wait_for_function("() => document.querySelector('#tiles').dataset.page === '1'")

        # Keyboard: Tab reaches bay 1's tile with a visible focus ring; Enter opens its bedside.
        await page.locator("body").click(position={"x": 5, "y": 5})
        focused_bay = None
        for _ in range(12):
            await page.keyboard.press("Tab")
            focused_bay = await page.evaluate("() => document.activeElement?.closest('vigil-bay-tile')?.dataset.bay")
            if focused_bay:
                break
        assert focused_bay == "bay1"
        ring = await page.evaluate(
            """() => { const cs = getComputedStyle(document.activeElement);
                       return [cs.outlineStyle, parseFloat(cs.outlineWidth),
                               document.activeElement.matches(':focus-visible')]; }"""
        )
        assert ring[0] == "solid" and ring[1] >= 3 and ring[2], ring
        await page.screenshot(path=str(ARTIFACTS / "station-20-bays-keyboard-focus.png"))
        await page.keyboard.press("Enter")
        await page.wait_for_url(re.compile(r"bedside\.html\?bay=bay1$"), timeout=10_000, wait_until="commit")
        await page.wait_for_selector("body[data-connection=open]", timeout=10_000)
        assert "Bay 1" in await page.locator("vigil-header").inner_text()
        assert not problems, problems
        await page.close()


async def test_server_restart_is_announced_and_the_trends_reload(tmp_path: Path, browser: Browser) -> None:  # noqa: F811
    """A reconnect to a server with another epoch (as after a restart) shows "SERVER RESTARTED" and reloads
    the trends (they may have a gap); a reconnect to the same server does not claim a restart."""
    ARTIFACTS.mkdir(exist_ok=True)
    async with running_server(small_settings(tmp_path, bays=1)) as srv:
        page = await browser.new_page(viewport={"width": 1600, "height": 900})
        routes: list[WebSocketRoute] = []

        def relay(ws: WebSocketRoute) -> None:
            server = ws.connect_to_server()
            routes.append(ws)
            if len(routes) < 3:
                return  # the first connection and a plain reconnect: passed through untouched

            def rewrite(message: str | bytes) -> None:  # the third: a "new server instance"
                if isinstance(message, str) and '"hello"' in message:
                    msg = json.loads(message)
                    # One message, or a batch of them (a JSON array) where the server batches frames.
                    for m in msg if isinstance(msg, list) else [msg]:
                        if isinstance(m, dict) and m.get("type") == "hello":
                            m["epoch"] = "restarted-" + str(m["epoch"])
                    message = json.dumps(msg)
                ws.send(message)

            server.on_message(rewrite)

        await page.route_web_socket(re.compile(r"/ws$"), relay)
        await page.goto(srv.http + "/bedside.html?bay=bay1")
        await page.wait_for_selector("body[data-connection=open]", timeout=10_000)
        await page.wait_for_selector("vigil-trends[data-state=ready]", timeout=20_000)
        notice = page.locator("vigil-restart-notice")
        loads = int(await page.get_attribute("vigil-trends", "data-loads") or 0)

        await routes[-1].close()  # link lost, same server: no restart notice
        await page.wait_for_function("() => document.body.dataset.connection === 'closed'", timeout=5_000)
        await page.wait_for_function("() => document.body.dataset.connection === 'open'", timeout=15_000)
        await page.wait_for_timeout(800)
        assert await notice.is_hidden()

        await routes[-1].close()  # the next connection meets a new epoch
        await page.wait_for_function("() => document.body.dataset.connection === 'closed'", timeout=5_000)
        await notice.wait_for(state="visible", timeout=15_000)
        assert "SERVER RESTARTED" in await notice.inner_text()
        assert await notice.get_attribute("data-restarts") == "1"
        await page.wait_for_function(
            f"() => Number(document.querySelector('vigil-trends').dataset.loads) > {loads}", timeout=15_000
        )
        await page.screenshot(path=str(ARTIFACTS / "bedside-server-restarted.png"))
        await notice.locator("button.dismiss").click()
        await notice.wait_for(state="hidden", timeout=2_000)
        await page.close()
