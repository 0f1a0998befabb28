"""The review page in real Chromium (issues 8.3 and 9.3-9.5): a recorded over-sedation session is replayed
through the real server, with the timeline, the transport, the bedside elements fed by the replay stream,
the REPLAY marking and the clinic's time zone.

The server runs in-process on a copy of the shared recording (a whole simulated session recorded at high
speed with the real pipeline and alarm engine, once per test run). The clinic's zone is set to
America/New_York, which is neither UTC nor (on CI) the browser's zone, so every clock time checked below
proves it is shown in the clinic's zone. Screenshots: test-artifacts/review-*.png.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from playwright.async_api import Browser, Page, WebSocketRoute

from tests.conftest import RecordedSession, RunningServer, running_server, small_settings
from tests.e2e.test_bedside import ARTIFACTS, browser, open_page  # noqa: F401 - browser is a fixture

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]  # recording a 90-minute session comes first

ZONE = "America/New_York"
TZ = ZoneInfo(ZONE)


@pytest.fixture
async def recorded(
    tmp_path: Path, recorded_session: RecordedSession
) -> AsyncIterator[tuple[RunningServer, str, dict[str, Any]]]:
    """A server (no live monitors) on a copy of the shared recording (one finished over-sedation session,
    tests/conftest.py), and the session's timeline."""
    db = recorded_session.copy_to(tmp_path / "vigil.sqlite3")
    settings = small_settings(tmp_path, bays=1, monitors=[], clinic_timezone=ZONE, db_path=db)
    sid = recorded_session.session_id
    async with running_server(settings) as srv, httpx.AsyncClient(timeout=30) as client:
        r = await client.get(f"{srv.http}/api/recordings/{sid}/timeline")
        assert r.status_code == 200, r.text
        yield srv, sid, r.json()


def clock_text(t: float) -> str:
    """HH:MM:SS of a Unix time in the clinic's zone."""
    return datetime.fromtimestamp(t, TZ).strftime("%H:%M:%S")


async def position(page: Page) -> float:
    """The replay position the transport shows (recorded Unix s), checked against its clock text."""
    t, text = await page.locator("vigil-replay-controls .position").evaluate(
        "el => [Number(el.dataset.t), el.textContent]"
    )
    assert text.strip() in (clock_text(t), clock_text(t - 0.002)), f"position {t} shown as {text!r}"
    return float(t)


async def state(page: Page) -> str:
    return await page.locator("vigil-replay-controls").get_attribute("data-state") or ""


async def wait_state(page: Page, want: str) -> None:
    await page.wait_for_selector(f'vigil-replay-controls[data-state="{want}"]', timeout=10_000)


