"""Lossless waveform codec: int16 samples -> small bytes.

Three codecs, chosen per segment (the id is stored with the segment in ``waves.codec``):

* ``RICE`` (3): a FLAC-style fixed polynomial predictor (order 0..4) and Rice coding of the zigzagged
  residuals, with one Rice parameter per partition of the segment. What the encoder picks: ~20-45 % fewer
  bytes than zstd on ECG, pleth and capnogram (per channel: benchmarks/results/recording.json,
  ``waveform_payload_by_channel``).
* ``DELTA1`` (1) and ``DELTA2`` (2): first or second difference, zigzag, a byte shuffle (low bytes, then high
  bytes) and zstandard. The codecs before RICE: old recordings hold them, so they decode forever. The
  encoder still tries both when RICE spends more than 10 bits per sample, and keeps one when it is smaller
  (long exact repetitions of noisy values); below that, zstd never won on waveforms.

All arithmetic is modulo 2**16 (int16 wraps), so every int16 sequence round-trips exactly, and all of it is
vectorised numpy: no per-sample Python loop (one was measured at ~1 µs per sample and starved the event loop
with 100 beds). On the 2-vCPU development VM a 1 s segment takes ~0.15-0.2 ms to encode and ~0.07-0.09 ms to
decode (zstd alone: ~0.02-0.04 ms each way); nearly all of it is numpy's per-call overhead on small arrays,
so the time hardly depends on the segment length.

RICE blob layout (bit streams are MSB first; every field is MSB first)::

    byte 0   bits 0-2: predictor order p (0..4); bits 3-5: log2 of the partition count P (0..4); bits 6-7: 0
    byte 1   n mod 256 (so a segment decoded with the wrong n is refused)
    then one bit stream, zero-padded to a whole byte (nothing when n = 0):
      5 bits L, then L bits: zigzag(x[0])
      P x 4 bits: the Rice parameter k of each partition; 15 = every residual of the partition is zero
      unary: for each residual of a coded partition, min(q, CAP) zeros and a one (q = z >> k)
      remainders: for each residual of a coded partition, its low k bits
      exceptions: for each escaped residual (q >= CAP), q in 16 bits

The residual of sample i (1..n-1) is the min(i, p)-th difference at i (the warm-up samples use the lower
orders, so no raw warm-up is stored), zigzagged (0, -1, 1, -2 ... -> 0, 1, 2, 3 ...) into z. The m = n - 1
residuals are split into P partitions at m * j // P. An outlier costs at most CAP + 17 + k bits.

The encoder estimates the size of every order, partition count and k from partition sums (``_rice_plan``),
packs only the winner; when it spends more than ``_TRY_ZSTD_ABOVE_BITS`` per sample, it also tries the two zstd
codecs and keeps whichever is smallest. A malformed blob
raises ValueError: every length, bound and padding bit is checked, but there is no checksum (neither the
zstd codecs nor this one has one), so a flipped bit inside the coded residuals decodes to other samples.
"""

from __future__ import annotations

import functools
import threading

import numpy as np
import numpy.typing as npt
import zstandard

#: Codec ids stored with each segment.
DELTA1 = 1
DELTA2 = 2
RICE = 3

_LEVEL = 3  # zstd level: higher levels gained < 5 % on 1 s segments at several times the CPU

_ORDERS = 5  # fixed predictors of order 0..4
_MAX_LOG2_PARTS = 4  # up to 16 partitions (more gained nothing measurable on 1 s segments)
_CAP = 16  # a quotient of CAP or more is an escape: the quotient goes in 16 bits to the exception list
_ZERO = 15  # the "k" of a partition whose residuals are all zero (nothing coded; capnogram baselines)
#: Rice output above this many bits per sample (noise, exact repetitions) is compared with the zstd codecs; below
#: it zstd is not tried: on simulated and real-looking waveforms (3-7 bits per sample) it never won, and trying it
#: took a third of the encoding time, which 100 beds' recording takes from the event loop's share of the GIL.
_TRY_ZSTD_ABOVE_BITS = 10
_KS = np.arange(_ZERO, dtype=np.int32)  # Rice parameters 0..14
_SPREAD = np.arange(15, -1, -1, dtype=np.int32)  # shifts that spread 16 bits MSB first
_COLUMN = [np.arange(k, dtype=np.int32)[None, :] for k in range(17)]  # the bit index within a k-bit field

