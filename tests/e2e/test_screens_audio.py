"""Alarm audio, the station's escalation banner and keyboard use, in real Chromium (issue 9).

Nobody listens: the page reports what it plays (body[data-audio], window.__vigilAudio) and the signals
themselves are rendered offline in the browser and measured here against CLINICAL.md Table 10 (IEC
60601-1-8: pulses per burst, pulse duration and spacing, interburst interval, fundamental and harmonics).
The over-sedation scenario at 30x raises a HIGH within seconds and escalates it to the physician after
30 s of scenario time (about 1 s).
"""

from __future__ import annotations

import cmath
import math
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.conftest import VigilProcess, start, stop_with_ctrl_c
from tests.e2e.test_alarms import oversedation  # noqa: F401 - fixture
from tests.e2e.test_bedside import ARTIFACTS, browser, open_page  # noqa: F401 - browser is a fixture

pytestmark = pytest.mark.e2e

AUDIO_OFF_TEXT = "AUDIO OFF — click or press any key to enable alarm sounds"


@pytest.fixture(scope="module")
def oversedation_two_bays(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VigilProcess]:
    """Two bays in the over-sedation scenario (their own server: the bedside test acknowledges everything)."""
    tmp = tmp_path_factory.mktemp("station-alarms")
    vp = start(
        [
            *("simulate", "--scenario", "oversedation", "--bays", "2", "--speed", "30", "--start-min", "24"),
            *("--port", "0", "--db", str(tmp / "station.sqlite3")),
        ],
        cwd=tmp,
    )
    yield vp
    code, log = stop_with_ctrl_c(vp)
    assert code == 0, log


async def audio(page: Page) -> dict[str, Any]:
    """What the page says it plays: {state, pattern, audible, source, bursts, lastBurst}."""
    state: dict[str, Any] = await page.evaluate("() => window.__vigilAudio")
    return state


# ---- the bedside: audio off until a gesture, follows the highest unacknowledged alarm, pause -----------


async def test_bedside_audio_follows_unacknowledged_alarms(oversedation: VigilProcess, browser: Browser) -> None:  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    page, problems = await open_page(browser, oversedation.url + "bedside.html?bay=bay1")
    await page.wait_for_selector("body[data-connection=open]", timeout=10_000)
    warning = page.locator("vigil-audio-status")
    assert await page.get_attribute("body", "data-audio") == "off"
    assert AUDIO_OFF_TEXT in await warning.inner_text()
    assert (await audio(page))["audible"] is False
    await page.screenshot(path=str(ARTIFACTS / "bedside-audio-off.png"))

    # The shortcuts are discoverable: label, tooltip and aria-keyshortcuts.
    ack = page.locator("vigil-alarm-controls button.alarm-ack")
    pause = page.locator("vigil-alarm-controls button.alarm-pause")
    assert await ack.get_attribute("aria-keyshortcuts") == "A"
    assert "key A" in (await ack.get_attribute("title") or "")
    assert (await pause.get_attribute("aria-keyshortcuts") or "").startswith("P")
    assert "(P)" in await pause.inner_text()

    high = page.locator('vigil-alarm-banner .alarm.rule[data-priority="high"]')
    await high.first.wait_for(state="visible", timeout=30_000)
    # Still silent without a gesture, but the signal in force is known.
    assert await page.get_attribute("body", "data-audio") == "off"
    await page.mouse.click(400, 450)  # a click on the waveforms: the first user gesture
    await page.wait_for_selector("body[data-audio=on]", timeout=3_000)
    await warning.wait_for(state="hidden", timeout=1_000)
    await page.wait_for_function("() => window.__vigilAudio.bursts > 0", timeout=3_000)
    a = await audio(page)
    assert a["pattern"] == "high" and a["audible"], a
    assert a["lastBurst"]["pattern"] == "high" and len(a["lastBurst"]["pulses"]) == 10, a
    assert await page.get_attribute("body", "data-audio-pattern") == "high"
    # Colour is never the only cue: the alarm entries carry their marks.
    assert (await high.first.inner_text()).lstrip().startswith("!!!")
    await page.screenshot(path=str(ARTIFACTS / "bedside-audio-high.png"))

    # Ctrl+A is "select all", not acknowledge.
    await page.keyboard.press("Control+a")
    await page.wait_for_timeout(500)
    assert int(await page.get_attribute("vigil-alarm-controls", "data-unacked") or 0) >= 1
    await page.evaluate("() => getSelection().removeAllRanges()")

    # A (acknowledge all): the sound stops at once. Read both in the same render: nothing unacknowledged
    # left means nothing sounds.
    await page.keyboard.press("a")
    pattern = await page.wait_for_function(
        """() => document.querySelector('vigil-alarm-controls').dataset.unacked === '0'
                 && window.__vigilAudio.pattern""",
        timeout=5_000,
    )
    assert await pattern.json_value() == "none"

    # P (audio pause): silent, state "paused", with the visible countdown.
    await page.keyboard.press("p")
    await page.wait_for_selector("body[data-audio=paused]", timeout=5_000)
    assert (await audio(page))["pattern"] == "none"
    assert "AUDIO PAUSED" in await page.locator("vigil-alarm-controls .audio-paused").inner_text()
    await page.screenshot(path=str(ARTIFACTS / "bedside-audio-paused.png"))
    # R (resume): sound on again.
    await page.keyboard.press("r")
    await page.wait_for_selector("body[data-audio=on]", timeout=5_000)
    assert not problems, problems
    await page.close()


