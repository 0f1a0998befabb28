"""How the session services of several instances stay one.

Sessions and patients live in the store (append-only); each instance keeps them folded in memory for its
views. With one instance that memory is the truth. With several instances sharing one store, an instance
must (1) hear which sessions another instance changed, and (2) never decide a command on a stale session:
two nurses' clicks on two instances must not both pass the workflow's checks against the same old state.

``SessionSync`` gives both: ``exclusive`` holds a cluster-wide lock while a command refreshes, decides and
commits; ``changes`` tells what others changed since the last call; ``changed`` announces a commit. The store
stays the source of truth: the feed only says what to re-read, and a feed that lost entries asks for a full
re-read. ``LocalSync`` (one instance) is no lock of its own and an empty feed; the Redis implementation is in
app/scale/session_sync.py.
"""

from __future__ import annotations

import contextlib
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Changes:
    """What other instances changed since the last look."""

    #: Sessions with new events.
    sessions: frozenset[str] = field(default_factory=frozenset)
    #: Whether a patient was registered.
    patients: bool = False
    #: False when the feed cannot say (entries lost, feed unreachable): re-read everything from the store.
    complete: bool = True


NOTHING = Changes()


class SessionSync(Protocol):
    """Cluster-wide lock and change feed for session commands (see the module docstring)."""

    #: Whether other instances share the store (False: this instance's memory is the truth).
    shared: bool

    def exclusive(self, *keys: str) -> AbstractAsyncContextManager[None]:
        """Hold ``keys`` (e.g. ``bay:bay1``, ``registry``) across every instance; raises ``Refused`` (503) when
        the lock cannot be had in time or the coordinator is unreachable."""
        ...

    async def changes(self) -> Changes:
        """What other instances announced since the last call (never raises: an unreachable feed answers
        ``complete=False``)."""
        ...

    async def changed(self, *, session_id: str | None = None, patient: bool = False) -> None:
        """Announce a committed change (best effort: a lost announcement is caught by the store's uniqueness
        of session event numbers and a full re-read)."""
        ...


class LocalSync:
    """One instance: its memory is the truth; the session service's own lock serialises commands."""

    shared = False

    def exclusive(self, *keys: str) -> AbstractAsyncContextManager[None]:
        return contextlib.nullcontext()

    async def changes(self) -> Changes:
        return NOTHING

    async def changed(self, *, session_id: str | None = None, patient: bool = False) -> None:
        return None