Int16s = npt.NDArray[np.int16]
Ints = npt.NDArray[np.int64]

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


# --- DELTA1 / DELTA2: delta + zigzag + byte shuffle + zstandard -------------------------------------------


def _undiff(d: Int16s) -> Int16s:
    return np.cumsum(d, dtype=np.int16)  # wraps modulo 2**16 as well


def _zigzag(d: Int16s) -> npt.NDArray[np.uint16]:
    """0, -1, 1, -2 ... -> 0, 1, 2, 3 ... (in int16 arithmetic: the bits are the same)."""
    return ((d << 1) ^ (d >> 15)).view(np.uint16)


def _unzigzag(z: npt.NDArray[np.uint16]) -> Int16s:
    z32 = z.astype(np.int32)
    return ((z32 >> 1) ^ -(z32 & 1)).astype(np.int16)


def _pack(z: npt.NDArray[np.uint16]) -> bytes:
    planes = z.astype("<u2", copy=False).view(np.uint8).reshape(-1, 2).T  # low bytes, then high bytes
    return _zstd()[0].compress(planes.tobytes())  # tobytes copies in C order: the planes one after the other


def _unpack(data: bytes, n: int) -> npt.NDArray[np.uint16]:
    try:
        size = zstandard.frame_content_size(data)
    except zstandard.ZstdError as e:
        raise ValueError(f"waveform segment is not a zstd frame: {e}") from None
    if size != 2 * n:  # checked before decompressing: a corrupt header must not allocate gigabytes
        raise ValueError(f"waveform segment holds {max(size, 0) // 2} samples, expected {n}")
    try:
        b = _zstd()[1].decompress(data)
    except zstandard.ZstdError as e:
        raise ValueError(f"corrupt waveform segment: {e}") from None
    if len(b) != 2 * n:
        raise ValueError(f"waveform segment holds {len(b) // 2} samples, expected {n}")
    planes = np.frombuffer(b, dtype=np.uint8).reshape(2, n)
    return np.ascontiguousarray(planes.T).view("<u2").reshape(n)


# --- RICE: fixed polynomial predictor + partitioned Rice coding --------------------------------------------


def _residuals(x: Int16s) -> npt.NDArray[np.uint16]:
    """Zigzagged residuals of samples 1..n-1 for the predictor orders 0..4, shape (5, n - 1).

    Row p, column i - 1: the min(i, p)-th difference of x at i, modulo 2**16. Row p agrees with row p - 1 on
    the warm-up samples 1..p-1, and after them its differences are those of row p - 1."""
    m = x.size - 1
    r = np.empty((_ORDERS, m), dtype=np.int16)
    r[0] = x[1:]
    np.subtract(x[1:], x[:-1], out=r[1])  # int16: wraps modulo 2**16
    for p in range(2, _ORDERS):
        warm = min(p - 1, m)
        r[p, :warm] = r[p - 1, :warm]
        np.subtract(r[p - 1, p - 1 :], r[p - 1, p - 2 : -1], out=r[p, p - 1 :])
    return _zigzag(r)


