"""A lean HL7 v2 tokenizer for the ingest hot path (no python-hl7 at run time).

``parse`` normalises segment terminators (``\\r\\n`` and ``\\n`` become ``\\r``, PROTOCOLS.md §1), strips
surrounding whitespace, reads the field separator from the 4th character of MSH and the encoding characters
from MSH-2 (component, repetition, escape, subcomponent and the optional v2.7 truncation character), and
splits segments into fields at once; repetitions, components and subcomponents are split on access.

Numbering follows HL7 (and python-hl7): ``seg.field(1)`` of MSH is the field separator itself, ``field(2)``
the encoding characters, ``field(9)`` the message type. Raw accessors (``raw``, ``raw_component``,
``tree``) return text exactly as on the wire, escapes included; ``component``, ``value`` and
``Encoding.unescape`` resolve escape sequences.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


class HL7ParseError(ValueError):
    """The text is not a parseable HL7 v2 message."""


@dataclass(frozen=True, slots=True)
class Encoding:
    """The delimiters of one message (MSH-1 and MSH-2)."""

    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"
    truncation: str | None = None

    @property
    def msh2(self) -> str:
        """The encoding characters as written in MSH-2."""
        return self.component + self.repetition + self.escape + self.subcomponent + (self.truncation or "")

    def unescape(self, text: str) -> str:
        """Resolve escape sequences (HL7 v2 chapter 2, "escape sequences").

        ``\\F\\ \\S\\ \\T\\ \\R\\ \\E\\`` give the delimiters, ``\\Xhh..\\`` one character per hex byte
        (as python-hl7 does: a Latin-1 reading), ``\\.br\\`` a CR; ``\\.sp<n>\\`` n CRs; ``\\.in``/``\\.ti``
        /``\\.sk``/``\\.fi``/``\\.nf``/``\\.ce`` formatting and ``\\H\\ \\N\\`` highlighting, ``\\Z..\\``,
        ``\\C..\\``, ``\\M..\\`` are dropped (we display plain text). An unterminated escape is dropped.
        """
        esc = self.escape
        if esc not in text:
            return text
        out: list[str] = []
        i = 0
        n = len(text)
        while i < n:
            j = text.find(esc, i)
            if j < 0:
                out.append(text[i:])
                break
            out.append(text[i:j])
            k = text.find(esc, j + 1)
            if k < 0:
                break  # unterminated: drop the rest
            out.append(self._sequence(text[j + 1 : k]))
            i = k + 1
        return "".join(out)

    def _sequence(self, seq: str) -> str:
        if seq == "F":
            return self.field
        if seq == "S":
            return self.component
        if seq == "T":
            return self.subcomponent
        if seq == "R":
            return self.repetition
        if seq == "E":
            return self.escape
        if seq == "P" and self.truncation:
            return self.truncation
        if seq[:1] == "X":
            hexs = seq[1:]
            chars: list[str] = []
            for p in range(0, len(hexs) - 1, 2):
                try:
                    chars.append(chr(int(hexs[p : p + 2], 16)))
                except ValueError:
                    break
            return "".join(chars)
        if seq == ".br":
            return "\r"
        if seq.startswith(".sp"):
            count = seq[3:].strip()
            return "\r" * (int(count) if count.isdigit() and int(count) < 100 else 1)
        return ""

    def escape_text(self, text: str) -> str:
        """Escape delimiters (and line breaks, as ``\\.br\\``) so ``text`` can be one component."""
        esc = self.escape
        out = text.replace(esc, f"{esc}E{esc}")
        out = out.replace(self.field, f"{esc}F{esc}").replace(self.component, f"{esc}S{esc}")
        out = out.replace(self.subcomponent, f"{esc}T{esc}").replace(self.repetition, f"{esc}R{esc}")
        if self.truncation:
            out = out.replace(self.truncation, f"{esc}P{esc}")
        if "\r" in out or "\n" in out:
            out = out.replace("\r\n", "\n").replace("\r", "\n").replace("\n", f"{esc}.br{esc}")
        return out


DEFAULT_ENCODING = Encoding()


class Repetition:
    """One repetition of a field: components, each of subcomponents."""

    __slots__ = ("_atomic", "_comps", "_enc", "raw")

    def __init__(self, raw: str, enc: Encoding, atomic: bool = False) -> None:
        self.raw = raw
        self._enc = enc
        self._atomic = atomic
        self._comps: list[str] | None = None

    @property
    def components(self) -> tuple[str, ...]:
        """Raw components (escapes kept)."""
        return tuple(self._split())

    def _split(self) -> list[str]:
        if self._comps is None:
            self._comps = [self.raw] if self._atomic else self.raw.split(self._enc.component)
        return self._comps

    def raw_component(self, n: int) -> str:
        """Raw component ``n`` (1-based), '' when absent."""
        comps = self._split()
        return comps[n - 1] if 0 < n <= len(comps) else ""

    def component(self, n: int) -> str:
        """Component ``n`` (1-based), unescaped; '' when absent."""
        return self._enc.unescape(self.raw_component(n))

    def subcomponents(self, n: int) -> tuple[str, ...]:
        """Raw subcomponents of component ``n``."""
        c = self.raw_component(n)
        return (c,) if self._atomic else tuple(c.split(self._enc.subcomponent))

    def tree(self) -> tuple[tuple[str, ...], ...]:
        """Raw components, each as its subcomponents."""
        if self._atomic:
            return ((self.raw,),)
        sub = self._enc.subcomponent
        return tuple(tuple(c.split(sub)) for c in self._split())

    def __str__(self) -> str:
        return self.raw

    def __repr__(self) -> str:
        return f"Repetition({self.raw!r})"


class Field:
    """One field: repetitions of components of subcomponents."""

    __slots__ = ("_atomic", "_enc", "_reps", "raw")

    def __init__(self, raw: str, enc: Encoding, atomic: bool = False) -> None:
        self.raw = raw
        self._enc = enc
        self._atomic = atomic  # MSH-1 and MSH-2 are never split
        self._reps: tuple[Repetition, ...] | None = None

    @property
    def repetitions(self) -> tuple[Repetition, ...]:
        """The repetitions (at least one, possibly empty)."""
        if self._reps is None:
            if self._atomic:
                self._reps = (Repetition(self.raw, self._enc, True),)
            else:
                self._reps = tuple(Repetition(r, self._enc) for r in self.raw.split(self._enc.repetition))
        return self._reps

    def repetition(self, rep: int = 1) -> Repetition:
        """Repetition ``rep`` (1-based); an empty one when absent."""
        reps = self.repetitions
        return reps[rep - 1] if 0 < rep <= len(reps) else Repetition("", self._enc)

    def raw_component(self, n: int, rep: int = 1) -> str:
        """Raw component ``n`` of repetition ``rep``."""
        return self.repetition(rep).raw_component(n)

    def component(self, n: int, rep: int = 1) -> str:
        """Component ``n`` of repetition ``rep``, unescaped."""
        return self.repetition(rep).component(n)

    def subcomponent(self, c: int, s: int, rep: int = 1) -> str:
        """Subcomponent ``s`` of component ``c`` of repetition ``rep``, unescaped."""
        subs = self.repetition(rep).subcomponents(c)
        return self._enc.unescape(subs[s - 1]) if 0 < s <= len(subs) else ""

    @property
    def value(self) -> str:
        """The whole field with escapes resolved (delimiters inside it stay as they are)."""
        return self.raw if self._atomic else self._enc.unescape(self.raw)

    def tree(self) -> tuple[tuple[tuple[str, ...], ...], ...]:
        """Raw repetitions → components → subcomponents (for comparisons)."""
        return tuple(r.tree() for r in self.repetitions)

    def __str__(self) -> str:
        return self.raw

    def __repr__(self) -> str:
        return f"Field({self.raw!r})"


class Segment:
    """One segment; fields by HL7 number."""

    __slots__ = ("_enc", "_f", "id")

    def __init__(self, fields: list[str], enc: Encoding) -> None:
        self._f = fields  # index = HL7 field number; [0] is the segment id
        self._enc = enc
        self.id = fields[0]

    def raw(self, n: int) -> str:
        """Raw text of field ``n`` ('' when absent)."""
        f = self._f
        return f[n] if 0 <= n < len(f) else ""

    def field(self, n: int) -> Field:
        """Field ``n`` (an empty one when absent)."""
        return Field(self.raw(n), self._enc, self.id == "MSH" and n in (1, 2))

    def component(self, n: int, c: int, rep: int = 1) -> str:
        """Shortcut: component ``c`` of field ``n`` (repetition ``rep``), unescaped."""
        return self.field(n).component(c, rep)

    @property
    def field_count(self) -> int:
        """The highest field number present."""
        return len(self._f) - 1

    @property
    def text(self) -> str:
        """The segment as on the wire (after terminator normalisation)."""
        fs = self._enc.field
        if self.id == "MSH" and len(self._f) > 2:
            return "MSH" + fs + fs.join(self._f[2:])
        return fs.join(self._f)

    def __repr__(self) -> str:
        return f"Segment({self.text!r})"


class Message:
    """A parsed message: segments in order, plus its encoding."""

    __slots__ = ("_segs", "encoding")

    def __init__(self, segments: list[Segment], encoding: Encoding) -> None:
        self._segs = segments
        self.encoding = encoding

    def segments(self, seg_id: str | None = None) -> list[Segment]:
        """All segments, or those with id ``seg_id``, in order."""
        if seg_id is None:
            return list(self._segs)
        return [s for s in self._segs if s.id == seg_id]

    def segment(self, seg_id: str) -> Segment | None:
        """The first segment with id ``seg_id``, or None."""
        for s in self._segs:
            if s.id == seg_id:
                return s
        return None

    @property
    def msh(self) -> Segment:
        """The header segment."""
        return self._segs[0]

    def __iter__(self) -> Iterator[Segment]:
        return iter(self._segs)

    def __len__(self) -> int:
        return len(self._segs)

    def __getitem__(self, i: int) -> Segment:
        return self._segs[i]

    @property
    def text(self) -> str:
        """The message as normalised text (CR terminators)."""
        return "\r".join(s.text for s in self._segs)


def normalise(text: str) -> str:
    """CR as the only segment terminator; surrounding whitespace stripped (as python-hl7 does)."""
    if "\n" in text:
        text = text.replace("\r\n", "\r").replace("\n", "\r")
    return text.strip()


def read_encoding(text: str) -> Encoding:
    """The delimiters declared by an MSH segment at the start of ``text``."""
    if not text.startswith("MSH"):
        raise HL7ParseError(f"not an HL7 v2 message: does not start with MSH (starts {text[:12]!r})")
    if len(text) < 8:
        raise HL7ParseError("not an HL7 v2 message: MSH too short to hold the delimiters")
    fs = text[3]
    end = text.find(fs, 4)
    seg_end = text.find("\r")
    if end < 0 or (0 <= seg_end < end):
        end = seg_end if seg_end >= 0 else len(text)
    chars = text[4:end]
    if len(chars) not in (4, 5):
        raise HL7ParseError(f"MSH-2 must hold 4 or 5 encoding characters, got {chars!r}")
    delims = fs + chars
    for ch in delims:
        if ch.isalnum() or ch.isspace():
            raise HL7ParseError(f"invalid delimiter {ch!r} in MSH-1/MSH-2 {delims!r}")
    if len(set(delims)) != len(delims):
        raise HL7ParseError(f"delimiters in MSH-1/MSH-2 must be distinct, got {delims!r}")
    return Encoding(fs, chars[0], chars[1], chars[2], chars[3], chars[4] if len(chars) == 5 else None)


def parse(text: str) -> Message:
    """Parse one HL7 v2 message; raise HL7ParseError for anything that is not one."""
    text = normalise(text)
    enc = read_encoding(text)
    fs = enc.field
    segs: list[Segment] = []
    for i, line in enumerate(text.split("\r")):
        if not line:
            continue  # blank line between segments (python-hl7 would keep an empty segment)
        fields = line.split(fs)
        sid = fields[0]
        if len(sid) != 3 or not sid.isalnum() or not sid.isascii():
            raise HL7ParseError(f"segment {i + 1}: invalid segment id {sid[:20]!r}")
        if sid == "MSH":
            fields.insert(1, fs)
        segs.append(Segment(fields, enc))
    return Message(segs, enc)
