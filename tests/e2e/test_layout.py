"""The bedside layout at the two screen sizes a clinic has (1920x1080 across the room, 1280x800 on a cart),
in real Chromium, with alarms running (over-sedation at 30x) and a session open: nothing a nurse reads is
clipped (NIBP with its mean, Temp, the procedure clock), the alarm log has room of its own for several
events, the header names the session's patient, and the canvas trend panel is drawn. Screenshots of both
sizes are saved in test-artifacts/."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser

from tests.conftest import VigilProcess, start, stop_with_ctrl_c
from tests.e2e.test_bedside import ARTIFACTS, browser, open_page  # noqa: F401 - browser is a fixture

pytestmark = pytest.mark.e2e

PATIENT: dict[str, Any] = {"identifier": "MRN-4242", "name": "Sam Q Lee", "birth_date": "1980-02-03", "weight_kg": 80}
PLAN = {"dose_mg_per_kg": 0.5, "duration_min": 40, "concentration_mg_per_ml": 1}


@pytest.fixture(scope="module")
def busy_bay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VigilProcess]:
    """One bay in the over-sedation scenario (alarms within seconds)."""
    tmp = tmp_path_factory.mktemp("layout")
    vp = start(
        [
            *("simulate", "--scenario", "oversedation", "--bays", "1", "--speed", "30", "--start-min", "24"),
            *("--port", "0", "--db", str(tmp / "layout.sqlite3")),
        ],
        cwd=tmp,
    )
    yield vp
    code, log = stop_with_ctrl_c(vp)
    assert code == 0, log


# Per element: does its content fit (scrollWidth ≤ clientWidth + 1) and is it inside the viewport?
FITS_JS = """(sel) => [...document.querySelectorAll(sel)].map((el) => {
    const r = el.getBoundingClientRect();
    const text = el.textContent.trim();
    return { sel, text, sw: el.scrollWidth, cw: el.clientWidth, font: getComputedStyle(el).fontSize,
             row: el.parentElement.clientWidth, fits: el.scrollWidth <= el.clientWidth + 1,
             inside: !text || (r.width > 0 && r.bottom <= innerHeight + 1 && r.right <= innerWidth + 1) };
})"""


@pytest.mark.parametrize("size", [(1920, 1080), (1280, 800)], ids=["1920x1080", "1280x800"])
async def test_bedside_layout_readable_at_both_sizes(
    busy_bay: VigilProcess,
    browser: Browser,  # noqa: F811
    size: tuple[int, int],
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    url = busy_bay.url
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        r = await http.get("/api/sessions", params={"bay": "bay1", "active": "true"})
        if not r.json():
            r = await http.post("/api/patients", json=PATIENT)
            assert r.status_code == 201, r.text
            r = await http.post("/api/sessions", json={"patient_id": r.json()["id"], "bay": "bay1", "plan": PLAN})
            assert r.status_code == 201, r.text
            sid = r.json()["session"]["id"]
            r = await http.post(f"/api/sessions/{sid}/transition", json={"to": "baseline"})
            assert r.status_code == 200, r.text
    page, problems = await open_page(browser, url + "bedside.html?bay=bay1")
    await page.set_viewport_size({"width": size[0], "height": size[1]})
    await page.wait_for_selector("body[data-connection=open]", timeout=10_000)
    await page.wait_for_selector("vigil-trends[data-state=ready]", timeout=20_000)
    await page.wait_for_selector('vigil-header .patient[data-linked="true"]', timeout=10_000)
    assert str(PATIENT["name"]) in await page.locator("vigil-header .patient").inner_text()
    # Several alarm events (raised, escalated …) in the log, each on its own visible line.
    await page.wait_for_function(
        "() => document.querySelectorAll('vigil-alarm-log .log-entry').length >= 8", timeout=45_000
    )
    await page.wait_for_selector('[data-param="nibp"][data-state="live"]', timeout=20_000)
    await page.wait_for_timeout(1500)

    visible_lines: int = await page.evaluate(
        """() => {
            const cell = document.querySelector('.log-cell').getBoundingClientRect();
            return [...document.querySelectorAll('vigil-alarm-log .log-entry')]
              .filter((li) => { const r = li.getBoundingClientRect(); return r.height > 0 && r.bottom <= cell.bottom; })
              .length;
        }"""
    )
    assert visible_lines >= (6 if size[0] >= 1920 else 4), visible_lines

    await page.screenshot(path=str(ARTIFACTS / f"bedside-layout-{size[0]}x{size[1]}.png"))
    checks: list[dict[str, Any]] = []
    for sel in (
        "vigil-nibp .value",
        "vigil-nibp .mean",
        'vigil-numeric[param="temp"] .value',
        "vigil-procedure .proc-clock",
        'vigil-numeric[param="hr"] .value',
        'vigil-numeric[param="spo2"] .value',
    ):
        checks += await page.evaluate(FITS_JS, sel)
    bad = [c for c in checks if not (c["fits"] and c["inside"])]
    assert not bad, repr(bad)
    # The NIBP value and its mean do not overlap the Temp numeric beside them.
    gap = await page.evaluate(
        """() => document.querySelector('vigil-numeric[param="temp"]').getBoundingClientRect().left
                 - document.querySelector('vigil-nibp .mean').getBoundingClientRect().right"""
    )
    assert gap >= 0, gap
    # The trend panel is drawn, lined up with the rows, and names its panels in text.
    assert int(await page.get_attribute("vigil-trends", "data-draws") or 0) >= 1
    assert not problems, problems
    await page.close()