class _Layout:
    """How m residuals split into partitions: 2**lp partitions (lp = 0..top), partition j starting at
    m * j // 2**lp, so the levels nest and every partition is a run of the 2**top finest ones. For the
    search, the partitions of all levels lie along one axis, level top first."""

    def __init__(self, m: int) -> None:
        self.top = top = min(_MAX_LOG2_PARTS, m.bit_length() - 1)  # every partition holds >= 1 residual
        self.lens = {lp: np.diff((m * np.arange((1 << lp) + 1, dtype=np.int64)) >> lp) for lp in range(top + 1)}
        self.starts = (m * np.arange(1 << top, dtype=np.int64)) >> top
        levels = range(top, -1, -1)
        self.lo = np.concatenate([np.arange(1 << lp) << (top - lp) for lp in levels])  # in finest partitions
        self.hi = self.lo + np.concatenate([np.full(1 << lp, 1 << (top - lp)) for lp in levels])
        self.fixed = np.concatenate([self.lens[lp] for lp in levels])[None, :] * (1 + _KS[:, None])
        self.first = np.cumsum([0] + [1 << lp for lp in levels])[:-1]
        self.kbits = 4 * np.array([1 << lp for lp in levels], dtype=np.int64)


@functools.lru_cache(maxsize=64)
def _layout(m: int) -> _Layout:
    return _Layout(m)


def _rice_plan(z: npt.NDArray[np.uint16], m: int) -> tuple[int, int, list[int]]:
    """(order, log2 partitions, k per partition) of the smallest coding of the residuals ``z``, estimated
    the way FLAC does: a partition of len residuals summing to S costs about (S >> k) + len * (k + 1) bits
    with Rice parameter k, or only its k field when S is 0. That needs nothing but partition sums, so every
    order, partition count and k is tried on a few hundred numbers. (Costing each residual exactly,
    sum(min(z >> k, CAP) + 16 * escaped), found plans 0.1-0.5 % smaller at about twice the planning time.)"""
    if m == 0:
        return 0, 0, [_ZERO]
    lay = _layout(m)
    run = np.zeros((_ORDERS, (1 << lay.top) + 1), dtype=np.int64)
    np.cumsum(np.add.reduceat(z, lay.starts, axis=1, dtype=np.int64), axis=1, out=run[:, 1:])
    sums = run[:, lay.hi] - run[:, lay.lo]  # (order, every partition of every level)
    total = (sums[:, None, :] >> _KS[:, None]) + lay.fixed  # (order, k, partition)
    k = total.argmin(axis=1)
    bits = total.min(axis=1)
    zero = sums == 0  # nothing but zeros: the partition costs its k field only
    bits[zero] = 0
    k[zero] = _ZERO
    per_level = np.add.reduceat(bits, lay.first, axis=1) + lay.kbits  # (order, level)
    order, level = divmod(int(per_level.argmin()), lay.first.size)
    a = int(lay.first[level])
    ks: list[int] = k[order, a : a + (1 << (lay.top - level))].tolist()
    return order, lay.top - level, ks


def _rice_pack(x: Int16s, z: npt.NDArray[np.uint16], order: int, log2_parts: int, ks: list[int]) -> bytes:
    n = x.size
    m = n - 1
    v = int(x[0])
    z0 = ((v << 1) ^ (v >> 15)) & 0xFFFF
    length = z0.bit_length()
    head = length << length | z0  # 5 bits of length, then the first sample, then the k fields
    for k in ks:
        head = head << 4 | k
    nhead = 5 + length + 4 * len(ks)
    pieces = [np.unpackbits(np.frombuffer((head << (-nhead % 8)).to_bytes((nhead + 7) >> 3, "big"), np.uint8))]
    pieces[0] = pieces[0][:nhead]
    if m > 0 and any(k != _ZERO for k in ks):
        lens = _layout(m).lens[log2_parts]
        zp = z[order].astype(np.int32)
        if _ZERO in ks:  # leave out the all-zero partitions
            coded = [k != _ZERO for k in ks]
            zp = zp[np.repeat(coded, lens)]
            lens = lens[coded]
            ks = [k for k in ks if k != _ZERO]
        kc = np.repeat(np.array(ks, dtype=np.int32), lens)
        q = zp >> kc
        ends = np.cumsum(np.minimum(q, _CAP) + 1)
        unary = np.zeros(int(ends[-1]), dtype=np.uint8)
        unary[ends - 1] = 1
        pieces.append(unary)
        k_max = max(ks)
        if k_max:  # remainders: left-aligned in k_max bits, spread into bits, the first k of each row kept
            rem = ((zp << (k_max - kc)) & ((1 << k_max) - 1))[:, None] >> _SPREAD[16 - k_max :]
            rem &= 1
            pieces.append(rem.astype(np.uint8).ravel() if min(ks) == k_max else rem[_COLUMN[k_max] < kc[:, None]])
        escaped = q >= _CAP
        if escaped.any():
            pieces.append(((q[escaped][:, None] >> _SPREAD) & 1).astype(np.uint8).ravel())
    payload = np.packbits(np.concatenate(pieces)).tobytes()
    return bytes([order | log2_parts << 3, n & 0xFF]) + payload


