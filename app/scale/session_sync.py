"""Session commands across instances: a Redis lock per bay and a Redis stream of what changed.

Why not route every session command to one instance, as alarm inputs go to the bay's alarm owner? A session
command is a request a nurse waits on, with an answer (the new state or a refusal): forwarding it would need a
request/response protocol over Redis and an owner for sessions as well as alarms. Here the instance that
receives the request decides it, but only while holding the bay's lock (``SET key token NX PX``, released by a
compare-and-delete script, so a holder that overran its lease cannot free its successor's lock) and after
re-reading what other instances changed, so it decides on the latest state. The store remains the truth: the
``session-changes`` stream only names the sessions to re-read, and if an instance fell so far behind that
entries were trimmed (the stream's ``entries-added`` counter ran further than the entries it read) or Redis
cannot be read, it re-reads everything from the store. Readers (views) call ``changes`` too, so a nurse looking
at instance A sees, within one request, what a colleague charted through instance B.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

from redis.exceptions import RedisError

from app.sessions.model import Refused
from app.sessions.sync import NOTHING, Changes

log = logging.getLogger(__name__)

_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
#: Entries kept on the change stream (approximately); an instance further behind re-reads everything.
CHANGES_MAXLEN = 10_000


class RedisSessionSync:
    """``SessionSync`` over Redis (see the module docstring)."""

    shared = True

    def __init__(
        self,
        client: Any,
        *,
        cluster: str,
        instance_id: str,
        lock_ttl_s: float = 15.0,
        wait_s: float = 10.0,
    ) -> None:
        self.redis = client
        self.instance_id = instance_id
        self._prefix = f"vigil:{{{cluster}}}:"  # the clinic's hash tag, as the hub's keys
        self._stream = self._prefix + "session-changes"
        self._ttl_ms = int(lock_ttl_s * 1000)
        self._wait_s = wait_s
        self._pos: str | None = None  # last stream entry folded in; None before the first look
        self._added = 0  # the stream's entries-added counter at ``_pos``
        self._release = client.register_script(_RELEASE_LUA)
        self._failing = False

    # ---- the lock ----------------------------------------------------------------------------------

    def exclusive(self, *keys: str) -> AbstractAsyncContextManager[None]:
        return self._held(sorted(set(keys)))  # one order everywhere: no deadlock between two instances

    @contextlib.asynccontextmanager
    async def _held(self, keys: list[str]) -> AsyncIterator[None]:
        token = f"{self.instance_id}:{secrets.token_hex(8)}"
        taken: list[str] = []
        try:
            for key in keys:
                await self._acquire(self._prefix + "session-lock:" + key, token)
                taken.append(key)
            yield
        finally:
            for key in reversed(taken):
                try:
                    await self._release(keys=[self._prefix + "session-lock:" + key], args=[token])
                except RedisError as e:  # the lock expires on its own after its TTL
                    log.warning("session lock %s not released (%s); it expires by itself", key, e)

    async def _acquire(self, name: str, token: str) -> None:
        deadline = time.monotonic() + self._wait_s
        delay = 0.005
        while True:
            try:
                if await self.redis.set(name, token, nx=True, px=self._ttl_ms):
                    self._ok()
                    return
            except RedisError as e:
                self._fail(e)
                raise Refused(
                    "coordination_unavailable",
                    "Other Vigil instances cannot be reached to coordinate this change (Redis); nothing was "
                    "changed. Try again in a moment.",
                    status=503,
                ) from e
            if time.monotonic() >= deadline:
                raise Refused("busy", "Another change to this bay is still being recorded; try again.", status=503)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.1)

    # ---- the change feed ---------------------------------------------------------------------------

    async def changes(self) -> Changes:
        try:
            pipe = self.redis.pipeline(transaction=True)  # the read and the counter seen at one instant
            pipe.xread({self._stream: self._pos or "0-0"}, count=CHANGES_MAXLEN)
            pipe.xinfo_stream(self._stream)
            got, info = await pipe.execute(raise_on_error=False)
            if isinstance(got, Exception):
                raise got
        except RedisError as e:
            self._fail(e)
            return Changes(complete=False)
        self._ok()
        # Redis counts every entry ever added (trimmed ones too): if more were added after our position
        # than the read returned, some were trimmed before we saw them.
        added = int(info.get("entries-added", 0)) if isinstance(info, dict) else 0
        last_id = str(info.get("last-generated-id") or "0-0") if isinstance(info, dict) else "0-0"
        entries = got[0][1] if got else []
        if self._pos is None:  # first look: from now on (the caller reads the store right after)
            self._pos, self._added = last_id, added
            return NOTHING
        complete = added - self._added == len(entries)
        sessions: set[str] = set()
        patients = False
        for _entry_id, fields in entries:
            if fields.get("by") == self.instance_id:
                continue  # this instance's own change: already folded in
            if sid := fields.get("session"):
                sessions.add(sid)
            if fields.get("patient"):
                patients = True
        if complete:
            self._pos = entries[-1][0] if entries else self._pos
            self._added = added
            return Changes(sessions=frozenset(sessions), patients=patients)
        # Entries lost to trimming, more than one read's worth, or a Redis that lost the stream: the caller
        # re-reads the store, and the feed goes on from the newest entry.
        self._pos, self._added = last_id, added
        return Changes(complete=False)

    async def changed(self, *, session_id: str | None = None, patient: bool = False) -> None:
        fields = {"by": self.instance_id, "session": session_id or "", "patient": "1" if patient else ""}
        try:
            await self.redis.xadd(self._stream, fields, maxlen=CHANGES_MAXLEN, approximate=True)
            self._ok()
        except RedisError as e:  # the others re-read this session when the store refuses a stale command
            self._fail(e)

    # ---- logging once --------------------------------------------------------------------------------

    def _fail(self, e: Exception) -> None:
        if not self._failing:
            log.error("session sync: Redis unreachable (%s); commands are refused, views re-read the store", e)
            self._failing = True

    def _ok(self) -> None:
        if self._failing:
            log.info("session sync: Redis reachable again")
            self._failing = False