# ---- the signals themselves (Table 10), rendered offline and measured ---------------------------------

RENDER_JS = """
async () => {
  const mod = await import('/lib/audio.js');
  const rate = 48000;
  const out = {};
  for (const name of ['high', 'medium', 'low']) {
    const p = mod.PATTERNS[name];
    const len = mod.burstLength(p);
    const ctx = new OfflineAudioContext(1, Math.ceil((len + 0.1) * rate), rate);
    const wave = mod.harmonicWave(ctx);
    for (const off of p.pulses) mod.schedulePulse(ctx, ctx.destination, wave, p.f0, 0.05 + off, p.td);
    const buf = await ctx.startRendering();
    const x = buf.getChannelData(0);
    // 1 ms peak envelope (for pulse timing) and the middle 60 ms of the first pulse (for the spectrum).
    const env = [];
    for (let i = 0; i < x.length; i += 48) {
      let m = 0;
      for (let k = i; k < Math.min(i + 48, x.length); k += 1) m = Math.max(m, Math.abs(x[k]));
      env.push(m);
    }
    const mid = Math.round((0.05 + p.td / 2) * rate);
    const seg = Array.from(x.slice(mid - 1440, mid + 1440));
    out[name] = { f0: p.f0, td: p.td, pulses: p.pulses, interburst: p.interburstS, env, seg, rate };
  }
  return out;
}
"""