def _fields(words: Ints, nbits: int, pos: int, widths: Ints) -> tuple[Ints, int]:
    """Fields of the given widths (<= 16 bits each) from bit ``pos`` on, and the position after them.

    ``words[b]`` is the big-endian 32-bit word at byte b of the payload: one gather reads a field at any
    bit offset."""
    ends = np.cumsum(widths)
    end = pos + int(ends[-1])
    if end > nbits:
        raise ValueError("truncated waveform segment")
    starts = ends - widths
    starts += pos
    return (words[starts >> 3] << (starts & 7) & 0xFFFFFFFF) >> (32 - widths), end


def _rice_decode(data: bytes, n: int) -> Int16s:
    if len(data) < 2:
        raise ValueError("truncated waveform segment")
    order, log2_parts = data[0] & 7, data[0] >> 3 & 7
    if data[0] >> 6 or order >= _ORDERS or log2_parts > _MAX_LOG2_PARTS:
        raise ValueError(f"corrupt waveform segment header {data[0]:#04x}")
    if data[1] != n & 0xFF:
        raise ValueError(f"waveform segment holds {data[1]} samples mod 256, expected {n}")
    payload = data[2:]
    nbits = 8 * len(payload)
    if n == 0:
        if payload:
            raise ValueError("trailing bytes after an empty waveform segment")
        return np.zeros(0, dtype=np.int16)
    m = n - 1
    parts = 1 << log2_parts
    if parts > max(m, 1):
        raise ValueError(f"corrupt waveform segment: {parts} partitions of {m} residuals")
    # the first sample and the k fields: at most 5 + 16 + 16 * 4 bits, read as one Python int
    head = int.from_bytes(payload[:11].ljust(11, b"\0"), "big")
    length = head >> 83
    if length > 16:
        raise ValueError("corrupt waveform segment: first sample wider than 16 bits")
    pos = 5 + length + 4 * parts
    if pos > nbits:
        raise ValueError("truncated waveform segment")
    z = np.zeros(n, dtype=np.int32)
    z[0] = head >> (83 - length) & ((1 << length) - 1)
    ks = [head >> (83 - length - 4 * j) & 15 for j in range(1, parts + 1)]
    padded = payload + bytes(4)
    bits = np.unpackbits(np.frombuffer(padded, dtype=np.uint8, count=len(payload)))
    if m and any(k != _ZERO for k in ks):
        lens = _layout(m).lens[log2_parts]
        coded = None
        if _ZERO in ks:
            coded = np.repeat([k != _ZERO for k in ks], lens)
            lens = lens[[k != _ZERO for k in ks]]
            ks = [k for k in ks if k != _ZERO]
        kc = np.repeat(np.array(ks, dtype=np.int64), lens)
        ones = np.flatnonzero(bits[pos:])[: kc.size]
        if ones.size < kc.size:
            raise ValueError("truncated waveform segment")
        pos += int(ones[-1]) + 1
        q = ones  # the run of zeros before each one: the quotient
        q[1:] -= ones[:-1] + 1
        words = np.ndarray((len(payload) + 1,), dtype=">u4", buffer=padded, strides=(1,)).astype(np.int64)
        rem, pos = _fields(words, nbits, pos, kc)
        escaped = q >= _CAP
        if escaped.any():
            if int(q.max()) > _CAP:
                raise ValueError("corrupt waveform segment: unary run beyond the escape")
            q[escaped], pos = _fields(words, nbits, pos, np.full(int(escaped.sum()), 16, dtype=np.int64))
        zc = q << kc
        zc |= rem
        if int(zc.max()) > 0xFFFF:
            raise ValueError("corrupt waveform segment: residual out of range")
        if coded is None:
            z[1:] = zc
        else:
            z[1:][coded] = zc
    if len(payload) != (pos + 7) >> 3 or bits[pos:].any():
        raise ValueError("corrupt waveform segment: length or padding does not match its contents")
    e = ((z >> 1) ^ -(z & 1)).astype(np.int16)
    # e[j] (j < p) is the j-th difference at j and e[p:] the p-th differences: integrating e[j:] in place,
    # from j = p - 1 down to 0, turns the j+1-th differences into the j-th (int16 wraps modulo 2**16)
    for j in range(min(order, n) - 1, -1, -1):
        np.cumsum(e[j:], dtype=np.int16, out=e[j:])
    return e


