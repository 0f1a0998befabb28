"""Unit resolution for HL7 OBX-6: MDC dimensions and UCUM (or its common misspellings) to catalogue UCUM.

A resolved unit is ``(ucum, scale, offset)``: a value in the sender's unit times ``scale`` plus ``offset``
is in ``ucum`` (e.g. °F → Cel, kPa → mm[Hg], uV → mV, ``10.mV/4096`` → mV with scale 10/4096).
Sources: PROTOCOLS.md §1 (MDC dimension codes 264864, 262688, 266016, 264928, 262656; UCUM ``/min``, ``%``,
``mm[Hg]``, ``Cel``), the catalogue's unit columns, and the fixtures (264608 MDC_DIM_PER_SEC, 266418
MDC_DIM_MILLI_VOLT, ``10.mV/4096``). 1 kPa = 7.50062 mmHg (definition of the mmHg: 133.322 Pa).
"""

from __future__ import annotations

import re

from monitors import parameters

Resolved = tuple[str, float, float]

_KPA_TO_MMHG = 1000.0 / 133.322387415

_SYNONYMS: dict[str, Resolved] = {}


def _add(target: str, scale: float, offset: float, *names: str) -> None:
    for n in names:
        _SYNONYMS[n] = (target, scale, offset)
        _SYNONYMS[n.lower()] = (target, scale, offset)


_add("/min", 1.0, 0.0, "/min", "1/min", "{beats}/min", "{beat}/min", "{Beats}/min", "bpm", "beats/min")
_add("/min", 1.0, 0.0, "beat/min", "{breaths}/min", "{breath}/min", "{resp}/min", "rpm", "breaths/min", "brpm")
_add("%", 1.0, 0.0, "%", "percent", "pct")
_add("mm[Hg]", 1.0, 0.0, "mm[Hg]", "mmHg", "mm Hg", "torr")
_add("mm[Hg]", _KPA_TO_MMHG, 0.0, "kPa")
_add("Cel", 1.0, 0.0, "Cel", "degC", "°C", "deg C")
_add("Cel", 5.0 / 9.0, -32.0 * 5.0 / 9.0, "[degF]", "degF", "°F", "deg F")
_add("Cel", 1.0, -273.15, "K")
_add("mV", 1.0, 0.0, "mV")
_add("mV", 0.001, 0.0, "uV", "µV", "μV")
_add("mV", 1000.0, 0.0, "V")
_add("1", 1.0, 0.0, "1", "{dimless}")
_add("/s", 1.0, 0.0, "/s", "1/s", "Hz", "s-1")

# MDC dimension codes and RefIds → a synonym key above.
_MDC: dict[int | str, str] = {
    264864: "/min",
    "MDC_DIM_BEAT_PER_MIN": "/min",
    264928: "/min",
    "MDC_DIM_RESP_PER_MIN": "/min",
    262688: "%",
    "MDC_DIM_PERCENT": "%",
    266016: "mm[Hg]",
    "MDC_DIM_MMHG": "mm[Hg]",
    "MDC_DIM_KILO_PASCAL": "kPa",
    "MDC_DIM_KILO_PAS": "kPa",
    268192: "Cel",
    "MDC_DIM_DEGC": "Cel",
    "MDC_DIM_FAHR": "[degF]",
    "MDC_DIM_DEG_F": "[degF]",
    262656: "1",
    "MDC_DIM_DIMLESS": "1",
    266418: "mV",
    "MDC_DIM_MILLI_VOLT": "mV",
    "MDC_DIM_MICRO_VOLT": "uV",
    264608: "/s",
    "MDC_DIM_PER_SEC": "/s",
    "MDC_DIM_HZ": "/s",
}
for _p in parameters.CATALOGUE.values():
    if _p.mdc_unit_code is not None:
        _MDC.setdefault(_p.mdc_unit_code, _p.ucum)
    if _p.mdc_unit_refid is not None:
        _MDC.setdefault(_p.mdc_unit_refid, _p.ucum)

# "10.mV/4096": a number, a dot, a unit, optionally "/" and a divisor (UCUM factor notation).
_SCALED = re.compile(r"^(\d+(?:\.\d+)?)\.([^\d./][^/]*?|/min|/s)(?:/(\d+(?:\.\d+)?))?$")


def _plain(token: str) -> Resolved | None:
    t = token.strip()
    hit = _SYNONYMS.get(t) or _SYNONYMS.get(t.lower())
    if hit is not None:
        return hit
    m = _SCALED.match(t)
    if m is None:
        return None
    base = _SYNONYMS.get(m.group(2)) or _SYNONYMS.get(m.group(2).lower())
    if base is None:
        return None
    factor = float(m.group(1)) / (float(m.group(3)) if m.group(3) else 1.0)
    if factor <= 0 or base[2] != 0.0:
        return None
    return (base[0], base[1] * factor, 0.0)


def _mdc(ident: str, text: str) -> Resolved | None:
    key: str | None = None
    i = ident.strip()
    if i.isdigit():
        key = _MDC.get(int(i))
    if key is None:
        key = _MDC.get(text.strip().upper()) or _MDC.get(i.upper())
    return _SYNONYMS.get(key) if key is not None else None


def resolve(ident: str, text: str = "", system: str = "") -> Resolved | None:
    """Resolve an OBX-6 (CWE: identifier, text, coding system) to ``(ucum, scale, offset)``, or None."""
    sysu = system.strip().upper()
    if sysu == "MDC" or ident.strip().isdigit() or ident.strip().upper().startswith("MDC_DIM"):
        hit = _mdc(ident, text)
        if hit is not None:
            return hit
    return _plain(ident) or (_plain(text) if text else None) or (_mdc(ident, text) if sysu != "MDC" else None)


def format_scaled(gain: float, unit: str) -> str:
    """A UCUM-style scaled unit for ``gain`` × ``unit`` (``5.mV/2048``), resolved exactly by :func:`resolve`."""
    from fractions import Fraction

    frac = Fraction(gain).limit_denominator(1_000_000)
    if frac.numerator > 0 and frac.numerator / frac.denominator == gain:
        return f"{frac.numerator}.{unit}" + (f"/{frac.denominator}" if frac.denominator != 1 else "")
    text = repr(gain)
    if "e" in text or "E" in text:
        text = f"{gain:.17f}".rstrip("0")
    return f"{text}.{unit}"
