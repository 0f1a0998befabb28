"""Sessions in the store (append-only tables, rebuilt after reopening) and the service's all-or-nothing commit."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from app.alarming import AlarmService
from app.alarms.engine import AlarmEngine
from app.alarms.model import Phase
from app.alarms.profile import load_profile
from app.hub import InProcessHub
from app.live import LiveState
from app.sessions import workflow
from app.sessions.model import NewPatient, NewSession, Refused, Transition
from app.sessions.service import SessionService
from app.store import Record
from app.store.sqlite import SQLiteStore
from tests.sessions.helpers import NURSE, PLAN, drive


async def test_events_and_patients_round_trip_through_sqlite(tmp_path: Path) -> None:
    run = drive(Phase.DISCHARGED)
    path = tmp_path / "s.sqlite3"
    store = SQLiteStore(path)
    await store.open()
    await store.append([Record(None, run.patient), *(Record("bay1", e) for e in run.state.events)])
    await store.close()
    again = SQLiteStore(path)
    await again.open()
    try:
        assert await again.patients() == [run.patient]
        events = await again.session_events(session_id=run.state.id)
        assert workflow.rebuild(run.state.id, events) == run.state
        assert await again.count("sessions") == 1 and await again.count("session_events") == len(events)
        # append-only: a second event with the same (session, seq) is rejected, nothing of the batch is kept
        with pytest.raises(sqlite3.IntegrityError):
            await again.append([Record("bay1", events[-1])])
        assert await again.count("session_events") == len(events)
    finally:
        await again.close()


async def test_new_tables_are_added_to_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    with sqlite3.connect(path) as conn:
        conn.executescript("DROP TABLE patients; DROP TABLE sessions; DROP TABLE session_events;")
    store = SQLiteStore(path)
    await store.open()
    try:
        assert await store.patients() == [] and await store.session_events() == []
    finally:
        await store.close()


def phase(alarms: AlarmService) -> Phase:
    """bay1's phase in the alarm engine."""
    return alarms.states["bay1"].phase


class FailingStore:
    """A store whose commits fail (disk full)."""

    def __init__(self) -> None:
        self.fail = False

    def append(self, records: Sequence[Record]) -> asyncio.Future[None]:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail:
            fut.set_exception(sqlite3.OperationalError("database or disk is full"))
        else:
            fut.set_result(None)
        return fut


async def test_a_failed_commit_changes_nothing() -> None:
    hub = InProcessHub(LiveState([("bay1", "Bay 1")]))
    store = FailingStore()
    alarms = AlarmService(AlarmEngine(load_profile()), ["bay1"], hub, store)  # type: ignore[arg-type]
    alarms.phase_source["bay1"] = lambda: "infusion"
    svc = SessionService(store, alarms, hub)  # type: ignore[arg-type]
    p = await svc.create_patient(
        NewPatient.model_validate({"identifier": "X1", "name": "N", "birth_date": "1980-01-01", "weight_kg": 70}),
        NURSE,
    )
    state, _ = await svc.create_session(NewSession(patient_id=p.id, bay="bay1", plan=PLAN), NURSE)
    assert "bay1" not in alarms.phase_source and alarms.states["bay1"].phase is Phase.PLANNED
    store.fail = True
    with pytest.raises(Refused) as info:
        await svc.handle(state.id, Transition(to=Phase.BASELINE), NURSE)
    assert info.value.status == 503 and "nothing was changed" in info.value.reason
    assert svc.get(state.id) is state and alarms.states["bay1"].phase is Phase.PLANNED
    new = NewPatient.model_validate({"identifier": "X2", "name": "M", "birth_date": "1980-01-01"})
    with pytest.raises(Refused):
        await svc.create_patient(new, NURSE)
    assert [q.identifier for q in svc.patients.values()] == ["X1"]
    store.fail = False
    await svc.handle(state.id, Transition(to=Phase.BASELINE), NURSE)
    assert phase(alarms) is Phase.BASELINE