def pulses_from_envelope(env: list[float]) -> list[tuple[float, float]]:
    """(start, end) in seconds of each pulse: where the 1 ms envelope exceeds half its peak (dips shorter
    than 10 ms, a 1 ms window missing a crest of the tone, do not split a pulse)."""
    peak = max(env)
    on = [v > peak / 2 for v in env]
    out: list[tuple[float, float]] = []
    start = None
    for i, v in enumerate([*on, False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            if out and start / 1000 - out[-1][1] < 0.01:
                out[-1] = (out[-1][0], i / 1000)
            else:
                out.append((start / 1000, i / 1000))
            start = None
    return out


def level_db(seg: list[float], rate: float, f: float) -> float:
    """Level of frequency ``f`` in a Hann-windowed segment (dB, arbitrary reference)."""
    n = len(seg)
    acc = sum(
        seg[i] * (0.5 - 0.5 * math.cos(2 * math.pi * i / (n - 1))) * cmath.exp(-2j * math.pi * f * i / rate)
        for i in range(n)
    )
    return 20 * math.log10(abs(acc) + 1e-12)


async def test_alarm_signals_match_iec_60601_1_8_table_10(oversedation: VigilProcess, browser: Browser) -> None:  # noqa: F811
    page, problems = await open_page(browser, oversedation.url)
    r: dict[str, dict[str, Any]] = await page.evaluate(RENDER_JS)
    expected_count = {"high": 10, "medium": 3, "low": 2}
    for name, s in r.items():
        pulses = pulses_from_envelope(s["env"])
        assert len(pulses) == expected_count[name], (name, pulses)
        # Half-amplitude width ≈ td minus one ramp (15 % rise and fall): check the nominal td and the measured one.
        durations = [b - a for a, b in pulses]
        gaps = [pulses[i + 1][0] - pulses[i][1] for i in range(len(pulses) - 1)]
        if name == "high":
            assert 0.075 <= s["td"] <= 0.200
            assert all(abs(d - s["td"] * 0.85) <= 0.01 for d in durations), durations
            # Two groups of 3 + 2 twice: spacing x (50–125 ms) inside a group, a longer gap between groups.
            short = [g for g in gaps if g <= 0.125 + 0.03]
            long_gaps = [i for i, g in enumerate(gaps) if g > 0.125 + 0.03]
            assert long_gaps == [2, 4, 7], gaps  # after pulses 3, 5 and 8: "C C C – C C   C C C – C C"
            assert all(0.05 <= g - s["td"] * 0.15 <= 0.125 for g in short), gaps
            assert 2.5 <= s["interburst"] <= 15
        else:
            assert 0.125 <= s["td"] <= 0.250
            assert all(abs(d - s["td"] * 0.85) <= 0.01 for d in durations), durations
            assert all(0.125 <= g - s["td"] * 0.15 <= 0.250 for g in gaps), gaps
            assert (2.5 <= s["interburst"] <= 30) if name == "medium" else s["interburst"] > 15
        # Spectrum: fundamental 150–1000 Hz, ≥ 4 harmonics in 300–4000 Hz within ±15 dB of the fundamental.
        f0 = s["f0"]
        assert 150 <= f0 <= 1000
        fund = level_db(s["seg"], s["rate"], f0)
        harmonics = [k * f0 for k in range(2, 12) if 300 <= k * f0 <= 4000]
        strong = [f for f in harmonics if abs(level_db(s["seg"], s["rate"], f) - fund) <= 15]
        assert len(strong) >= 4, (name, f0, strong)
        # ... and they are harmonics, not noise: between two harmonics the level is far lower.
        assert level_db(s["seg"], s["rate"], 1.5 * f0) < fund - 30
        # Loudness: every pulse of a burst peaks at the same level (Table 10: ≤ 10 dB apart).
        peaks = [max(s["env"][int(a * 1000) : int(b * 1000) + 1]) for a, b in pulses]
        assert 20 * math.log10(max(peaks) / min(peaks)) <= 1.0
    assert not problems, problems
    await page.close()


# ---- the central station: escalation banner, HIGH sound, keyboard --------------------------------------


async def test_station_escalation_and_keyboard(oversedation_two_bays: VigilProcess, browser: Browser) -> None:  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    url = oversedation_two_bays.url
    page, problems = await open_page(browser, url + "station.html")
    await page.wait_for_selector("body[data-connection=open]", timeout=10_000)
    # Before any gesture the sound is off, and the page says so.
    assert await page.get_attribute("body", "data-audio") == "off"
    warning = page.locator("vigil-audio-status")
    assert await warning.is_visible()
    assert AUDIO_OFF_TEXT in await warning.inner_text()
    await page.mouse.click(800, 22)  # a gesture (on the warning bar itself)
    await page.wait_for_selector("body[data-audio=on]", timeout=3_000)
    await warning.wait_for(state="hidden", timeout=1_000)

    # An alarm escalated to the physician: a banner names the bay, links to it, and the HIGH pattern sounds.
    esc = page.locator('vigil-escalation-banner .escalation[data-bay="bay1"][data-notify="physician"]')
    await esc.first.wait_for(state="visible", timeout=30_000)
    text = await esc.first.inner_text()
    assert "ESCALATED" in text and "Bay 1" in text and "!!!" in text, text
    assert await esc.first.locator("a.open-bay").get_attribute("href") == "/bedside.html?bay=bay1"
    alarm_id = await esc.first.get_attribute("data-alarm-id")
    # When it was raised, on the wall clock: the scenario runs 30x, so the engine's own raised_at (device
    # time) is ahead of the wall clock; the banner shows when it was raised for us, as the alarm log does.
    wait = esc.first.locator(".esc-wait")
    wait_text = await wait.inner_text()
    m = re.fullmatch(r"raised (\d\d:\d\d:\d\d) · unacknowledged (\d\d):(\d\d)", wait_text.strip())
    assert m, wait_text
    raised = float(await wait.get_attribute("data-raised") or "nan")
    wall = time.time()
    assert wall - 120 <= raised <= wall + 1, (raised, wall)
    assert int(m.group(2)) * 60 + int(m.group(3)) <= wall - raised + 2
    shown = await page.evaluate("async (t) => (await import('/lib/format.js')).formatClock(t)", raised)
    assert m.group(1) == shown
    engine_raised = await page.evaluate(
        """async (id) => (await import('/lib/context.js')).context().store.bays.get('bay1')
                 .ruleAlarms.find((a) => a.alarm_id === id)?.raised_at""",
        alarm_id,
    )
    assert engine_raised is not None and engine_raised > raised  # device time, ahead: not what is shown
    a = await audio(page)
    assert a["pattern"] == "high" and a["audible"], a
    assert a["lastBurst"]["pattern"] == "high" and len(a["lastBurst"]["pulses"]) == 10, a
    # Tiles keep their fixed order and show the alarm by border and text with its mark.
    tiles = page.locator("vigil-bay-tile")
    assert [await tiles.nth(i).get_attribute("data-bay") for i in range(await tiles.count())] == ["bay1", "bay2"]
    tile1 = page.locator('vigil-bay-tile[data-bay="bay1"]')
    assert await tile1.get_attribute("data-alarm") == "high"
    assert await tile1.get_attribute("data-escalated") == "true"
    assert (await tile1.locator(".tile-alarm").inner_text()).startswith("!!!")
    borders = set()  # the HIGH tile border flashes (IEC 1.4–2.8 Hz): sample across a second
    for _ in range(12):
        borders.add(await tile1.evaluate("el => getComputedStyle(el).borderTopColor"))
        await page.wait_for_timeout(90)
    assert len(borders) >= 2, borders
    await page.screenshot(path=str(ARTIFACTS / "station-escalation.png"))

    # Acknowledged (at the bedside, here over the API): that bay's escalation line goes.
    async with httpx.AsyncClient(base_url=url) as http:
        r = await http.post("/api/bays/bay1/alarms/acknowledge", json={"rule_id": "all"})
        assert r.status_code == 200, r.text
    await page.wait_for_selector(
        f'vigil-escalation-banner .escalation[data-bay="bay1"][data-alarm-id="{alarm_id}"]',
        state="detached",
        timeout=5_000,
    )
    source = (await audio(page))["source"] or {}
    assert (source.get("bay"), source.get("alarm_id")) != ("bay1", alarm_id), source

    # A station opened after the escalation finds it in the alarm log (bay2 is still unacknowledged),
    # and not the acknowledged one of bay1.
    late, late_problems = await open_page(browser, url + "station.html")
    await late.locator('vigil-escalation-banner .escalation[data-bay="bay2"]').first.wait_for(timeout=10_000)
    assert await late.locator(f'.escalation[data-bay="bay1"][data-alarm-id="{alarm_id}"]').count() == 0
    assert not late_problems, late_problems
    await late.close()

    # Keyboard: arrow keys move between tiles in grid order, Enter opens the focused bay.
    link1 = page.locator('vigil-bay-tile[data-bay="bay1"] .tile-link')
    await link1.focus()
    focused = "() => document.activeElement?.closest('vigil-bay-tile')?.dataset.bay ?? null"
    await page.keyboard.press("ArrowRight")
    assert await page.evaluate(focused) == "bay2"
    await page.keyboard.press("ArrowLeft")
    assert await page.evaluate(focused) == "bay1"
    await page.keyboard.press("End")
    assert await page.evaluate(focused) == "bay2"
    assert "Enter" in (await link1.get_attribute("title") or "")
    await page.screenshot(path=str(ARTIFACTS / "station-keyboard-focus.png"))
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"bedside\.html\?bay=bay2"), timeout=5_000)
    await page.wait_for_selector("body[data-connection=open]", timeout=10_000)
    assert not problems, problems
    await page.close()


