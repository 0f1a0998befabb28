"""Lossless waveform codec: int16 samples -> small bytes (delta + zigzag + byte shuffle + zstandard).

Waveforms are smooth: consecutive samples differ by a little, so the first (or second) difference is small.
Differences are taken modulo 2**16 (so any int16 sequence round-trips exactly), mapped to unsigned by
zigzag (0, -1, 1, -2 ... -> 0, 1, 2, 3 ...), split into a plane of low bytes and a plane of high bytes (the
high plane is nearly all zeros) and compressed with zstandard. Each segment is encoded both ways (first and
second difference) and the smaller is kept; the codec id says which. The arithmetic runs in numpy (a pure
Python loop was measured at ~1 µs per sample and starved the event loop when 100 beds were recorded).
Sizes: see benchmarks/bench_recording.py.
"""

from __future__ import annotations

import threading

import numpy as np
import zstandard

#: Codec ids stored with each segment.
DELTA1 = 1
DELTA2 = 2
_LEVEL = 3  # zstd level: higher levels gained < 5 % on 1 s segments at several times the CPU

_local = threading.local()


def _zstd() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    pair: tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor] | None = getattr(_local, "pair", None)
    if pair is None:  # compressor objects are not thread-safe: one pair per thread
        pair = (
            zstandard.ZstdCompressor(level=_LEVEL, write_content_size=True, write_checksum=False, write_dict_id=False),
            zstandard.ZstdDecompressor(),
        )
        _local.pair = pair
    return pair


def _diff(x: np.ndarray) -> np.ndarray:
    """First difference modulo 2**16 (the first sample against 0), as int16."""
    d = np.empty_like(x)
    d[0] = x[0]
    np.subtract(x[1:], x[:-1], out=d[1:])  # int16 arithmetic wraps modulo 2**16
    return d


def _undiff(d: np.ndarray) -> np.ndarray:
    return np.cumsum(d, dtype=np.int16)  # wraps modulo 2**16 as well


def _zigzag(d: np.ndarray) -> np.ndarray:
    return ((d.astype(np.int32) << 1) ^ (d.astype(np.int32) >> 15)).astype(np.uint16)


def _unzigzag(z: np.ndarray) -> np.ndarray:
    z32 = z.astype(np.int32)
    return ((z32 >> 1) ^ -(z32 & 1)).astype(np.int16)


def _pack(z: np.ndarray) -> bytes:
    planes = z.astype("<u2").view(np.uint8).reshape(-1, 2).T  # low bytes, then high bytes
    return _zstd()[0].compress(np.ascontiguousarray(planes).tobytes())


def _unpack(data: bytes, n: int) -> np.ndarray:
    b = _zstd()[1].decompress(data)
    if len(b) != 2 * n:
        raise ValueError(f"waveform segment holds {len(b) // 2} samples, expected {n}")
    planes = np.frombuffer(b, dtype=np.uint8).reshape(2, n)
    return np.ascontiguousarray(planes.T).view("<u2").reshape(n)


def encode(samples: list[int] | tuple[int, ...]) -> tuple[int, bytes]:
    """(codec id, bytes) for int16 ``samples``: the smaller of first- and second-difference coding."""
    x = np.asarray(samples, dtype=np.int16)
    if x.size == 0:
        return DELTA1, _pack(x.astype(np.uint16))
    d1 = _diff(x)
    one = _pack(_zigzag(d1))
    two = _pack(_zigzag(_diff(d1)))
    return (DELTA1, one) if len(one) <= len(two) else (DELTA2, two)


def decode(codec: int, data: bytes, n: int) -> list[int]:
    """The ``n`` int16 samples of an encoded segment."""
    d = _unzigzag(_unpack(data, n))
    if codec == DELTA1:
        return [int(v) for v in _undiff(d).tolist()]
    if codec == DELTA2:
        return [int(v) for v in _undiff(_undiff(d)).tolist()]
    raise ValueError(f"unknown waveform codec {codec}")
