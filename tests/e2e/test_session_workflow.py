"""A whole infusion session run by clicking in the bedside session panel of `vigil demo` (issue 7).

Register the patient and open the session, start the baseline, record it from the monitor, give midazolam,
start the infusion at the calculated rate (confirmed on screen), chart RASS / MOAA/S, side effects and
pain, stop (→ recovery, the clock counts), chart the discharge assessment, and see the discharge scores.
The server keeps a 30-minute recovery minimum on its wall clock and offers no faster clock for sessions,
so the `vigil demo` test ends where real time allows: every criterion met but the recovery time, and
"Ready for discharge" refused with that reason. A second test runs the real app in-process with the
minimum patched down to seconds (test-only) to click on through ready for discharge, discharge, a
returning patient and an abort. The API is only read, to check what the clicks recorded.
Screenshots: test-artifacts/session-*.png (1-6 from the demo, 7-8 from the in-process run).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page

from tests.conftest import VigilProcess, running_server, small_settings, start, stop_with_ctrl_c
from tests.e2e.test_bedside import ARTIFACTS, browser, open_page  # noqa: F401 - browser is a fixture

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def demo_sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VigilProcess]:
    tmp = tmp_path_factory.mktemp("sessions")
    vp = start(["demo", "--port", "0", "--hl7-port", "0", "--db", str(tmp / "sessions.sqlite3")], cwd=tmp)
    yield vp
    code, log = stop_with_ctrl_c(vp)
    assert code == 0, log
    assert "Traceback" not in log, log


async def get(url: str) -> httpx.Response:
    """Read the API without blocking the event loop (the second test's server runs in it)."""
    async with httpx.AsyncClient(timeout=5) as client:
        return await client.get(url)


async def session(base: str) -> dict[str, Any]:
    """The bay's open session, read from the API (to check what the clicks recorded)."""
    r = await get(base + "api/bays/bay1/session")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def click(page: Page, action: str) -> None:
    await page.locator(f'vigil-session-panel button[data-action="{action}"]').click()


async def done(page: Page, text: str) -> None:
    """Wait for the panel to confirm the last action (and show no refusal)."""
    await page.wait_for_function(
        "t => document.querySelector('vigil-session-panel .session-done')?.textContent === t", arg=text, timeout=10_000
    )
    assert await page.locator("vigil-session-panel .session-error").inner_text() == ""


async def phase(page: Page, name: str) -> None:
    await page.wait_for_selector(f'vigil-session-panel[data-phase="{name}"]', timeout=10_000)


async def field(page: Page, name: str) -> str:
    return await page.locator(f'vigil-session-panel [data-field="{name}"]').inner_text()


async def run_to_recovery(page: Page, base: str, shots: bool) -> None:
    """Click through a session from \"no session\" to recovery with every discharge item charted."""
    await page.wait_for_selector("body[data-connection=open]", timeout=10_000)
    panel = page.locator("vigil-session-panel")
    await phase(page, "none")
    assert "no open session" in await panel.locator(".session-toggle").inner_text()
    drawer = panel.locator(".session-drawer")
    assert await drawer.is_hidden()
    await panel.locator(".session-toggle").click()
    await drawer.wait_for(state="visible")

    # Register the patient and open the session (plan defaults: 0.5 mg/kg over 60 min, 10 mg/mL).
    create = panel.locator('[data-group="create"]')
    await create.locator('input[name="identifier"]').fill("E2E-0001")
    await create.locator('input[name="name"]').fill("Alex Example")
    await create.locator('input[name="birth_date"]').fill("1979-04-12")
    await create.locator('input[name="weight_kg"]').fill("72")
    assert await create.locator('input[name="dose_mg_per_kg"]').input_value() == "0.5"
    assert await create.locator('input[name="duration_min"]').input_value() == "60"
    assert await create.locator('input[name="concentration_mg_per_ml"]').input_value() == "10"
    if shots:
        await page.screenshot(path=str(ARTIFACTS / "session-1-new.png"))
    await click(page, "create")
    await phase(page, "planned")
    await page.wait_for_function(
        "() => document.querySelector('vigil-session-panel [data-field=patient]')?.textContent.includes('Alex')"
    )
    assert "E2E-0001" in await field(page, "patient")

    # Baseline, from the monitor, once it has measured a blood pressure (the start gate needs one).
    await click(page, "baseline-phase")
    await phase(page, "baseline")
    assert await field(page, "baseline") == "not recorded"
    await page.wait_for_function(
        "() => /\\d+\\s*\\/\\s*\\d+/.test(document.querySelector('[data-param=nibp] .value')?.textContent || '')",
        timeout=30_000,
    )
    await click(page, "baseline-monitor")
    await done(page, "baseline recorded")
    s = await session(base)
    assert None not in (s["baseline"][k] for k in ("sbp", "dbp", "hr", "spo2"))
    assert re.match(r"BP \d+/\d+ · HR \d+ · SpO2 \d+ %", await field(page, "baseline"))

    # Premedication: midazolam 2 mg IV (the prefilled defaults).
    await click(page, "premedication")
    await phase(page, "premedication")
    await click(page, "medication")
    await done(page, "midazolam 2 mg charted")
    meds = [r["entry"]["item"] for r in (await session(base))["chart"] if r["entry"]["item"]["type"] == "medication"]
    assert meds == [
        {"type": "medication", "drug": "midazolam", "dose": 2.0, "unit": "mg", "route": "iv", "category": None}
    ]

    # Start the infusion: the calculated rate is shown first (72 kg x 0.5 mg/kg over 1 h = 36 mg/h = 3.6 mL/h).
    await click(page, "infusion-start")
    confirm = panel.locator('[data-field="start-rate"]')
    await confirm.wait_for(state="visible")
    assert "3.6 mL/h" in await confirm.inner_text()
    assert "36 mg/h" in await confirm.inner_text()
    if shots:
        await page.screenshot(path=str(ARTIFACTS / "session-2-confirm-rate.png"))
    await click(page, "infusion-confirm")
    await done(page, "infusion started")
    await phase(page, "infusion")
    s = await session(base)
    assert s["pump"]["state"] == "running" and s["pump"]["ml_per_h"] == pytest.approx(3.6)
    assert "3.6 mL/h" in await field(page, "rate")

    # Chart sedation, side effects and pain during the infusion.
    chart = panel.locator('[data-group="chart"]')
    await chart.locator('select[name="rass"]').select_option("-1")
    await chart.locator('select[name="moaas"]').select_option("4")
    await click(page, "sedation")
    await done(page, "sedation charted")
    await chart.locator('select[name="effect"]').select_option("dizziness")
    await chart.locator('select[name="severity"]').select_option("mild")
    await click(page, "side-effects")
    await done(page, "dizziness (mild) charted")
    await chart.locator('select[name="nrs"]').select_option("3")
    await click(page, "pain")
    await done(page, "pain 3/10 charted")
    assert re.search(r"RASS -1 / MOAA/S 4 · (just now|\d+ s ago)", await field(page, "sedation"))
    items = [r["entry"]["item"] for r in (await session(base))["chart"]]
    assert {"type": "sedation", "rass": -1, "moaas": 4} in items
    assert {"type": "side_effects", "effects": {"dizziness": "mild"}, "detail": ""} in items
    assert {"type": "pain", "nrs": 3} in items
    await page.wait_for_timeout(2_500)  # some ketamine is given: dose and the estimate move off zero
    await page.wait_for_function(
        "() => !/^0 mg/.test(document.querySelector('vigil-session-panel [data-field=dose]')?.textContent ?? '0')"
    )
    assert re.match(r"\d{2}:\d{2} of 60 min planned", await field(page, "infusion"))
    assert "estimate" in await field(page, "estimate")
    if shots:
        await page.screenshot(path=str(ARTIFACTS / "session-3-infusion.png"))

    # Stop: recovery, and its clock counts.
    await click(page, "stop")
    await phase(page, "recovery")
    first = await field(page, "recovery")
    assert "minimum " in first and "to go" in first
    await page.wait_for_timeout(2_200)
    second = await field(page, "recovery")
    assert first.split(" ")[0] < second.split(" ")[0], (first, second)
    assert (await session(base))["pump"]["state"] == "stopped"

    # Chart what the discharge scores need: sedation, side effects (none), the assessment.
    await chart.locator('select[name="rass"]').select_option("0")
    await chart.locator('select[name="moaas"]').select_option("5")
    await click(page, "sedation")
    await done(page, "sedation charted")
    await chart.locator('select[name="effect"]').select_option("")
    await click(page, "side-effects")
    await done(page, "no side effects charted")
    assess = panel.locator('[data-group="assessment"]')
    for name, value in [
        ("limbs_moving", "4"),
        ("respiration", "deep"),
        ("consciousness", "awake"),
        ("on_oxygen", "false"),
        ("oriented", "true"),
        ("steady_gait", "true"),
        ("bleeding", "minimal"),
        ("tolerating_fluids", "true"),
        ("voided", "true"),
        ("escort_present", "true"),
    ]:
        await assess.locator(f'select[name="{name}"]').select_option(value)
    await click(page, "assessment")
    await done(page, "assessment charted")
    await page.wait_for_function(
        "() => /^Aldrete 10\\/10/.test(document.querySelector('[data-field=aldrete]').textContent)"
    )
    assert (await field(page, "padss")).startswith("PADSS 10/10")


async def test_nurse_runs_a_session_on_the_bedside_page(demo_sessions: VigilProcess, browser: Browser) -> None:  # noqa: F811
    """`vigil demo` in real time: the flow up to recovery, and discharge refused until 30 min have passed."""
    ARTIFACTS.mkdir(exist_ok=True)
    vp = demo_sessions
    page, problems = await open_page(browser, vp.url + "bedside.html?bay=bay1")
    await run_to_recovery(page, vp.url, shots=True)
    panel = page.locator("vigil-session-panel")
    drawer = panel.locator(".session-drawer")
    await page.wait_for_function(
        "() => document.querySelectorAll('vigil-session-panel .unmet li').length === 1", timeout=10_000
    )
    assert await panel.locator(".unmet li").get_attribute("data-criterion") == "recovery_time"
    assert (await field(page, "readiness")).startswith("Not yet: 1 criterion unmet")
    assert "minimum 30 min" in await field(page, "recovery")
    r = (await session(vp.url))["readiness"]
    assert not r["ready"] and [u.split(":")[0] for u in r["unmet"]] == ["recovery_time"]
    assert r["aldrete"]["total"] == 10 and r["padss"]["total"] == 10
    await panel.locator('[data-field="recovery"]').scroll_into_view_if_needed()
    await page.screenshot(path=str(ARTIFACTS / "session-4-recovery.png"))

    # Too early: the server refuses "ready for discharge" and the panel says why; nothing changes.
    await click(page, "ready")
    refused = "the server responded with a status of 409"  # Chromium logs every 4xx response as an error
    err = panel.locator(".session-error")
    await err.wait_for(state="visible")
    assert "recovery_time" in await err.inner_text() and "of 30 min" in await err.inner_text()
    await phase(page, "recovery")
    assert (await session(vp.url))["phase"] == "recovery"
    await page.screenshot(path=str(ARTIFACTS / "session-5-not-yet.png"))

    # The summary in the info cell still shows the counting recovery clock with the drawer closed.
    await panel.locator(".sp-close").click()
    assert await drawer.is_hidden()
    assert "recovery" in (await panel.locator(".session-toggle").inner_text()).lower()
    await page.screenshot(path=str(ARTIFACTS / "session-6-closed.png"))
    assert [p for p in problems if refused not in p] == [], problems
    assert len(problems) == 1, problems  # only the refusal asked for above
    await page.close()


async def test_recovery_minimum_reached_then_discharge(
    tmp_path: Path,
    browser: Browser,  # noqa: F811
) -> None:
    """The rest of the flow: ready for discharge, discharge.

    The real app runs with the training setting ``training_recovery_min_s`` = 6 s in place of the clinical
    30-minute minimum (CLINICAL.md Table 5); everything else is as in the demo.
    """
    ARTIFACTS.mkdir(exist_ok=True)
    async with running_server(small_settings(tmp_path, bays=1, training_recovery_min_s=6.0)) as srv:
        base = srv.http + "/"
        page, problems = await open_page(browser, base + "bedside.html?bay=bay1")
        await run_to_recovery(page, base, shots=False)
        panel = page.locator("vigil-session-panel")
        assert "minimum 6 s" in await field(page, "recovery")
        await page.wait_for_selector('vigil-session-panel .session-readiness[data-ready="true"]', timeout=20_000)
        assert await field(page, "readiness") == "Meets every discharge criterion"
        assert "minimum reached" in await field(page, "recovery")
        await click(page, "ready")
        await phase(page, "ready_for_discharge")
        await done(page, "ready for discharge")
        checks = next(p for p in (await session(base))["phases"] if p["to_phase"] == "ready_for_discharge")["checks"]
        assert any(c.startswith("recovery_time") for c in checks), checks
        await page.screenshot(path=str(ARTIFACTS / "session-7-ready.png"))
        sid = (await session(base))["id"]
        await click(page, "discharge")
        await done(page, "discharged")
        await phase(page, "none")
        assert "no open session" in await panel.locator(".session-toggle").inner_text()
        assert await panel.locator('[data-group="create"]').is_visible()
        r = await get(f"{base}api/sessions/{sid}")
        assert r.json()["phase"] == "discharged"
        assert (await get(base + "api/bays/bay1/session")).status_code == 404
        await page.screenshot(path=str(ARTIFACTS / "session-8-discharged.png"))

        # Nothing of the discharged patient stays in the form; the same patient returns for another session.
        create = panel.locator('[data-group="create"]')
        assert await create.locator('input[name="name"]').input_value() == ""
        assert await create.locator('input[name="weight_kg"]').input_value() == ""
        await click(page, "create")
        await panel.locator(".session-error").wait_for(state="visible")
        assert "enter the identifier" in await panel.locator(".session-error").inner_text()
        await create.locator('input[name="identifier"]').fill("E2E-0001")
        await create.locator('input[name="name"]').fill("Alex Example")
        await create.locator('input[name="birth_date"]').fill("1979-04-12")
        await create.locator('input[name="weight_kg"]').fill("71")
        await click(page, "create")
        await phase(page, "planned")
        again = await session(base)
        assert again["id"] != sid and again["weight_kg"] == 71
        patients = (await get(base + "api/patients")).json()
        assert [p["identifier"] for p in patients] == ["E2E-0001"]

        # Opened in error: aborted, with a reason, and the bay is free again.
        abort = panel.locator('[data-group="abort"]')
        await abort.locator('input[name="abort_reason"]').fill("opened in error")
        await click(page, "abort")
        await done(page, "session aborted")
        await phase(page, "none")
        aborted = (await get(f"{base}api/sessions/{again['id']}")).json()
        assert aborted["phase"] == "aborted" and aborted["phases"][-1]["reason"] == "opened in error"
        assert not problems, problems
        await page.close()
