"""Coalesce incoming waveform chunks (0.2 s from the simulator, any size from HL7) into ~1 s segments.

One buffer per (bay, device, channel, fs, unit, gain). A chunk that continues the buffer without a gap is
appended; a gap, overlap or change of rate/gain/bay closes the buffer first. A buffer is emitted as soon as it
holds ``target_s`` of samples (longer chunks are cut into ``target_s`` pieces), and ``flush_idle`` emits buffers
that stopped growing (a device went silent), so at most about ``target_s`` plus the idle limit of samples is
ever only in memory. HL7 chunks are also archived raw before they are acknowledged, so nothing acknowledged
depends on this buffer.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from app.recording.model import WaveSegment
from monitors.models import WaveformChunk

_Key = tuple[str | None, str, str, float, str, float]


@dataclass(slots=True)
class _Buf:
    bay: str | None
    chunk: WaveformChunk  # the first chunk (device, channel, fs, unit, gain)
    t0: datetime
    samples: list[int] = field(default_factory=list)
    touched: float = 0.0

    def end(self) -> datetime:
        return self.t0 + timedelta(seconds=len(self.samples) / self.chunk.fs)


class WaveChunker:
    """Turns a stream of WaveformChunks into WaveSegments of about ``target_s`` seconds."""

    def __init__(self, target_s: float = 1.0, *, clock: Callable[[], float] = time.monotonic) -> None:
        if target_s <= 0:
            raise ValueError("target_s must be positive")
        self.target_s = target_s
        self._clock = clock
        self._bufs: dict[_Key, _Buf] = {}

    @property
    def buffered_samples(self) -> int:
        """Samples held in memory, not yet emitted."""
        return sum(len(b.samples) for b in self._bufs.values())

    def add(self, bay: str | None, c: WaveformChunk) -> list[WaveSegment]:
        """Take one chunk; return the segments it completed."""
        key: _Key = (bay, c.device_id, c.channel, c.fs, c.unit, c.gain)
        out: list[WaveSegment] = []
        buf = self._bufs.get(key)
        if buf is not None:
            gap = (c.t0 - buf.end()).total_seconds()
            if abs(gap) > max(0.5 / c.fs, 0.002):  # not contiguous (HL7 times have ms resolution)
                out.append(self._segment(buf, buf.t0, buf.samples))
                buf = None
        if buf is None:
            buf = _Buf(bay, c, c.t0)
            self._bufs[key] = buf
        buf.samples.extend(c.samples)
        buf.touched = self._clock()
        n_target = max(1, round(self.target_s * c.fs))
        while len(buf.samples) >= n_target:
            piece, buf.samples = buf.samples[:n_target], buf.samples[n_target:]
            out.append(self._segment(buf, buf.t0, piece))
            buf.t0 = buf.t0 + timedelta(seconds=n_target / c.fs)
        if not buf.samples:
            del self._bufs[key]
        return out

    def flush_idle(self, idle_s: float) -> list[WaveSegment]:
        """Emit buffers that have not grown for ``idle_s`` seconds."""
        now = self._clock()
        done = [k for k, b in self._bufs.items() if now - b.touched >= idle_s]
        return [self._pop(k) for k in done]

    def flush(self) -> list[WaveSegment]:
        """Emit everything buffered (shutdown)."""
        return [self._pop(k) for k in list(self._bufs)]

    def _pop(self, key: _Key) -> WaveSegment:
        buf = self._bufs.pop(key)
        return self._segment(buf, buf.t0, buf.samples)

    @staticmethod
    def _segment(buf: _Buf, t0: datetime, samples: list[int]) -> WaveSegment:
        c = buf.chunk
        return WaveSegment(
            bay=buf.bay,
            device_id=c.device_id,
            channel=c.channel,
            t0=t0,
            fs=c.fs,
            unit=c.unit,
            gain=c.gain,
            samples=tuple(samples),
        )
