"""IHE PCD-01 (ORU^R01) and PCD-04 (ORU^R40) decoding: payload bytes → readings, waveforms, device alarms.

Rules (PROTOCOLS.md §1 unless noted):

* Charset: MSH-18 picks the codec (``8859/1`` → Latin-1, ``UNICODE UTF-8`` → UTF-8, ``ASCII`` / empty →
  ASCII, falling back to UTF-8 then Latin-1 with a problem noted); decoding never raises.
* Header checks (``DecodeError``, HL7 table 0357 codes): MSH-9/10/11/12 present (101); version 2.3–2.8
  (203); processing id P/D/T (202); message type ORU (200) with trigger R01 or R40 (201); an OBX before
  any OBR, or no OBR at all, is a segment sequence error (100). Unparseable text is 100 too.
* OBX-3 → catalogue: any MDC code (``code^RefId^MDC`` triplets, dual coding included), then any RefId text,
  then LOINC (``^LN``). A row whose kind does not fit (NA for a numeric) falls back to the RefId.
* Rows with neither OBX-2 nor OBX-5 are structure (MDS/VMD/channel/container) and not observations.
  ``MDC_ATTR_*`` rows are facets of the metric at their parent OBX-4 path (sample rate, data range).
* OBX-6 → catalogue UCUM unit via :mod:`monitors.protocols.units` (conversion when needed).
* OBX-11: R/F/C valid; X → ``Reading(value=None, quality=invalid)``; D → skipped (problem); other →
  questionable.
* Time: OBX-14, else the OBX-14 of the parent container row, else OBR-7, else MSH-7. A time without an
  offset takes MSH-7's offset; if MSH-7 has none either, UTC is assumed and noted once as a problem.
* ``device_id`` of an observation: its own OBX-18, else the OBX-18 of the MDS row (OBX-4 ``m`` or
  ``m.0.0.0``) with the same MDS number in the same OBR group, else in the message, else MSH-3 (its
  universal id, component 2, when present, else component 1). Of an OBX-18 (EI), the universal id
  (component 3) is used when component 4 says ``EUI-64``, else component 1. A 16-hex-digit id is
  upper-cased. ``Decoded.device_id`` is the message-level identity (first MDS row id, else first OBX-18,
  else MSH-3).
* Waveforms (OBX-2 NA): samples split on the component separator; integer samples are kept with the unit's
  scale as gain; decimal samples are quantised to int16 using the ``MDC_ATTR_DATA_RANGE`` facet (or
  their own range). fs from the ``MDC_ATTR_SAMP_RATE`` facet, else OBR-8 − OBR-7 / count.
* ORU^R40: alert facets (OBX-4 ``<metric>.<n>``) grouped by parent path and matched by RefId text
  (``MDC_ATTR_EVENT_PHASE``, ``MDC_ATTR_ALARM_PRIORITY``, ``MDC_ATTR_ALERT_TYPE``, ...); priority and type
  fall back to the event row's OBX-8 (``A~PM~SA``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Final, Literal

from pydantic import ValidationError

from monitors import parameters
from monitors.models import AlarmKind, DeviceAlarm, Priority, Quality, Reading, WaveformChunk
from monitors.parameters import Kind, Parameter
from monitors.protocols import units
from monitors.protocols.hl7 import Encoding, HL7ParseError, Message, Segment, parse

Item = Reading | WaveformChunk | DeviceAlarm

SUPPORTED_VERSIONS: Final = ("2.3", "2.4", "2.5", "2.6", "2.7", "2.8")
PROCESSING_IDS: Final = ("P", "D", "T")
TRIGGERS: Final = ("R01", "R40")

ERROR_NAMES: Final[dict[int, str]] = {
    0: "Message accepted",
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    104: "Value too long",
    200: "Unsupported message type",
    201: "Unsupported event code",
    202: "Unsupported processing id",
    203: "Unsupported version id",
    204: "Unknown key identifier",
    205: "Duplicate key identifier",
    206: "Application record locked",
    207: "Application internal error",
}


@dataclass(frozen=True, slots=True)
class MessageHeader:
    """What MSH says (raw wire text, escapes kept, so it can be echoed into an ACK with the same delimiters)."""

    control_id: str | None
    message_type: tuple[str, str]
    message_structure: str = ""
    version: str = ""
    processing_id: str = ""
    accept_ack_type: str = ""
    app_ack_type: str = ""
    sending_app: str = ""
    sending_facility: str = ""
    receiving_app: str = ""
    receiving_facility: str = ""
    timestamp: str = ""
    charset: str = ""
    profile: str = ""
    field_sep: str = "|"
    encoding_chars: str = "^~\\&"

    @property
    def enhanced_mode(self) -> bool:
        """True when MSH-15 or MSH-16 is set (enhanced acknowledgement mode)."""
        return bool(self.accept_ack_type or self.app_ack_type)


class DecodeError(Exception):
    """A message that cannot be decoded; ``code`` is an HL7 table 0357 error code for ERR-3."""

    def __init__(self, code: int, message: str, control_id: str | None, header: MessageHeader | None = None) -> None:
        super().__init__(f"{code} {ERROR_NAMES.get(code, 'Error')}: {message}")
        self.code = code
        self.message = message
        self.control_id = control_id
        self.header = header

    @property
    def ack_code(self) -> Literal["AE", "AR"]:
        """The suggested original-mode answer: AR for 2xx (rejected), AE for 1xx (content in error)."""
        return "AR" if self.code >= 200 else "AE"


@dataclass(frozen=True, slots=True)
class UnknownObservation:
    """An OBX row that carried data but could not be mapped; kept so it is counted, not silently lost."""

    code: str  # OBX-3 as on the wire
    segment: str  # the whole OBX segment text
    reason: str


@dataclass(frozen=True, slots=True)
class Decoded:
    """The result of decoding one message."""

    header: MessageHeader
    location: str | None
    patient_id: str | None
    device_id: str
    items: tuple[Item, ...]
    unknown: tuple[UnknownObservation, ...]
    problems: tuple[str, ...]
    received: datetime

    @property
    def control_id(self) -> str | None:
        """MSH-10."""
        return self.header.control_id

    @property
    def message_type(self) -> tuple[str, str]:
        """MSH-9 type and trigger, e.g. ("ORU", "R01")."""
        return self.header.message_type


# --------------------------------------------------------------------------- charset and header peeking

_CODECS: Final[dict[str, str]] = {
    "": "ascii",
    "ASCII": "ascii",
    "8859/1": "latin-1",
    "8859/2": "iso8859-2",
    "8859/3": "iso8859-3",
    "8859/4": "iso8859-4",
    "8859/5": "iso8859-5",
    "8859/6": "iso8859-6",
    "8859/7": "iso8859-7",
    "8859/8": "iso8859-8",
    "8859/9": "iso8859-9",
    "8859/15": "iso8859-15",
    "UNICODE UTF-8": "utf-8",
    "UTF-8": "utf-8",
    "UTF8": "utf-8",
    "WINDOWS-1252": "cp1252",
    "CP1252": "cp1252",
}


def codec_for(charset: str) -> str | None:
    """The Python codec for an MSH-18 value (first repetition), or None when unknown."""
    return _CODECS.get(charset.strip().upper())


def _msh_line(payload: bytes) -> str | None:
    start = payload.find(b"MSH")
    if start < 0:
        return None
    end = len(payload)
    for term in (b"\r", b"\n"):
        j = payload.find(term, start)
        if 0 <= j < end:
            end = j
    return payload[start:end].decode("latin-1")


def _header_from_fields(f: list[str], enc: Encoding) -> MessageHeader:
    def g(n: int) -> str:
        return f[n] if n < len(f) else ""

    def comp(n: int, c: int) -> str:
        parts = g(n).split(enc.component)
        return parts[c - 1] if c <= len(parts) else ""

    return MessageHeader(
        control_id=enc.unescape(g(10)).strip() or None,
        message_type=(comp(9, 1).strip(), comp(9, 2).strip()),
        message_structure=comp(9, 3).strip(),
        version=comp(12, 1).strip(),
        processing_id=comp(11, 1).strip(),
        accept_ack_type=g(15).strip(),
        app_ack_type=g(16).strip(),
        sending_app=g(3),
        sending_facility=g(4),
        receiving_app=g(5),
        receiving_facility=g(6),
        timestamp=comp(7, 1).strip(),
        charset=g(18).split(enc.repetition)[0].strip(),
        profile=g(21),
        field_sep=enc.field,
        encoding_chars=enc.msh2,
    )


def peek_header(payload: bytes) -> MessageHeader | None:
    """A best-effort MSH read from raw bytes (no full parse); None when no MSH can be found."""
    try:
        line = _msh_line(payload)
        if line is None or len(line) < 5:
            return None
        fs = line[3]
        if fs.isalnum() or fs.isspace():
            return None
        raw = line.split(fs)
        chars = raw[1] if len(raw) > 1 else ""
        if 4 <= len(chars) <= 5 and len(set(chars + fs)) == len(chars) + 1:
            enc = Encoding(fs, chars[0], chars[1], chars[2], chars[3], chars[4] if len(chars) == 5 else None)
        else:
            enc = Encoding(field=fs) if fs != "|" else Encoding()
        return _header_from_fields(["MSH", fs, *raw[1:]], enc)
    except Exception:  # peeking garbage must never raise
        return None


def peek_control_id(payload: bytes) -> str | None:
    """MSH-10 from raw (possibly broken or truncated) bytes, or None."""
    h = peek_header(payload)
    return h.control_id if h is not None else None


def _decode_text(payload: bytes, problems: list[str]) -> str:
    line = _msh_line(payload)
    charset = ""
    if line is not None and len(line) > 8:
        fields = line.split(line[3])
        if len(fields) > 17:
            charset = fields[17].split("~")[0].strip()
    codec = codec_for(charset)
    if codec is None:
        problems.append(f"MSH-18 character set {charset!r} not supported; decoded as UTF-8")
        return payload.decode("utf-8", errors="replace")
    if codec == "ascii":
        if payload.isascii():
            return payload.decode("ascii")
        try:
            text = payload.decode("utf-8")
            problems.append("non-ASCII bytes without an MSH-18 character set; decoded as UTF-8")
            return text
        except UnicodeDecodeError:
            problems.append("non-ASCII bytes without an MSH-18 character set; decoded as Latin-1")
            return payload.decode("latin-1")
    try:
        return payload.decode(codec)
    except UnicodeDecodeError:
        problems.append(f"bytes invalid for MSH-18 {charset!r}; undecodable bytes replaced")
        return payload.decode(codec, errors="replace")


# --------------------------------------------------------------------------- times

_DTM = re.compile(r"^(\d{4})(\d\d)?(\d\d)?(\d\d)?(\d\d)?(\d\d)?(?:\.(\d{1,6})\d*)?\s*(?:([+-])(\d\d)(\d\d))?$")


def parse_dtm(text: str) -> tuple[datetime, timezone | None] | None:
    """An HL7 DTM (``YYYY[MM[DD[HH[MM[SS[.S…]]]]]][+/-ZZZZ]``) as a naive time and its offset, or None."""
    m = _DTM.match(text.strip())
    if m is None:
        return None
    y, mo, d, h, mi, s, frac, sign, oh, om = m.groups()
    try:
        t = datetime(
            int(y),
            int(mo or 1),
            int(d or 1),
            int(h or 0),
            int(mi or 0),
            int(s or 0),
            int((frac or "0").ljust(6, "0")),
        )
        tz: timezone | None = None
        if sign:
            minutes = int(oh) * 60 + int(om)
            if minutes >= 24 * 60:
                return None
            tz = timezone(timedelta(minutes=minutes if sign == "+" else -minutes))
    except ValueError:
        return None
    return t, tz


class _Clock:
    """Resolves observation times to aware UTC datetimes per the fallback rules."""

    __slots__ = ("_cache", "_msh", "msh_tz", "problems", "utc_assumed")

    def __init__(self, msh7: str, problems: list[str]) -> None:
        self.problems = problems
        self.utc_assumed = False
        self._cache: dict[str, datetime | None] = {}
        p = parse_dtm(msh7) if msh7 else None
        self.msh_tz = p[1] if p else None
        self._msh = msh7 if p else ""  # resolved lazily: an offset-less MSH-7 only matters when used

    def _aware(self, p: tuple[datetime, timezone | None]) -> datetime | None:
        t, tz = p
        if tz is None:
            tz = self.msh_tz
        if tz is None:
            if not self.utc_assumed:
                self.utc_assumed = True
                self.problems.append("times carry no time-zone offset (nor does MSH-7); UTC assumed")
            tz = UTC
        try:
            return t.replace(tzinfo=tz).astimezone(UTC)
        except OverflowError:  # e.g. year 9999 with a negative offset
            return None

    def _resolve(self, c: str) -> datetime | None:
        if c in self._cache:
            return self._cache[c]
        p = parse_dtm(c)
        hit = self._aware(p) if p else None
        if hit is None:
            self.problems.append(f"unparseable time {c[:40]!r} ignored")
        self._cache[c] = hit
        return hit

    def get(self, *candidates: str) -> datetime | None:
        """The first parseable candidate, else MSH-7, as aware UTC."""
        for c in candidates:
            if c:
                hit = self._resolve(c)
                if hit is not None:
                    return hit
        return self._resolve(self._msh) if self._msh else None


# --------------------------------------------------------------------------- code and id helpers

_HEX16 = re.compile(r"^[0-9A-Fa-f]{16}$")
_STATUS_VALID = frozenset({"R", "F", "C"})


def _norm_id(text: str) -> str:
    t = text.strip()
    return t.upper() if _HEX16.match(t) else t


def equipment_id(comps: tuple[str, ...] | list[str]) -> str:
    """The device id in an EI (OBX-18 repetition): universal id when typed EUI-64, else the entity id."""
    c1 = comps[0].strip() if comps else ""
    c3 = comps[2].strip() if len(comps) > 2 else ""
    c4 = comps[3].strip().upper() if len(comps) > 3 else ""
    if c4 == "EUI-64" and c3:
        return _norm_id(c3)
    return _norm_id(c1 or c3)


def sender_id(msh3: str, enc: Encoding) -> str:
    """The device id implied by MSH-3 (HD): universal id when present, else namespace id."""
    comps = msh3.split(enc.component)
    uid = enc.unescape(comps[1]) if len(comps) > 1 else ""
    return _norm_id(uid) or _norm_id(enc.unescape(comps[0]))


@dataclass(frozen=True, slots=True)
class _Code:
    param: Parameter | None
    alt: Parameter | None  # the RefId/LOINC match, for kind mismatches of the code match
    refid: str
    label: str


_CODE_CACHE: dict[tuple[str, str, str], _Code] = {}


def _lookup_code(raw: str, enc: Encoding) -> _Code:
    key = (raw, enc.component, enc.escape)
    hit = _CODE_CACHE.get(key)
    if hit is not None:
        return hit
    comps = [enc.unescape(c).strip() for c in raw.split(enc.component)]
    mdc_codes: list[int] = []
    refids: list[str] = []
    loincs: list[str] = []
    for i in range(0, len(comps), 3):
        ident = comps[i]
        text = comps[i + 1] if i + 1 < len(comps) else ""
        system = comps[i + 2].upper() if i + 2 < len(comps) else ""
        if system in ("LN", "LOINC"):
            if ident:
                loincs.append(ident)
        else:
            if ident.isdigit():
                mdc_codes.append(int(ident))
            if text.upper().startswith(("MDC_", "MDCX_")):
                refids.append(text.upper())
            elif ident.upper().startswith(("MDC_", "MDCX_")):
                refids.append(ident.upper())
    by_code = next((p for c in mdc_codes if (p := parameters.by_mdc_code(c)) is not None), None)
    by_ref = next((p for r in refids if (p := parameters.by_refid(r)) is not None), None)
    by_ln = next((p for c in loincs if (p := parameters.by_loinc(c)) is not None), None)
    primary = by_code or by_ref or by_ln
    alt = by_ref or by_ln if by_code is not None else by_ln if by_ref is not None else None
    refid = refids[0] if refids else ""
    label = " ".join(x for x in (comps[0] if comps else "", refid) if x)
    hit = _Code(primary, alt, refid, label)
    if len(_CODE_CACHE) < 4096:
        _CODE_CACHE[key] = hit
    return hit


_UNIT_CACHE: dict[tuple[str, str, str], units.Resolved | None] = {}


def _lookup_unit(raw: str, enc: Encoding) -> units.Resolved | None:
    key = (raw, enc.component, enc.escape)
    if key in _UNIT_CACHE:
        return _UNIT_CACHE[key]
    comps = [enc.unescape(c) for c in raw.split(enc.component)]
    comps += [""] * (3 - len(comps))
    hit = units.resolve(comps[0], comps[1], comps[2])
    if len(_UNIT_CACHE) < 4096:
        _UNIT_CACHE[key] = hit
    return hit


def _parent(path: str) -> str:
    i = path.rfind(".")
    return path[:i] if i > 0 else ""


def _mds_of(path: str) -> str:
    i = path.find(".")
    return path[:i] if i > 0 else path


def _is_mds_row(path: str) -> bool:
    parts = path.split(".")
    return bool(parts[0]) and all(p == "0" for p in parts[1:])


def _number(text: str) -> float | None:
    t = text.strip()
    if not t:
        return None
    try:
        v = float(t)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


# --------------------------------------------------------------------------- decoding


class _Group:
    __slots__ = ("obr", "obx")

    def __init__(self, obr: Segment) -> None:
        self.obr = obr
        self.obx: list[Segment] = []


def _check_header(h: MessageHeader) -> None:
    cid = h.control_id
    for label, value in (
        ("MSH-9 message type", h.message_type[0]),
        ("MSH-10 message control id", cid),
        ("MSH-11 processing id", h.processing_id),
        ("MSH-12 version id", h.version),
    ):
        if not value:
            raise DecodeError(101, f"{label} is missing", cid, h)
    if not h.version.startswith(SUPPORTED_VERSIONS) or (len(h.version) > 3 and h.version[3] != "."):
        raise DecodeError(203, f"HL7 version {h.version!r} not supported (2.3-2.8)", cid, h)
    if h.processing_id not in PROCESSING_IDS:
        raise DecodeError(202, f"processing id {h.processing_id!r} not supported (P, D, T)", cid, h)
    if h.message_type[0] != "ORU":
        raise DecodeError(200, f"message type {h.message_type[0]!r} not supported (ORU only)", cid, h)
    if h.message_type[1] not in TRIGGERS:
        raise DecodeError(201, f"event {h.message_type[1]!r} not supported (R01, R40)", cid, h)


def decode(payload: bytes, *, received: datetime, default_fs: Mapping[str, float] | None = None) -> Decoded:
    """Decode one MLLP payload; raise DecodeError when the message as a whole cannot be used.

    ``default_fs`` (channel key → samples per second) is used for waveforms whose sender states no rate
    (no ``MDC_ATTR_SAMP_RATE`` facet, no OBR-7/OBR-8 block), e.g. from the adapter's device configuration.
    """
    if received.tzinfo is None:
        raise ValueError("received must be timezone-aware")
    problems: list[str] = []
    text = _decode_text(payload, problems)
    try:
        msg = parse(text)
    except HL7ParseError as e:
        peeked = peek_header(payload)
        raise DecodeError(100, str(e), peeked.control_id if peeked else None, peeked) from None
    msh = msg.msh
    enc = msg.encoding
    header = _header_from_fields([msh.raw(i) for i in range(msh.field_count + 1)], enc)
    _check_header(header)
    return _Decoder(msg, header, received, problems, default_fs or {}).run()


class _Decoder:
    def __init__(
        self,
        msg: Message,
        header: MessageHeader,
        received: datetime,
        problems: list[str],
        default_fs: Mapping[str, float],
    ) -> None:
        self.default_fs = default_fs
        self.msg = msg
        self.enc = msg.encoding
        self.header = header
        self.received = received
        self.problems = problems
        self.clock = _Clock(header.timestamp, problems)
        self.items: list[Item] = []
        self.unknown: list[UnknownObservation] = []
        self.msh_device = sender_id(header.sending_app, self.enc)
        self.msg_mds: dict[str, str] = {}
        self.first_obx18 = ""

    def run(self) -> Decoded:
        cid = self.header.control_id
        pid: Segment | None = None
        pv1: Segment | None = None
        groups: list[_Group] = []
        for seg in self.msg:
            sid = seg.id
            if sid == "OBX":
                if not groups:
                    raise DecodeError(100, "OBX before any OBR", cid, self.header)
                groups[-1].obx.append(seg)
            elif sid == "OBR":
                groups.append(_Group(seg))
            elif sid == "PID" and pid is None:
                pid = seg
            elif sid == "PV1" and pv1 is None:
                pv1 = seg
        if not groups:
            raise DecodeError(100, "no OBR segment (ORU needs OBR and OBX)", cid, self.header)

        location = None
        if pv1 is not None:
            f = pv1.field(3)
            loc = [f.component(i).strip() for i in (1, 2, 3)]
            if any(loc):
                location = "^".join(loc)
        patient_id = None
        if pid is not None:
            patient_id = pid.field(3).component(1).strip() or None

        # MDS-level equipment ids, per group and message-wide.
        group_mds: list[dict[str, str]] = []
        mds_first = ""
        for g in groups:
            gm: dict[str, str] = {}
            for obx in g.obx:
                raw18 = obx.raw(18)
                if not raw18:
                    continue
                eid = equipment_id(obx.field(18).repetition(1).components)
                eid = self.enc.unescape(eid)
                if not eid:
                    continue
                if not self.first_obx18:
                    self.first_obx18 = eid
                path = obx.raw(4).strip()
                if _is_mds_row(path):
                    mds = _mds_of(path)
                    gm.setdefault(mds, eid)
                    self.msg_mds.setdefault(mds, eid)
                    mds_first = mds_first or eid
            group_mds.append(gm)
        device_id = mds_first or self.first_obx18 or self.msh_device
        if not device_id:
            raise DecodeError(101, "no device identity: MSH-3 is empty and no OBX-18 equipment id", cid, self.header)

        alarms = self.header.message_type[1] == "R40"
        for g, gm in zip(groups, group_mds, strict=True):
            if alarms:
                self._alarm_group(g, gm)
            else:
                self._oru_group(g, gm)
        if alarms and not any(isinstance(i, DeviceAlarm) for i in self.items):
            self.problems.append("ORU^R40 without a decodable alarm")
        return Decoded(
            header=self.header,
            location=location,
            patient_id=patient_id,
            device_id=device_id,
            items=tuple(self.items),
            unknown=tuple(self.unknown),
            problems=tuple(self.problems),
            received=self.received,
        )

    # ---------------------------------------------------------------- shared helpers

    def _device(self, obx: Segment, path: str, gm: dict[str, str]) -> str:
        if obx.raw(18):
            eid = self.enc.unescape(equipment_id(obx.field(18).repetition(1).components))
            if eid:
                return eid
        mds = _mds_of(path)
        return gm.get(mds) or self.msg_mds.get(mds) or self.msh_device

    def _unknown(self, obx: Segment, reason: str) -> None:
        self.unknown.append(UnknownObservation(obx.raw(3), obx.text, reason))

    def _where(self, obx: Segment, code: _Code) -> str:
        return f"OBX {obx.raw(1).strip() or '?'} ({code.label or obx.raw(3)[:40]})"

    # ---------------------------------------------------------------- ORU^R01

    def _oru_group(self, g: _Group, gm: dict[str, str]) -> None:
        facets: dict[str, dict[str, Segment]] = {}
        times: dict[str, str] = {}
        rows: list[tuple[Segment, str, _Code]] = []
        for obx in g.obx:
            path = obx.raw(4).strip()
            t14 = obx.raw(14)
            if t14:
                times[path] = t14
            code = _lookup_code(obx.raw(3), self.enc)
            if code.refid.startswith("MDC_ATTR_"):
                facets.setdefault(_parent(path), {})[code.refid] = obx
                continue
            rows.append((obx, path, code))
        used: set[int] = set()
        obr7 = g.obr.raw(7)
        for obx, path, code in rows:
            vtype = obx.raw(2).strip().upper()
            value = obx.raw(5)
            if not vtype and not value.strip():
                continue  # structure row (MDS, VMD, channel, NIBP container)
            p = code.param
            if p is None:
                self._unknown(obx, "code not in the parameter catalogue")
                continue
            wave = vtype == "NA"
            if (p.kind is Kind.WAVEFORM) != wave:
                alt = code.alt
                if alt is not None and (alt.kind is Kind.WAVEFORM) == wave:
                    p = alt
                else:
                    kind = "waveform (NA)" if wave else f"value type {vtype or '?'}"
                    self._unknown(obx, f"{kind} does not fit catalogue parameter {p.key} ({p.kind})")
                    continue
            where = self._where(obx, code)
            status = obx.raw(11).strip().upper()
            if status == "D":
                self.problems.append(f"{where}: deleted (OBX-11 D); skipped")
                continue
            t = self.clock.get(obx.raw(14), times.get(_parent(path), ""), obr7)
            if t is None:
                self.problems.append(f"{where}: no usable time (OBX-14, OBR-7, MSH-7); skipped")
                continue
            device = self._device(obx, path, gm)
            try:
                if wave:
                    f = facets.get(path, {})
                    used.update(id(s) for s in f.values())
                    self._waveform(obx, p, where, status, t, device, f, g)
                else:
                    self._numeric(obx, p, where, status, t, device)
            except ValidationError as e:
                first = e.errors()[0]["msg"] if e.errors() else str(e)
                self.problems.append(f"{where}: rejected by the reading model: {first}")
        for fmap in facets.values():
            for seg in fmap.values():
                if id(seg) not in used:
                    self._unknown(seg, "attribute row not used (no decoded waveform metric at its parent path)")

    def _numeric(self, obx: Segment, p: Parameter, where: str, status: str, t: datetime, device: str) -> None:
        if status == "X":
            self.items.append(
                Reading(
                    device_id=device,
                    param=p.key,
                    value=None,
                    unit=p.ucum,
                    t_device=t,
                    t_received=self.received,
                    quality=Quality.INVALID,
                )
            )
            return
        raw = obx.raw(5)
        if self.enc.escape in raw:
            raw = self.enc.unescape(raw)
        value = _number(raw)
        if value is None:
            what = "no value" if not raw.strip() else f"unparseable value {raw[:40]!r}"
            self.problems.append(f"{where}: {what}; skipped")
            return
        unit_raw = obx.raw(6)
        if unit_raw.strip():
            u = _lookup_unit(unit_raw, self.enc)
            if u is None:
                self.problems.append(f"{where}: unknown unit {unit_raw[:40]!r}; skipped")
                return
            ucum, scale, offset = u
            if ucum != p.ucum:
                self.problems.append(f"{where}: unit {unit_raw[:40]!r} is not convertible to {p.ucum!r}; skipped")
                return
            if scale != 1.0 or offset != 0.0:
                value = round(value * scale + offset, p.decimals + 2)
        else:
            self.problems.append(f"{where}: no unit (OBX-6); assumed {p.ucum!r}")
        if not p.is_plausible(value):
            self.problems.append(f"{where}: implausible value {value:g} {p.ucum} (range {p.plausible}); skipped")
            return
        quality = Quality.VALID if status in _STATUS_VALID else Quality.QUESTIONABLE
        self.items.append(
            Reading(
                device_id=device,
                param=p.key,
                value=value,
                unit=p.ucum,
                t_device=t,
                t_received=self.received,
                quality=quality,
            )
        )

    def _waveform(
        self,
        obx: Segment,
        p: Parameter,
        where: str,
        status: str,
        t0: datetime,
        device: str,
        facets: dict[str, Segment],
        g: _Group,
    ) -> None:
        if status == "X":
            self.problems.append(f"{where}: waveform marked 'cannot be obtained' (OBX-11 X); skipped")
            return
        raw = obx.raw(5)
        parts = raw.split(self.enc.component)
        if len(parts) > 100_000:
            self.problems.append(f"{where}: {len(parts)} samples exceed the chunk limit; skipped")
            return
        ints: list[int] = []
        floats: list[float] | None = None
        for i, s in enumerate(parts):
            try:
                ints.append(int(s))
                continue
            except ValueError:
                pass
            if _number(s) is None:
                self.problems.append(f"{where}: non-numeric waveform sample {s[:30]!r} at index {i}; waveform skipped")
                return
            floats = []
        if floats is not None:
            floats = [float(s) for s in parts]
        unit_raw = obx.raw(6)
        scale = 1.0
        if unit_raw.strip():
            u = _lookup_unit(unit_raw, self.enc)
            if u is None or u[0] != p.ucum or u[2] != 0.0:
                self.problems.append(f"{where}: unit {unit_raw[:40]!r} not usable for {p.key} ({p.ucum}); skipped")
                return
            scale = u[1]
        else:
            self.problems.append(f"{where}: no unit (OBX-6); assumed {p.ucum!r}")
        if floats is None and all(-32768 <= v <= 32767 for v in ints):
            samples = ints
            gain = scale
        else:
            values = floats if floats is not None else [float(v) for v in ints]
            lo, hi = min(values), max(values)
            rng = facets.get("MDC_ATTR_DATA_RANGE")
            if rng is not None:
                bounds = [_number(c) for c in rng.raw(5).split(self.enc.component)]
                if len(bounds) == 2 and bounds[0] is not None and bounds[1] is not None:
                    lo, hi = min(lo, bounds[0]), max(hi, bounds[1])
            amp = max(abs(lo), abs(hi))
            step = amp / 32767.0 if amp > 0 else 1.0
            if step <= 0.0:  # subnormal range underflowed
                step = 1.0
            samples = [max(-32768, min(32767, round(v / step))) for v in values]
            gain = step * scale
        fs = self._sample_rate(facets, g, len(samples), where, p.key)
        if fs is None:
            return
        self.items.append(
            WaveformChunk(
                device_id=device,
                channel=p.key,
                t0=t0,
                fs=fs,
                samples=tuple(samples),
                unit=p.ucum,
                gain=gain,
            )
        )

    def _sample_rate(self, facets: dict[str, Segment], g: _Group, n: int, where: str, key: str) -> float | None:
        rate = facets.get("MDC_ATTR_SAMP_RATE")
        if rate is not None:
            fs = _number(rate.raw(5))
            u = _lookup_unit(rate.raw(6), self.enc) if rate.raw(6).strip() else ("/s", 1.0, 0.0)
            if fs is not None and u is not None and u[0] in ("/s", "/min"):
                fs = fs * u[1] / (60.0 if u[0] == "/min" else 1.0)
                if 0 < fs <= 10_000:
                    return fs
            self.problems.append(f"{where}: unusable MDC_ATTR_SAMP_RATE {rate.raw(5)[:20]!r}")
        start = parse_dtm(g.obr.raw(7)) if g.obr.raw(7) else None
        end = parse_dtm(g.obr.raw(8)) if g.obr.raw(8) else None
        if start and end:
            tz = start[1] or end[1] or UTC
            span = (end[0].replace(tzinfo=end[1] or tz) - start[0].replace(tzinfo=tz)).total_seconds()
            if span > 0 and 0 < n / span <= 10_000:
                return n / span
        configured = self.default_fs.get(key)
        if configured is not None and 0 < configured <= 10_000:
            self.problems.append(f"{where}: no sample rate in the message; configured {configured:g}/s used")
            return configured
        self.problems.append(f"{where}: no sample rate (MDC_ATTR_SAMP_RATE facet or OBR-7/OBR-8); skipped")
        return None

    # ---------------------------------------------------------------- ORU^R40

    def _alarm_group(self, g: _Group, gm: dict[str, str]) -> None:
        alerts: dict[str, dict[str, Segment]] = {}
        events: dict[str, Segment] = {}
        order: list[str] = []
        for obx in g.obx:
            path = obx.raw(4).strip()
            code = _lookup_code(obx.raw(3), self.enc)
            if path.count(".") < 4:
                if obx.raw(2).strip() or obx.raw(5).strip():
                    self._unknown(obx, "observation in an alarm message (ORU^R40) is not decoded")
                continue
            parent = _parent(path)
            if parent not in alerts:
                alerts[parent] = {}
                order.append(parent)
            if code.refid.startswith("MDC_ATTR_"):
                alerts[parent][code.refid] = obx
            elif parent not in events:
                events[parent] = obx
            else:
                self._unknown(obx, "second alert identification row under one alert")
        for parent in order:
            event = events.get(parent)
            attrs = alerts[parent]
            if event is None:
                for seg in attrs.values():
                    self._unknown(seg, "alert attribute without an alert identification row")
                continue
            self._alarm(event, attrs, parent, g, gm)

    def _alarm(self, event: Segment, attrs: dict[str, Segment], path: str, g: _Group, gm: dict[str, str]) -> None:
        def attr(name: str) -> str:
            seg = attrs.get(name)
            return seg.field(5).component(1).strip() if seg is not None else ""

        code = _lookup_code(event.raw(3), self.enc)
        where = self._where(event, code)
        flags = [r.component(1).strip().upper() for r in event.field(8).repetitions]
        prio_raw = attr("MDC_ATTR_ALARM_PRIORITY").upper() or next(
            (f for f in flags if f in ("PH", "PM", "PL", "PN")), ""
        )
        priority = {"PH": Priority.HIGH, "PM": Priority.MEDIUM, "PL": Priority.LOW}.get(prio_raw, Priority.INFO)
        type_raw = attr("MDC_ATTR_ALERT_TYPE").upper() or next((f for f in flags if f in ("SP", "ST", "SA")), "")
        kind = {"SP": AlarmKind.PHYSIOLOGICAL, "ST": AlarmKind.TECHNICAL, "SA": AlarmKind.ADVISORY}.get(type_raw)
        if kind is None:
            self.problems.append(f"{where}: alert type {type_raw!r} unknown; technical assumed")
            kind = AlarmKind.TECHNICAL
        phase = attr("MDC_ATTR_EVENT_PHASE").lower()
        state = attr("MDC_ATTR_ALERT_STATE").lower()
        active = phase not in ("end", "stop") and state not in ("inactive", "ended")
        t = self.clock.get(event.raw(14), g.obr.raw(7))
        if t is None:
            self.problems.append(f"{where}: no usable time; alarm skipped")
            return
        text = event.field(5).value.strip()
        ident = event.field(3)
        alarm_code = code.refid or ident.component(2).strip() or ident.component(1).strip() or "MDC_EVT_ALARM"
        try:
            self.items.append(
                DeviceAlarm(
                    device_id=self._device(event, path, gm),
                    code=alarm_code,
                    priority=priority,
                    text=text or attr("MDC_ATTR_ALERT_SOURCE") or alarm_code,
                    t=t,
                    alarm_kind=kind,
                    active=active,
                )
            )
        except ValidationError as e:
            first = e.errors()[0]["msg"] if e.errors() else str(e)
            self.problems.append(f"{where}: rejected by the alarm model: {first}")