# ---- which alarm sounds: the decision rules of lib/audio.js alarmSignal() -----------------------------

DECIDE_JS = """
async () => {
  const { alarmSignal } = await import('/lib/audio.js');
  const now = 1000;
  const esc = new Map([['m1', { kind: 'escalated', notify: 'physician', alarm_id: 'm1' }]]);
  const esc2 = new Map([['m1', { kind: 'escalated', notify: 'second_device', alarm_id: 'm1' }]]);
  const alarm = (id, priority, acked = false) =>
    ({ alarm_id: id, priority, text: id, acknowledged_at: acked ? 990 : null });
  const bay = (alarms, extra = {}) =>
    ({ ruleAlarms: alarms, audioPausedUntil: null, escalations: new Map(), ...extra });
  const store = (bays, extra = {}) =>
    ({ connected: true, disconnectedAt: null, bays: new Map(Object.entries(bays)), ...extra });
  const pausedEsc = { escalations: esc, audioPausedUntil: now + 60 };
  const run = (s, ids, station = false) => {
    const r = alarmSignal(s, ids, now, { station });
    return [r.pattern, r.source?.bay ?? null, r.source?.alarm_id ?? null, r.paused];
  };
  return {
    nothing: run(store({ b1: bay([]) }), ['b1']),
    acked_high_unacked_medium: run(store({ b1: bay([alarm('h1', 'high', true), alarm('m1', 'medium')]) }), ['b1']),
    unacked_high: run(store({ b1: bay([alarm('m1', 'medium'), alarm('h1', 'high')]) }), ['b1']),
    paused: run(store({ b1: bay([alarm('h1', 'high')], { audioPausedUntil: now + 60 }) }), ['b1']),
    pause_over: run(store({ b1: bay([alarm('h1', 'high')], { audioPausedUntil: now - 1 }) }), ['b1']),
    info_only: run(store({ b1: bay([alarm('i1', 'info')]) }), ['b1']),
    station_escalated_paused: run(store({ b1: bay([alarm('m1', 'medium')], pausedEsc) }), ['b1'], true),
    bedside_escalated_paused: run(store({ b1: bay([alarm('m1', 'medium')], pausedEsc) }), ['b1']),
    station_second_device: run(store({ b1: bay([alarm('m1', 'medium')], { escalations: esc2 }) }), ['b1'], true),
    station_two_bays:
      run(store({ b1: bay([alarm('l1', 'low')]), b2: bay([alarm('m1', 'medium')]) }), ['b1', 'b2'], true),
    other_bay_not_shown: run(store({ b1: bay([]), b2: bay([alarm('h1', 'high')]) }), ['b1']),
    link_lost_3s: run(store({}, { connected: false, disconnectedAt: now - 3 }), []),
    link_lost_12s: run(store({}, { connected: false, disconnectedAt: now - 12 }), []),
  };
}
"""


