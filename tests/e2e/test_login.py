"""Login in real Chromium (issue 11): a signed-out browser is sent to the login page; a nurse created with
``vigil user add`` signs in with her one-time password, must choose her own, lands on the bedside page she
asked for, and acknowledges an alarm (the page sends the CSRF token); the alarm log names her. Sign-out ends
the session."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator

import pytest
from playwright.async_api import Browser

from tests.conftest import VigilProcess, start, stop_with_ctrl_c
from tests.e2e.test_bedside import ARTIFACTS, browser, open_page  # noqa: F401 - browser is a fixture

pytestmark = pytest.mark.e2e
READER: list[str] = []  # the reviewer's one-time password (set by the fixture)


@pytest.fixture(scope="module")
def clinic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[VigilProcess, str]]:
    tmp = tmp_path_factory.mktemp("login")
    db = tmp / "login.sqlite3"
    one_time = {}
    for name, role in (("nina", ["nurse", "--bays", "bay1"]), ("rita", ["reviewer"])):
        added = subprocess.run(
            [sys.executable, "-m", "app", "user", "add", name, "--role", *role, "--db", str(db)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp,
        )
        assert added.returncode == 0, added.stderr
        m = re.search(r"one-time password (\S+)", added.stdout)
        assert m, added.stdout
        one_time[name] = m.group(1)
    args = ["simulate", "--scenario", "oversedation", "--bays", "2", "--speed", "30", "--start-min", "24"]
    vp = start([*args, "--port", "0", "--db", str(db)], cwd=tmp, env={"VIGIL_AUTH": "required"})
    READER.append(one_time["rita"])
    yield vp, one_time["nina"]
    code, log = stop_with_ctrl_c(vp)
    assert code == 0, log


async def test_a_nurse_signs_in_changes_her_password_and_acknowledges_an_alarm(
    clinic: tuple[VigilProcess, str],
    browser: Browser,  # noqa: F811
) -> None:
    vp, one_time = clinic
    ARTIFACTS.mkdir(exist_ok=True)
    page, problems = await open_page(browser, vp.url + "bedside.html?bay=bay1")
    await page.wait_for_url(re.compile(r"/login\.html\?next="), timeout=10_000)
    await page.fill("#username", "nina")
    await page.fill("#password", "not her password")
    await page.click("#login-button")
    await page.wait_for_selector("#login-error:not([hidden])", timeout=5_000)
    assert "wrong password" in (await page.inner_text("#login-error"))
    await page.screenshot(path=str(ARTIFACTS / "login-refused.png"))
    await page.fill("#password", one_time)
    await page.click("#login-button")
    await page.wait_for_selector("#change-form:not([hidden])", timeout=5_000)
    await page.fill("#new-password", "nina's own passphrase")
    await page.fill("#new-password-2", "nina's own passphrase")
    await page.screenshot(path=str(ARTIFACTS / "login-change-password.png"))
    await page.click("#change-button")
    await page.wait_for_url(re.compile(r"/bedside\.html\?bay=bay1$"), timeout=10_000)
    await page.wait_for_selector("body[data-connection=open]", timeout=10_000)
    chip = page.locator("#user-chip")
    await chip.wait_for(timeout=5_000)
    assert "nina · nurse" in await chip.inner_text()
    high = page.locator('vigil-alarm-banner .alarm.rule[data-priority="high"]')
    await high.first.wait_for(state="visible", timeout=40_000)
    await page.keyboard.press("a")  # acknowledge all: a POST that needs the CSRF token
    await page.wait_for_selector('vigil-alarm-controls[data-unacked="0"]', timeout=5_000)
    await page.locator('vigil-alarm-log .log-entry[data-kind="acknowledged"]').first.wait_for(timeout=5_000)
    log = page.locator("vigil-alarm-log .log-entry")
    texts = [await log.nth(i).inner_text() for i in range(await log.count())]
    assert any("acknowledged" in t and "nina" in t for t in texts), texts
    await page.screenshot(path=str(ARTIFACTS / "login-bedside-nurse.png"))
    other = await page.request.get(vp.url + "api/bays/bay2/alarms")
    assert other.status == 403  # not her bay
    await page.goto(vp.url + "station.html")
    await page.wait_for_selector("body[data-connection=open]", timeout=10_000)
    await page.wait_for_timeout(1500)
    tiles = await page.locator("vigil-bay-tile").evaluate_all(
        "els => els.map(e => e.getAttribute('bay') || e.dataset.bay)"
    )
    await page.screenshot(path=str(ARTIFACTS / "login-station-nurse.png"))
    assert tiles == ["bay1"], tiles  # the station shows her bays only
    chip = page.locator("#user-chip")
    await chip.locator("button").click()
    await page.wait_for_url(re.compile(r"/login\.html"), timeout=10_000)
    after = await page.request.get(vp.url + "api/me")
    assert after.status == 401
    assert not [p for p in problems if "401" not in p and "403" not in p], problems
    await page.close()


async def test_the_start_page_offers_a_reviewer_only_what_she_may_use(
    clinic: tuple[VigilProcess, str],
    browser: Browser,  # noqa: F811
) -> None:
    vp, _ = clinic
    page, problems = await open_page(browser, vp.url)
    await page.wait_for_url(re.compile(r"/login\.html"), timeout=10_000)
    await page.fill("#username", "rita")
    await page.fill("#password", READER[0])
    await page.click("#login-button")
    await page.wait_for_selector("#change-form:not([hidden])", timeout=5_000)
    await page.fill("#new-password", "rita reviews sessions")
    await page.fill("#new-password-2", "rita reviews sessions")
    await page.click("#change-button")
    await page.wait_for_url(re.compile(r"/$"), timeout=10_000)
    await page.wait_for_selector("#review-views:not([hidden])", timeout=5_000)
    assert await page.locator("#review-link").is_visible()
    for hidden in ("#live-views", "#bedside-views", "#admin-views", "#nothing"):
        assert await page.locator(hidden).is_hidden(), hidden
    await page.wait_for_timeout(500)
    assert "Could not load" not in await page.locator("body").inner_text()
    await page.screenshot(path=str(ARTIFACTS / "index-reviewer.png"))
    assert not [p for p in problems if "401" not in p], problems  # nothing refused: no /api/bays asked
    await page.close()
