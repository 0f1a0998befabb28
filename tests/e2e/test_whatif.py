"""The what-if component (<vigil-whatif>, issue 8 item 4) in real Chromium on frontend/whatif.html.

A whole over-sedation session is recorded into the in-process server's store first; the reviewer re-runs it
unchanged (every row "both"), loosens the SpO₂ limits (the SpO₂ alarm becomes "only recorded", highlighted
and labelled), clicks that row (a ``vigil-seek`` event with its time), and a delay the profile refuses shows
the server's reason. Screenshot: test-artifacts/whatif.png.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page

from tests.conftest import RecordedSession, RunningServer, running_server, small_settings
from tests.e2e.test_bedside import ARTIFACTS, browser, open_page  # noqa: F401 - browser is a fixture

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]  # recording, then three engine runs of 90 minutes

RUN_TIMEOUT_MS = 180_000  # one what-if run of a 90-minute session on a busy CI core


@pytest.fixture
async def served(tmp_path: Path, recorded_session: RecordedSession) -> AsyncIterator[tuple[RunningServer, str]]:
    """A server (no live monitors) on a copy of the shared recording (one finished over-sedation session)."""
    db = recorded_session.copy_to(tmp_path / "vigil.sqlite3")
    settings = small_settings(tmp_path, bays=1, monitors=[], db_path=db)
    async with running_server(settings) as srv:
        yield srv, recorded_session.session_id


async def rerun(page: Page) -> None:
    await page.locator("vigil-whatif button.whatif-run").click()
    await page.wait_for_selector('vigil-whatif:is([data-state="done"], [data-state="error"])', timeout=RUN_TIMEOUT_MS)


async def test_whatif_rerun_compare_and_seek(served: tuple[RunningServer, str], browser: Browser) -> None:  # noqa: F811
    srv, sid = served
    ARTIFACTS.mkdir(exist_ok=True)
    page, problems = await open_page(browser, f"{srv.http}/whatif.html?session={sid}")
    el = page.locator("vigil-whatif")
    await page.wait_for_selector(
        'vigil-whatif[data-state="idle"] input[data-rule="spo2_low"]', state="attached", timeout=15_000
    )
    await page.locator('vigil-whatif details[data-rule="spo2_low"] > summary').click()  # rules start folded
    spo2 = page.locator('vigil-whatif input[data-rule="spo2_low"][data-field="value"]')
    assert await spo2.count() == 3
    assert [await spo2.nth(i).input_value() for i in range(3)] == ["92", "90", "85"]

    # Unchanged: the same alarms fire.
    await rerun(page)
    assert await el.get_attribute("data-state") == "done"
    rows = page.locator("vigil-whatif tr.whatif-row")
    n = await rows.count()
    assert n > 0
    assert await page.locator('vigil-whatif tr.whatif-row[data-match="both"]').count() == n
    both = page.locator('vigil-whatif .whatif-summary [data-count="both"]')
    assert (await both.inner_text()).startswith(f"{n} ")

    # Looser SpO2 limits: the recorded SpO2 alarm would not have fired.
    for i in range(3):
        await spo2.nth(i).fill("50")
    await rerun(page)
    only = page.locator('vigil-whatif tr.whatif-row[data-match="only_recorded"][data-rule="spo2_low"]')
    assert await only.count() >= 1
    row = only.first
    assert "only recorded" in await row.locator("td.match").inner_text()
    text = await row.inner_text()
    assert "!!" in text and ("HIGH" in text or "MEDIUM" in text)  # priority as text, not only colour
    bg = await row.evaluate("el => getComputedStyle(el).backgroundColor")
    plain = await page.locator('vigil-whatif tr.whatif-row[data-match="both"]').first.evaluate(
        "el => getComputedStyle(el).backgroundColor"
    )
    assert bg != plain, "rows only on one side are highlighted"
    await page.screenshot(path=str(ARTIFACTS / "whatif.png"), full_page=True)

    # Clicking a row asks the page to seek there.
    t = float(await row.get_attribute("data-t") or "nan")
    await page.evaluate(
        "() => { window.__seeks = [];"
        " document.addEventListener('vigil-seek', (e) => window.__seeks.push(e.detail.t)); }"
    )
    await row.click()
    assert await page.evaluate("() => window.__seeks") == [t]
    assert float(await page.locator("body").get_attribute("data-seek") or "nan") == t
    assert "Seek to" in await page.locator("#whatif-seek").inner_text()

    # A delay the profile refuses: the server's reason, the last result kept.
    delay = page.locator('vigil-whatif input[data-rule="spo2_low"][data-level="0"][data-field="delay_s"]')
    await delay.fill("99999")
    await rerun(page)
    assert await el.get_attribute("data-state") == "error"
    error = page.locator("vigil-whatif .whatif-error")
    assert await error.is_visible()
    assert "delay_s" in await error.inner_text()
    assert await only.count() >= 1

    # Reset restores the profile's own numbers.
    await page.locator("vigil-whatif button.whatif-reset").click()
    assert await delay.input_value() == "15" and await spo2.nth(0).input_value() == "92"
    refused = [p for p in problems if "status of 422" not in p]  # the refused run is logged by Chromium
    assert not refused, refused
    await page.close()