async def test_which_alarm_sounds(oversedation: VigilProcess, browser: Browser) -> None:  # noqa: F811
    page, problems = await open_page(browser, oversedation.url)
    r = await page.evaluate(DECIDE_JS)
    assert r["nothing"] == ["none", None, None, False]
    assert r["acked_high_unacked_medium"] == ["medium", "b1", "m1", False]  # acknowledged alarms are silent
    assert r["unacked_high"] == ["high", "b1", "h1", False]  # the highest unacknowledged one sounds
    assert r["paused"] == ["none", None, None, True]  # audio pause silences the bay
    assert r["pause_over"] == ["high", "b1", "h1", False]  # ... until audio_paused_until
    assert r["info_only"][0] == "none"  # info flags are logged, never sounded
    assert r["station_escalated_paused"] == ["high", "b1", "m1", False]  # escalated to the physician: HIGH
    assert r["bedside_escalated_paused"][0] == "none"  # the bedside keeps its pause
    assert r["station_second_device"] == ["medium", "b1", "m1", False]  # only physician escalations turn HIGH
    assert r["station_two_bays"] == ["medium", "b2", "m1", False]
    assert r["other_bay_not_shown"][0] == "none"  # only the page's bays sound
    assert r["link_lost_3s"][0] == "none"
    assert r["link_lost_12s"][0] == "low"  # a lost link must not silence the screen silently
    assert not problems, problems
    await page.close()


BURST_JS = """
async () => {
  const { AlarmAudio, burstLength, PATTERNS } = await import('/lib/audio.js');
  const a = new AlarmAudio();
  a.enable();  // evaluate() runs as a user gesture
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const src = { bay: 'b1', alarm_id: 'h1', text: 'test' };
  const out = {};
  a.update({ pattern: 'high', source: src, paused: false }, false);
  await sleep(400);
  out.started = [a.pattern, a.bursts];
  a.update({ pattern: 'none', source: null, paused: false }, false);  // the condition went away by itself
  out.finishing = a.pattern;  // the burst in progress completes (Table 10: at least half a HIGH burst)
  await sleep(burstLength(PATTERNS.high) * 1000);
  a._pump();
  out.finished = a.pattern;
  a.update({ pattern: 'medium', source: src, paused: false }, false);
  await sleep(200);
  a.update({ pattern: 'none', source: null, paused: false }, true);  // acknowledged by the user: stop now
  out.cut = a.pattern;
  out.state = a.state;
  return out;
}
"""


async def test_burst_completes_unless_the_user_silences_it(oversedation: VigilProcess, browser: Browser) -> None:  # noqa: F811
    page, problems = await open_page(browser, oversedation.url)
    r = await page.evaluate(BURST_JS)
    assert r["started"] == ["high", 1], r
    assert r["finishing"] == "high", r
    assert r["finished"] == "none", r
    assert r["cut"] == "none", r
    assert not problems, problems
    await page.close()
