"""Waveform decimation for overview screens (station tiles draw ≤ 25 Hz strips).

Peak-preserving: each output sample is the input sample of its block farthest from the block's mean, so
R waves and capnogram edges survive where a plain average would flatten them. State is kept per stream so
blocks continue across chunk boundaries; a time discontinuity (a gap) restarts the stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(slots=True)
class _Stream:
    factor: int
    carry: list[int]
    carry_t0: float  # time of carry[0]
    next_t: float  # expected t0 of the next input chunk


class Decimator:
    """Decimates many streams, each identified by a key."""

    def __init__(self, max_hz: float) -> None:
        self.max_hz = max_hz
        self._streams: dict[tuple[str, str], _Stream] = {}

    def factor(self, fs: float) -> int:
        """Integer decimation factor that brings ``fs`` to at most ``max_hz``."""
        return max(1, math.ceil(fs / self.max_hz - 1e-9))

    def feed(
        self, key: tuple[str, str], t0: float, fs: float, samples: list[int] | tuple[int, ...]
    ) -> tuple[float, float, list[int]] | None:
        """Add a chunk; returns (t0, fs, samples) of the decimated output, or None if none is ready."""
        factor = self.factor(fs)
        st = self._streams.get(key)
        tolerance = 1.5 / fs
        if st is None or st.factor != factor or abs(t0 - st.next_t) > tolerance:
            st = _Stream(factor, [], t0, t0)
            self._streams[key] = st
        if not st.carry:
            st.carry_t0 = t0
        st.carry.extend(samples)
        st.next_t = t0 + len(samples) / fs
        n_blocks = len(st.carry) // factor
        if n_blocks == 0:
            return None
        out: list[int] = []
        for b in range(n_blocks):
            block = st.carry[b * factor : (b + 1) * factor]
            mean = sum(block) / factor
            out.append(max(block, key=lambda s: abs(s - mean)))
        out_t0 = st.carry_t0
        used = n_blocks * factor
        st.carry = st.carry[used:]
        st.carry_t0 = out_t0 + used / fs
        return out_t0, fs / factor, out
