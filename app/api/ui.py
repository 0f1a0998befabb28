"""GET /api/ui-config: the few server settings every screen needs before it draws (the clinic's time zone)."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from app.api.deps import CurrentUser, Svc

router = APIRouter()


class UiConfig(BaseModel):
    """Display settings shared by the bedside, station and review pages."""

    model_config = ConfigDict(frozen=True)

    #: IANA zone in which clock times are shown (Settings.clinic_timezone), e.g. "Europe/Berlin".
    clinic_timezone: str


@router.get("/api/ui-config")
async def ui_config(svc: Svc, user: CurrentUser) -> UiConfig:
    """Display settings for the pages (fetched once at page start)."""
    return UiConfig(clinic_timezone=svc.settings.clinic_timezone)