# --- the public API ------------------------------------------------------------------------------------------


def _zz(v: int) -> int:
    """Zigzag of one value taken modulo 2**16 as int16."""
    v = ((v + 0x8000) & 0xFFFF) - 0x8000
    return ((v << 1) ^ (v >> 15)) & 0xFFFF


def encode(samples: list[int] | tuple[int, ...] | Int16s) -> tuple[int, bytes]:
    """(codec id, bytes) for int16 ``samples``: the smallest of RICE, DELTA1 and DELTA2."""
    x = np.asarray(samples, dtype=np.int16)
    n = x.size
    if n == 0:
        return RICE, bytes([0, 0])
    z = _residuals(x)
    rice = _rice_pack(x, z, *_rice_plan(z, n - 1))
    if 8 * len(rice) <= _TRY_ZSTD_ABOVE_BITS * n:
        return RICE, rice  # a signal the predictors describe well: zstd never came close (and costs as much again)
    # DELTA1 and DELTA2 difference against a 0 before the first sample; after the first one (two) samples
    # their zigzagged differences are rows 1 and 2 of the residuals (the same bytes as the old encoder)
    x0 = int(x[0])
    d = np.empty((2, n), dtype=np.uint16)
    d[:, 0] = _zz(x0)
    d[0, 1:] = z[1]
    if n > 1:
        d[1, 1] = _zz(int(x[1]) - 2 * x0)
        d[1, 2:] = z[2, 1:]
    one = _pack(d[0])
    two = _pack(d[1])
    if len(rice) <= min(len(one), len(two)):
        return RICE, rice
    return (DELTA1, one) if len(one) <= len(two) else (DELTA2, two)


def decode_array(codec: int, data: bytes, n: int) -> Int16s:
    """The ``n`` int16 samples of an encoded segment, as a numpy array; ValueError if ``data`` is not that."""
    if n < 0:
        raise ValueError(f"negative sample count {n} for a waveform segment")
    if codec == RICE:
        return _rice_decode(data, n)
    if codec == DELTA1:
        return _undiff(_unzigzag(_unpack(data, n)))
    if codec == DELTA2:
        return _undiff(_undiff(_unzigzag(_unpack(data, n))))
    raise ValueError(f"unknown waveform codec {codec}")


def decode(codec: int, data: bytes, n: int) -> list[int]:
    """The ``n`` int16 samples of an encoded segment; ValueError if ``data`` is not that."""
    out: list[int] = decode_array(codec, data, n).tolist()
    return out
