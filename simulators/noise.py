"""Deterministic, seekable noise: pure functions of (seed, stream, index or time), no hidden state.

An integer hash (SplitMix64 finaliser) turns (seed, stream, k) into a uniform value, so any time point
can be evaluated without replaying the past, and the same inputs give the same floats on every run.
"""

from __future__ import annotations

import math

_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def uniform(seed: int, stream: int, k: int) -> float:
    """A uniform value in [0, 1) for integer index ``k`` of ``stream``."""
    return _mix((seed * 1_000_003 + stream) * 2_147_483_647 + k) / 18446744073709551616.0


def signed(seed: int, stream: int, k: int) -> float:
    """A uniform value in [-1, 1)."""
    return 2.0 * uniform(seed, stream, k) - 1.0


def gauss(seed: int, stream: int, k: int) -> float:
    """A standard normal value (Box–Muller on two hashed uniforms)."""
    u1 = uniform(seed, stream, 2 * k) or 1e-300
    u2 = uniform(seed, stream, 2 * k + 1)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def smooth(seed: int, stream: int, t: float, period: float) -> float:
    """Smooth noise in [-1, 1]: cosine interpolation between random knots ``period`` seconds apart."""
    x = t / period
    k = math.floor(x)
    f = x - k
    a = signed(seed, stream, k)
    b = signed(seed, stream, k + 1)
    w = (1.0 - math.cos(math.pi * f)) * 0.5
    return a + (b - a) * w
