"""The clinic's time zone (issue 9.5): a validated setting, served to the pages by GET /api/ui-config."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from app.config import Settings, local_timezone_name, valid_timezone
from tests.conftest import running_server, small_settings


def test_zone_names_are_validated_with_zoneinfo(tmp_path: Path) -> None:
    assert valid_timezone("Europe/Berlin")
    assert valid_timezone("America/Argentina/Buenos_Aires")
    assert valid_timezone("UTC")
    for bad in ("", "Mars/Olympus_Mons", "/etc/passwd", "../etc/passwd", "Europe/Berlin ", "CET-1CEST"):
        assert not valid_timezone(bad), bad
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus_Mons'"):
        small_settings(tmp_path, clinic_timezone="Mars/Olympus_Mons")


def test_zone_comes_from_the_environment_and_defaults_to_the_servers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIGIL_CLINIC_TIMEZONE", "Asia/Kolkata")
    assert Settings().clinic_timezone == "Asia/Kolkata"
    monkeypatch.delenv("VIGIL_CLINIC_TIMEZONE")
    monkeypatch.setenv("TZ", ":Pacific/Auckland")
    assert local_timezone_name() == "Pacific/Auckland"
    assert Settings().clinic_timezone == "Pacific/Auckland"
    monkeypatch.setenv("TZ", "not a zone")  # a POSIX TZ string or junk: fall back to the system files / UTC
    assert valid_timezone(local_timezone_name())


async def test_ui_config_endpoint_serves_the_zone(tmp_path: Path) -> None:
    settings = small_settings(tmp_path, bays=1, clinic_timezone="America/New_York")
    async with running_server(settings) as srv, httpx.AsyncClient(timeout=5) as client:
        r = await client.get(srv.http + "/api/ui-config")
        assert r.status_code == 200, r.text
        assert r.json() == {"clinic_timezone": "America/New_York"}
