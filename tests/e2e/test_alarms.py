"""Alarms on the bedside page in real Chromium: an over-sedation scenario (30x) raises IEC-coloured alarms,
the nurse acknowledges with the keyboard, pauses audio, and the alarm log shows who did it."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.async_api import Browser

from tests.conftest import VigilProcess, start, stop_with_ctrl_c
from tests.e2e.test_bedside import ARTIFACTS, browser, open_page  # noqa: F401 - browser is a fixture

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def oversedation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VigilProcess]:
    tmp = tmp_path_factory.mktemp("alarms")
    vp = start(
        [
            "simulate",
            "--scenario",
            "oversedation",
            "--bays",
            "1",
            "--speed",
            "30",
            "--start-min",
            "24",
            "--port",
            "0",
            "--db",
            str(tmp / "alarms.sqlite3"),
        ],
        cwd=tmp,
    )
    yield vp
    code, log = stop_with_ctrl_c(vp)
    assert code == 0, log


async def test_alarm_raised_acknowledged_and_logged_on_bedside(oversedation: VigilProcess, browser: Browser) -> None:  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    page, problems = await open_page(browser, oversedation.url + "bedside.html?bay=bay1")
    await page.wait_for_selector("body[data-connection=open]", timeout=10_000)
    high = page.locator('vigil-alarm-banner .alarm.rule[data-priority="high"]')
    await high.first.wait_for(state="visible", timeout=30_000)
    assert "RESPIRATORY DEPRESSION" in (await high.first.inner_text()).upper()
    colours = set()  # HIGH flashes (IEC 60601-1-8: 1.4-2.8 Hz): sample across a second
    for _ in range(12):
        colours.add(await high.first.evaluate("el => getComputedStyle(el).backgroundColor"))
        await page.wait_for_timeout(90)
    red = [c for c in colours if re.match(r"rgba?\((2[0-5]\d|1[5-9]\d), \d{1,2}, \d{1,2}", c)]
    assert red, f"HIGH never shows red: {colours}"
    assert len(colours) >= 2, f"HIGH does not flash: {colours}"
    controls = page.locator("vigil-alarm-controls")
    assert int(await controls.get_attribute("data-unacked") or 0) >= 1
    await page.screenshot(path=str(ARTIFACTS / "bedside-alarm.png"))

    await page.keyboard.press("a")  # acknowledge all
    await page.wait_for_selector('vigil-alarm-controls[data-unacked="0"]', timeout=5_000)
    await page.keyboard.press("p")  # audio pause with visible countdown
    await page.wait_for_selector("vigil-alarm-controls[data-audio-paused]", timeout=5_000)
    assert "AUDIO PAUSED" in await controls.locator(".audio-paused").inner_text()
    log = page.locator("vigil-alarm-log .log-entry")
    await page.locator('vigil-alarm-log .log-entry[data-kind="acknowledged"]').first.wait_for(timeout=5_000)
    texts = [await log.nth(i).inner_text() for i in range(await log.count())]
    assert any("acknowledged" in t and "local" in t for t in texts), texts
    assert "ack local" in (await high.first.inner_text())
    await page.screenshot(path=str(ARTIFACTS / "bedside-alarm-acknowledged.png"))
    assert not problems, problems
    await page.close()