async def test_review_replays_a_recorded_session(
    recorded: tuple[RunningServer, str, dict[str, Any]],
    browser: Browser,  # noqa: F811
) -> None:
    srv, sid, tl = recorded
    ARTIFACTS.mkdir(exist_ok=True)
    start, end = float(tl["start"]), float(tl["end"])
    raises = sorted(
        (a for a in tl["alarms"] if a["kind"] == "raised" and a["priority"] in ("high", "medium", "low")),
        key=lambda a: float(a["t"]),
    )
    assert raises, "the over-sedation scenario raised no alarm: nothing to review"
    first = raises[0]

    # Without a session: the list of recordings, one row per session, linking to the deep link.
    page, problems = await open_page(browser, srv.http + "/review.html")
    row = page.locator(f'vigil-session-picker[mode="table"] tr.recording[data-session="{sid}"]')
    await row.wait_for(timeout=30_000)
    assert "Demo Patient" in await row.inner_text()
    await page.screenshot(path=str(ARTIFACTS / "review-list.png"))
    await row.locator("a").click()
    await page.wait_for_url(re.compile(rf"review\.html\?session={sid}$"))

    # The timeline: one plotly trace per numeric, alarm markers, phases.
    timeline = page.locator("vigil-timeline")
    await page.wait_for_selector("vigil-timeline[data-ready]", timeout=60_000)
    n_traces = int(await timeline.get_attribute("data-traces") or 0)
    assert n_traces == len([k for k, s in tl["series"].items() if s["t"]]) >= 6, n_traces
    drawn = await page.locator("vigil-timeline .scatterlayer .trace").count()
    assert drawn >= n_traces + 2, drawn  # + alarm markers + charting markers
    assert int(await timeline.get_attribute("data-alarm-markers") or 0) >= len(raises)
    assert await page.locator("vigil-timeline .shapelayer path").count() >= len(tl["phases"]) - 1
    await page.wait_for_selector("body[data-connection=open]", timeout=20_000)

    # Never mistaken for live: band with icon and text, violet frame, no "LIVE", no sound.
    band = page.locator("vigil-replay-band")
    assert await band.is_visible()
    assert await band.locator("svg.band-icon").count() == 1
    s0 = datetime.fromtimestamp(start, TZ)
    recorded_at = f"{s0:%a} {s0.day} {s0:%b %Y %H:%M} {s0.tzname()}"
    title = await band.locator(".band-title").inner_text()
    assert title == f"REPLAY — recorded {recorded_at}, not a live patient", title
    assert "NO ALARM SOUND" in await band.inner_text()
    frame = await page.locator(".replay-frame").evaluate("el => getComputedStyle(el).borderTopColor")
    assert frame == "rgb(124, 58, 237)", frame
    assert "● LIVE" not in await page.locator("body").inner_text()
    assert await page.locator("vigil-audio-status, vigil-alarm-controls, vigil-session-panel").count() == 0
    assert await page.evaluate("() => window.__vigilAudio === undefined && document.body.dataset.audio === undefined")
    assert "(America/New_York)" in await page.locator("#tz").inner_text()
    assert await position(page) == pytest.approx(start, abs=1.0)
    await page.screenshot(path=str(ARTIFACTS / "review-timeline.png"))

    # Play at 10x: the position runs ten times faster than the wall clock and the numerics follow it.
    await page.locator('vigil-replay-controls button[data-speed-choice="10"]').click()
    await page.wait_for_selector('vigil-replay-controls[data-speed="10"]', timeout=5_000)
    assert await page.locator('button[data-speed-choice="10"]').get_attribute("aria-pressed") == "true"
    await page.locator('vigil-replay-controls button[data-action="toggle"]').click()
    await wait_state(page, "playing")
    await page.wait_for_selector('vigil-numeric[param="hr"][data-state="live"]', timeout=20_000)
    p0 = await position(page)
    w0 = await page.evaluate("() => performance.now() / 1000")
    values: set[str] = set()
    for _ in range(8):
        for key in ("hr", "spo2", "rr"):
            tile = page.locator(f'vigil-numeric[param="{key}"]')
            assert await tile.get_attribute("data-state") == "live", key
            text = (await tile.locator(".value").inner_text()).strip()
            assert re.fullmatch(r"\d+\??", text), f"{key} shows {text!r}"
            values.add(f"{key}={text}")
        await page.wait_for_timeout(500)
    p1 = await position(page)
    w1 = await page.evaluate("() => performance.now() / 1000")
    rate = (p1 - p0) / (w1 - w0)
    assert 7.0 <= rate <= 12.0, f"replay ran at {rate:.1f}x, asked 10x"
    assert len(values) > 3, f"numerics did not change while playing: {values}"
    assert await page.locator('vigil-waveform[channel="ecg_ii"]').get_attribute("data-state") == "live"
    samples = int(await page.locator('vigil-waveform[channel="ecg_ii"]').get_attribute("data-samples-drawn") or 0)
    assert samples > 250 * 10, samples  # well over ten seconds of 250 Hz ECG drawn
    await page.screenshot(path=str(ARTIFACTS / "review-playing.png"))

    # First alarm: the position jumps to its raise (checked every frame: it plays on at 10x) and the banner
    # shows that alarm, as the nurse saw it.
    await page.locator('vigil-replay-controls button[data-action="first-alarm"]').click()
    await page.wait_for_function(
        "t => Math.abs(Number(document.querySelector('vigil-replay-controls .position').dataset.t) - t) < 2",
        arg=float(first["t"]),
        polling="raf",
        timeout=10_000,
    )
    banner_alarm = page.locator(f'vigil-alarm-banner .alarm.rule[data-rule="{first["rule_id"]}"]')
    await banner_alarm.first.wait_for(timeout=10_000)
    assert await banner_alarm.first.get_attribute("data-priority") == first["priority"]
    await page.wait_for_timeout(1200)  # a sweep of waveform after the jump, for the screenshot
    await page.screenshot(path=str(ARTIFACTS / "review-first-alarm.png"))

    # The printable report and the exports of this session, from the page (in the clinic's time zone).
    href = await page.locator("#report-link").get_attribute("href")
    assert href == f"/api/recordings/{sid}/report.html?tz=America%2FNew_York", href
    report = await page.request.get(srv.http + href)
    assert report.status == 200 and report.headers["content-type"].startswith("text/html")
    assert "Demo Patient" in await report.text()
    formats = await page.locator("#session-links a[data-format]").evaluate_all("els => els.map(e => e.href)")
    assert len(formats) == 5
    for url in formats:
        got = await page.request.get(url)
        assert got.status == 200 and "attachment" in got.headers["content-disposition"], url

    # Pause: the clock stops (ages and staleness stop with it).
    await page.locator('vigil-replay-controls button[data-action="toggle"]').click()
    await wait_state(page, "paused")
    assert await position(page) >= float(first["t"])
    await page.wait_for_timeout(300)
    held = await position(page)
    await page.wait_for_timeout(1500)
    assert await position(page) == pytest.approx(held, abs=0.01)

    # Seek exactly to the first alarm while paused (the jump lands within ±2 s, and the banner agrees).
    await page.locator('vigil-replay-controls button[data-action="first-alarm"]').click()
    await page.wait_for_function(
        "t => Math.abs(Number(document.querySelector('vigil-replay-controls .position').dataset.t) - t) < 2",
        arg=float(first["t"]),
        timeout=10_000,
    )
    await banner_alarm.first.wait_for(timeout=10_000)

    # Seek by clicking the timeline three quarters of the way along.
    geo = await page.evaluate(
        """() => {
            const plot = document.querySelector('vigil-timeline .timeline-plot');
            const s = plot._fullLayout._size;
            const r = plot.getBoundingClientRect();
            return {x: r.left + s.l, y: r.top + s.t, w: s.w, h: s.h};
        }"""
    )
    await page.mouse.click(geo["x"] + 0.75 * geo["w"], geo["y"] + 0.5 * geo["h"])
    target = start + 0.75 * (end - start)
    per_px = (end - start) / geo["w"]
    await page.wait_for_function(
        "([t, tol]) => Math.abs(Number(document.querySelector('vigil-replay-controls .position').dataset.t) - t) < tol",
        arg=[target, 3 * per_px + 1],
        timeout=10_000,
    )
    assert await state(page) == "paused"
    head = float(await page.locator("vigil-timeline .playhead").get_attribute("data-t") or "nan")
    assert head == pytest.approx(target, abs=3 * per_px + 1)
    await page.screenshot(path=str(ARTIFACTS / "review-seek.png"))

    # The what-if panel is on the page for this session, and its rows' `vigil-seek` events move the replay.
    whatif = page.locator(f'vigil-whatif[session="{sid}"]')
    assert await whatif.count() == 1
    middle = start + 0.5 * (end - start)
    await whatif.evaluate(
        "(el, t) => el.dispatchEvent(new CustomEvent('vigil-seek', {detail: {t}, bubbles: true, composed: true}))",
        middle,
    )
    await page.wait_for_function(
        "t => Math.abs(Number(document.querySelector('vigil-replay-controls .position').dataset.t) - t) < 0.5",
        arg=middle,
        timeout=5_000,
    )

    # Keyboard: → seeks 10 s, ] and [ change speed, space plays and pauses.
    before = await position(page)
    await page.keyboard.press("ArrowRight")
    await page.wait_for_function(
        "t => Math.abs(Number(document.querySelector('vigil-replay-controls .position').dataset.t) - t) < 0.5",
        arg=before + 10,
        timeout=5_000,
    )
    await page.keyboard.press("ArrowLeft")
    await page.keyboard.press("ArrowLeft")
    await page.wait_for_function(
        "t => Math.abs(Number(document.querySelector('vigil-replay-controls .position').dataset.t) - t) < 0.5",
        arg=before - 10,
        timeout=5_000,
    )
    await page.keyboard.press("]")
    await page.wait_for_selector('vigil-replay-controls[data-speed="30"]', timeout=5_000)
    await page.keyboard.press("[")
    await page.keyboard.press("[")
    await page.wait_for_selector('vigil-replay-controls[data-speed="5"]', timeout=5_000)
    await page.locator('button[data-speed-choice="2"]').focus()
    await page.keyboard.press("Space")  # plays (does not click the focused 2x button)
    await wait_state(page, "playing")
    assert await page.locator("vigil-replay-controls").get_attribute("data-speed") == "5"
    await page.keyboard.press("Space")
    await wait_state(page, "paused")

    assert not problems, problems
    await page.close()

    # A review stream that does not say it is a replay is refused loudly, never drawn.
    page = await browser.new_page(viewport={"width": 1600, "height": 900})

    def unmark(ws: WebSocketRoute) -> None:
        server = ws.connect_to_server()
        ws.on_message(lambda m: server.send(m))

        def forward(m: str | bytes) -> None:
            frame = json.loads(m)  # one message, or a batch of them (the page subscribes with batch: true)
            for msg in frame if isinstance(frame, list) else [frame]:
                if msg.get("type") == "hello":
                    msg["replay"] = False
            ws.send(json.dumps(frame))

        server.on_message(forward)

    await page.route_web_socket(re.compile(r"/ws/replay/"), unmark)
    await page.goto(f"{srv.http}/review.html?session={sid}")
    notice = page.locator("#protocol-error")
    await notice.wait_for(state="visible", timeout=60_000)
    assert "not marked as a replay" in await notice.inner_text()
    await page.wait_for_timeout(1500)
    assert await page.locator('vigil-numeric[param="hr"]').get_attribute("data-state") != "live"
    assert await page.locator("vigil-replay-band").is_visible()
    await page.close()

    # An unknown session: said so, and the list offered instead.
    page = await browser.new_page(viewport={"width": 1600, "height": 900})
    await page.goto(f"{srv.http}/review.html?session=no-such-session")
    await page.locator("#server-error").wait_for(timeout=30_000)
    assert "No recorded session no-such-session" in await page.locator("#server-error").inner_text()
    await page.locator(f'#landing tr.recording[data-session="{sid}"]').wait_for(timeout=30_000)
    await page.close()


