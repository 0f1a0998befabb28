"""Nonin OEM III / Xpod "data format 2" serial output, sans-I/O: decoder and encoder.

Facts used, and where they were checked (public sources, read 2026-11-25):

- 5-byte frames: ``0x01``, status, pleth (0–255), "float" byte, checksum = sum of the first four bytes
  mod 256; a frame is valid when byte 1 is 0x01, status bit 7 is set and the checksum matches; the first
  frame of a packet has status bit 0 set as well (status & 0x81 == 0x81): Pufferfish ventilator firmware,
  github.com/pez-globo/pufferfish-software ``Driver/Serial/Nonin/FrameReceiver.cpp`` and ``Types.h``.
- Status bits: 6 SNSD sensor disconnect, 5 ARTF artifact, 4 OOT out of track, 3 SNSA sensor alarm,
  2–1 perfusion (01 green, 11 yellow, 10 red = low signal quality): Pufferfish ``Types.h``; meanings of
  SNSA ("unusable data ... when the finger is removed") and OOT ("absence of consecutive good pulse
  signals") and that perfusion bits are set only during a pulse: Oxford IBME Cordova plugin
  ``uk.ac.ox.ibme.nonin`` ``NoninPacket.java`` / ``NoninFrame.java``.
- 25 frames make a packet (1/3 s, so 75 frames/s); float byte by frame position: 0 HR MSB (bits 1–0 are
  HR8–HR7), 1 HR LSB (bits 6–0), 2 SpO2 4-beat average "formatted for recording" (goes invalid at once when
  the finger is removed), 3 firmware revision, 5–6 3 Hz timer, 7 STAT2, 8 SpO2 for display, 9 fast SpO2,
  10 beat-to-beat SpO2, 13–14 extended HR, 15–16 extended SpO2, 19–22 HR for display; invalid values are
  127 (SpO2) and 511 (HR): ``NoninPacket.java`` (uk.ac.ox.ibme.nonin) and Pufferfish ``Types.h``.
- Not verified here: 9600 baud 8N1 [unverified: PROTOCOLS.md §2].

Decoding rules: a frame is used only with a good start byte, status bit 7 and checksum. After garbage or a
half frame the decoder scans byte by byte and resynchronises on the first valid frame that is followed by
another valid frame (one frame of look-ahead; a lone lucky match in noise is about 1 in 131 072), so pleth
resumes within a frame. Numerics are taken only from whole packets: 25 consecutive valid frames starting at
a frame-1 marker, with no marker inside and a marker right after (a lost frame makes the next marker arrive
early, an extra frame makes it late; either way the packet is thrown away, because float bytes are
meaningful only by position). One ``Numerics`` is emitted per three
packets (≈1 s) with the last packet's HR (→ ``pr``, the oximeter's pulse rate) and SpO2, and the technical
conditions seen in any frame of that second. Pleth goes out as 15-sample (0.2 s) chunks on a sample clock
anchored at arrival and re-anchored when it drifts from arrival by more than a second.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from monitors.models import Quality, WaveformChunk
from monitors.protocols.serial_common import (
    ConditionTracker,
    Decoded,
    GarbageRun,
    Numerics,
    oximetry_quality,
    reading,
)

DIALECT = "nonin-df2"

FRAME = 5
PACKET = 25
FS = 75.0
CHUNK = 15  # samples per WaveformChunk (0.2 s)
PACKETS_PER_REPORT = 3  # one Numerics per second

START = 0x01
BIT7 = 0x80
SNSD = 0x40  # sensor disconnect
ARTF = 0x20  # artifact
OOT = 0x10  # out of track
SNSA = 0x08  # sensor alarm
RPRF = 0x04  # red perfusion (with GPRF: yellow)
GPRF = 0x02  # green perfusion
SYNC = 0x01  # frame 1 of a packet

INVALID_SPO2 = 127
INVALID_HR = 511

# Float-byte positions within a packet.
HR_MSB, HR_LSB, SPO2, FIRMWARE, TIMER_MSB, TIMER_LSB = 0, 1, 2, 3, 5, 6

_BEHIND = timedelta(seconds=1.0)  # re-anchor the sample clock when it lags arrival by more than this ...
_AHEAD = timedelta(seconds=0.5)  # ... or runs ahead of it by more than this


def frame_ok(buf: bytes | bytearray, i: int = 0) -> bool:
    """True when ``buf[i:i+5]`` is a valid frame (start byte, status bit 7, checksum)."""
    return (
        buf[i] == START
        and buf[i + 1] & BIT7 != 0
        and (buf[i] + buf[i + 1] + buf[i + 2] + buf[i + 3]) & 0xFF == buf[i + 4]
    )


def status_conditions(status: int) -> set[str]:
    """Technical conditions one status byte reports."""
    out = set()
    if status & SNSD:
        out.add("no_sensor")
    if status & SNSA:
        out.add("probe_off")
    if status & OOT:
        out.add("pulse_search")
    if status & ARTF:
        out.add("artifact")
    if status & (RPRF | GPRF) == RPRF:
        out.add("low_perfusion")
    return out


class NoninDf2Decoder:
    """Decodes a Nonin data format 2 byte stream into pleth chunks and one Numerics per second."""

    dialect = DIALECT

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self._buf = bytearray()
        self._synced = False
        self._packet: list[int] | None = None  # float bytes of the packet being received
        self._held: list[int] | None = None  # a whole packet waiting for the next packet's marker
        self._packets_since_report = 0
        self._last: tuple[float | None, float | None] | None = None  # (hr, spo2) of the last whole packet
        self._status_or = 0
        self._garbage = GarbageRun()
        self._conditions = ConditionTracker(device_id, clear_after=2)
        self._anchor: datetime | None = None  # wall time of sample index 0
        self._n = 0  # index of the next sample
        self._pending: list[int] = []
        self._pending_start = 0
        # diagnostics
        self.frames = 0
        self.packets = 0
        self.packets_dropped = 0
        self.resyncs = 0

    def reset(self) -> None:
        """Forget partial input, synchronisation and the sample clock (the port was reopened)."""
        self._buf.clear()
        self._synced = False
        self._packet = self._held = None
        self._anchor = None
        self._pending = []

    def feed(self, data: bytes, now: datetime) -> list[Decoded]:
        """Consume ``data``; return pleth chunks, Numerics and Garbage in order."""
        out: list[Decoded] = []
        buf = self._buf
        buf += data
        i = 0
        n = len(buf)
        while n - i >= FRAME:
            if self._synced:
                if frame_ok(buf, i):
                    self._frame(buf[i + 1], buf[i + 2], buf[i + 3], now, (n - i) // FRAME - 1, out)
                    i += FRAME
                    continue
                self._lose_sync(out)
            if frame_ok(buf, i):
                if n - i < 2 * FRAME:
                    break  # wait for the confirming frame
                if frame_ok(buf, i + FRAME):
                    self._synced = True
                    self.resyncs += 1
                    self._garbage.flush(out)
                    continue
            self._garbage.add(buf[i : i + 1], "out of frame sync")
            i += 1
        del buf[:i]
        return out

    def _lose_sync(self, out: list[Decoded]) -> None:
        self._synced = False
        if self._packet is not None or self._held is not None:
            self.packets_dropped += 1
        self._packet = self._held = None
        self._flush_chunk(out)
        self._anchor = None  # samples are being lost: restart the sample clock at the next frame

    def _frame(self, status: int, pleth: int, flt: int, now: datetime, frames_after: int, out: list[Decoded]) -> None:
        self.frames += 1
        t = now - timedelta(seconds=frames_after / FS)
        self._sample(pleth, t, out)
        if self._held is not None:  # a whole packet counts only if the next packet starts right after it
            if status & SYNC:
                self._packet_done(self._held, t, out)
            else:
                self.packets_dropped += 1  # 25 frames but no marker after them: a frame too many inside
            self._held = None
        self._status_or |= status  # after the commit above: this frame belongs to the next report
        if status & SYNC:
            if self._packet is not None:
                self.packets_dropped += 1  # a marker inside a packet: a frame was lost
            self._packet = [flt]
        elif self._packet is not None:
            self._packet.append(flt)
        if self._packet is not None and len(self._packet) == PACKET:
            self._held = self._packet
            self._packet = None

    def _sample(self, value: int, t: datetime, out: list[Decoded]) -> None:
        if self._anchor is not None:
            expected = self._anchor + timedelta(seconds=self._n / FS)
            if t - expected > _BEHIND or expected - t > _AHEAD:
                self._flush_chunk(out)
                self._anchor = None
        if self._anchor is None:
            self._anchor = t - timedelta(seconds=self._n / FS)
        if not self._pending:
            self._pending_start = self._n
        self._pending.append(value)
        self._n += 1
        if len(self._pending) >= CHUNK:
            self._flush_chunk(out)

    def _flush_chunk(self, out: list[Decoded]) -> None:
        if not self._pending or self._anchor is None:
            self._pending = []
            return
        out.append(
            WaveformChunk(
                device_id=self.device_id,
                channel="pleth",
                t0=self._anchor + timedelta(seconds=self._pending_start / FS),
                fs=FS,
                samples=tuple(self._pending),
                unit="1",
            )
        )
        self._pending = []

    def _packet_done(self, flt: list[int], t: datetime, out: list[Decoded]) -> None:
        self.packets += 1
        hr_raw = ((flt[HR_MSB] & 0x03) << 7) | (flt[HR_LSB] & 0x7F)
        spo2_raw = flt[SPO2] & 0x7F
        hr = None if hr_raw == INVALID_HR else float(hr_raw)
        spo2 = None if spo2_raw == INVALID_SPO2 else float(spo2_raw)
        self._last = (hr, spo2)
        self._packets_since_report += 1
        if self._packets_since_report < PACKETS_PER_REPORT:
            return
        self._packets_since_report = 0
        active = status_conditions(self._status_or)
        self._status_or = 0
        alarms = self._conditions.update(active, t)
        quality = oximetry_quality(active)
        out.append(
            Numerics(
                (
                    *alarms,
                    reading(self.device_id, "spo2", spo2, t, t, quality),
                    reading(self.device_id, "pr", hr, t, t, quality),
                )
            )
        )


def encode_frame(status: int, pleth: int, flt: int) -> bytes:
    """One frame: start byte, status (bit 7 forced), pleth, float byte, checksum."""
    head = bytes((START, (status | BIT7) & 0xFF, pleth & 0xFF, flt & 0xFF))
    return head + bytes((sum(head) & 0xFF,))


class NoninDf2Encoder:
    """Encodes pleth samples plus the current HR, SpO2 and conditions as DF2 frames, keeping packet position."""

    def __init__(self, firmware_revision: int = 0x2A) -> None:
        self.firmware_revision = firmware_revision & 0x7F
        self.hr: float | None = None
        self.spo2: float | None = None
        self.conditions: set[str] = set()
        self._pos = 0
        self._timer = 0

    def _status(self) -> int:
        s = BIT7
        c = self.conditions
        if "no_sensor" in c:
            s |= SNSD
        if c & {"probe_off", "sensor_fault"}:
            s |= SNSA
        if "pulse_search" in c:
            s |= OOT
        if "artifact" in c:
            s |= ARTF
        s |= RPRF if "low_perfusion" in c else GPRF
        if self._pos == 0:
            s |= SYNC
        return s

    def _float(self) -> int:
        invalid = oximetry_quality(self.conditions) is Quality.INVALID
        hr = INVALID_HR if self.hr is None or invalid else min(510, max(0, round(self.hr)))
        spo2 = INVALID_SPO2 if self.spo2 is None or invalid else min(100, max(0, round(self.spo2)))
        match self._pos:
            case 0 | 13 | 19 | 21:
                return (hr >> 7) & 0x03
            case 1 | 14 | 20 | 22:
                return hr & 0x7F
            case 2 | 8 | 9 | 10 | 15 | 16:
                return spo2
            case 3:
                return self.firmware_revision
            case 5:
                return (self._timer >> 7) & 0x7F
            case 6:
                return self._timer & 0x7F
            case _:
                return 0

    def frames(self, pleth: Sequence[int]) -> bytes:
        """Frames carrying ``pleth`` (one sample per frame, clipped to 0–255)."""
        out = bytearray()
        for v in pleth:
            out += encode_frame(self._status(), min(255, max(0, v)), self._float())
            self._pos += 1
            if self._pos == PACKET:
                self._pos = 0
                self._timer = (self._timer + 1) & 0x3FFF
        return bytes(out)

    def set_values(self, *, hr: float | None, spo2: float | None, conditions: Collection[str]) -> None:
        """Values the next frames carry."""
        self.hr = hr
        self.spo2 = spo2
        self.conditions = set(conditions)
