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
        carry = st.carry
        out: list[int] = []
        for start in range(0, n_blocks * factor, factor):
            block = carry[start : start + factor]
            # The sample farthest from the mean is the block's max or its min (on a tie, the earlier one).
            hi = max(block)
            lo = min(block)
            total = sum(block)
            over = hi * factor - total  # (hi - mean) * factor, in integers: no rounding
            under = total - lo * factor
            if over > under or (over == under and block.index(hi) < block.index(lo)):
                out.append(hi)
            else:
                out.append(lo)
        out_t0 = st.carry_t0
        used = n_blocks * factor
        del carry[:used]
        st.carry_t0 = out_t0 + used / fs
        return out_t0, fs / factor, out