async def test_clock_times_follow_the_clinic_time_zone(tmp_path: Path, browser: Browser) -> None:  # noqa: F811
    """Bedside and station show the server clock in the clinic's zone, with the zone named beside it."""
    settings = small_settings(tmp_path, bays=1, clinic_timezone="Asia/Kolkata")
    async with running_server(settings) as srv:
        for path in ("/bedside.html?bay=bay1", "/station.html"):
            page, problems = await open_page(browser, srv.http + path)
            await page.wait_for_selector("body[data-connection=open]", timeout=10_000)
            await page.wait_for_function(
                "() => /\\d\\d:\\d\\d:\\d\\d/.test(document.querySelector('vigil-header .clock').textContent)"
            )
            shown = await page.locator("vigil-header .clock").inner_text()
            now = await page.evaluate("() => Date.now() / 1000")
            options = {clock_text_in(now + d, "Asia/Kolkata") for d in (-1.5, -0.5, 0.5)}
            assert shown in options, (path, shown, options)
            assert await page.locator("vigil-header .tz").inner_text() == "GMT+5:30"
            assert "Asia/Kolkata" in (await page.locator("vigil-header .tz").get_attribute("title") or "")
            assert not problems, problems
            await page.close()


def clock_text_in(t: float, zone: str) -> str:
    """HH:MM:SS of ``t`` in ``zone``."""
    return datetime.fromtimestamp(math.floor(t), ZoneInfo(zone)).strftime("%H:%M:%S")
