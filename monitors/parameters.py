"""The parameter catalogue: one row per vital sign or waveform Vigil understands.

Every decoder (HL7, serial), exporter (FHIR), validator and UI label reads this table; no other module
hard-codes an MDC or LOINC code.

Sources (see ../shared/protocols/PROTOCOLS.md §1 and the HL7 fixtures):
- MDC numeric codes and RefIds: ISO/IEEE 11073-10101 nomenclature, as listed in PROTOCOLS.md and seen in
  the published PCD-01 fixtures (HR 147842, SpO2 150456, PR 149530, pleth 150452, NIBP 150020–150023,
  RR 151562, EtCO2 151708, ECG I/II 131329/131330). MDC_TEMP_BODY 150364 and MDC_TEMP 188740 and
  MDC_CO2_RESP_RATE 151594 as used by public PCD-01 senders (Mindray eGateway mappings, OpenICE).
  MDC_DIM_DEGC is term 6048 in partition 4 (dimensions), i.e. 4 * 65536 + 6048 = 268192.
- LOINC: 8867-4 HR, 8889-8 HR by pulse oximetry, 59408-5 SpO2 by pulse oximetry, 8480-6 / 8462-4 / 8478-0
  systolic / diastolic / mean BP, 9279-1 respiratory rate, 19889-5 end-tidal CO2, 8310-5 body temperature.
- Plausible ranges are physiological survivability bounds used only to reject impossible values (a device
  glitch), never as alarm limits [I].
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """Whether a parameter is a numeric (one value at a time) or a sampled waveform."""

    NUMERIC = "numeric"
    WAVEFORM = "waveform"


class Cadence(StrEnum):
    """How a numeric arrives: continuously (about 1 Hz) or episodically (NIBP every few minutes)."""

    CONTINUOUS = "continuous"
    EPISODIC = "episodic"


@dataclass(frozen=True, slots=True)
class Parameter:
    """One row of the catalogue."""

    key: str
    label: str
    kind: Kind
    mdc_code: int
    mdc_refid: str
    ucum: str
    plausible: tuple[float, float]
    loinc: str | None = None
    mdc_unit_code: int | None = None
    mdc_unit_refid: str | None = None
    cadence: Cadence = Cadence.CONTINUOUS
    decimals: int = 0
    # Other codes and RefIds senders use for the same quantity (matched when decoding).
    alt_mdc_codes: tuple[int, ...] = ()
    alt_refids: tuple[str, ...] = ()
    alt_loinc: tuple[str, ...] = ()
    note: str = ""
    group: str | None = field(default=None)

    def is_plausible(self, value: float) -> bool:
        """True when ``value`` lies within the physiologically possible range."""
        lo, hi = self.plausible
        return lo <= value <= hi


_BPM = (264864, "MDC_DIM_BEAT_PER_MIN")
_PCT = (262688, "MDC_DIM_PERCENT")
_MMHG = (266016, "MDC_DIM_MMHG")
_RPM = (264928, "MDC_DIM_RESP_PER_MIN")
_DEGC = (268192, "MDC_DIM_DEGC")
_DIMLESS = (262656, "MDC_DIM_DIMLESS")
_MV = (266418, "MDC_DIM_MILLI_VOLT")

_ROWS: tuple[Parameter, ...] = (
    Parameter(
        key="hr",
        label="HR",
        kind=Kind.NUMERIC,
        mdc_code=147842,
        mdc_refid="MDC_ECG_HEART_RATE",
        alt_refids=("MDC_ECG_CARD_BEAT_RATE",),
        loinc="8867-4",
        ucum="/min",
        mdc_unit_code=_BPM[0],
        mdc_unit_refid=_BPM[1],
        plausible=(0, 350),
    ),
    Parameter(
        key="spo2",
        label="SpO₂",
        kind=Kind.NUMERIC,
        mdc_code=150456,
        mdc_refid="MDC_PULS_OXIM_SAT_O2",
        loinc="59408-5",
        alt_loinc=("2708-6",),
        ucum="%",
        mdc_unit_code=_PCT[0],
        mdc_unit_refid=_PCT[1],
        plausible=(0, 100),
    ),
    Parameter(
        key="pr",
        label="PR",
        kind=Kind.NUMERIC,
        mdc_code=149530,
        mdc_refid="MDC_PULS_OXIM_PULS_RATE",
        loinc="8889-8",
        ucum="/min",
        mdc_unit_code=_BPM[0],
        mdc_unit_refid=_BPM[1],
        plausible=(0, 350),
    ),
    Parameter(
        key="nibp_sys",
        label="NIBP sys",
        kind=Kind.NUMERIC,
        mdc_code=150021,
        mdc_refid="MDC_PRESS_BLD_NONINV_SYS",
        loinc="8480-6",
        ucum="mm[Hg]",
        mdc_unit_code=_MMHG[0],
        mdc_unit_refid=_MMHG[1],
        plausible=(20, 300),
        cadence=Cadence.EPISODIC,
        group="nibp",
    ),
    Parameter(
        key="nibp_dia",
        label="NIBP dia",
        kind=Kind.NUMERIC,
        mdc_code=150022,
        mdc_refid="MDC_PRESS_BLD_NONINV_DIA",
        loinc="8462-4",
        ucum="mm[Hg]",
        mdc_unit_code=_MMHG[0],
        mdc_unit_refid=_MMHG[1],
        plausible=(10, 250),
        cadence=Cadence.EPISODIC,
        group="nibp",
    ),
    Parameter(
        key="nibp_mean",
        label="NIBP mean",
        kind=Kind.NUMERIC,
        mdc_code=150023,
        mdc_refid="MDC_PRESS_BLD_NONINV_MEAN",
        loinc="8478-0",
        ucum="mm[Hg]",
        mdc_unit_code=_MMHG[0],
        mdc_unit_refid=_MMHG[1],
        plausible=(15, 270),
        cadence=Cadence.EPISODIC,
        group="nibp",
    ),
    Parameter(
        key="rr",
        label="RR",
        kind=Kind.NUMERIC,
        mdc_code=151562,
        mdc_refid="MDC_RESP_RATE",
        alt_mdc_codes=(151594,),
        alt_refids=("MDC_CO2_RESP_RATE",),
        loinc="9279-1",
        ucum="/min",
        mdc_unit_code=_RPM[0],
        mdc_unit_refid=_RPM[1],
        plausible=(0, 150),
    ),
    Parameter(
        key="etco2",
        label="EtCO₂",
        kind=Kind.NUMERIC,
        mdc_code=151708,
        mdc_refid="MDC_CONC_AWAY_CO2_ET",
        alt_mdc_codes=(151728,),
        alt_refids=("MDC_AWAY_CO2_ET",),
        loinc="19889-5",
        ucum="mm[Hg]",
        mdc_unit_code=_MMHG[0],
        mdc_unit_refid=_MMHG[1],
        plausible=(0, 150),
    ),
    Parameter(
        key="temp",
        label="Temp",
        kind=Kind.NUMERIC,
        mdc_code=150364,
        mdc_refid="MDC_TEMP_BODY",
        alt_mdc_codes=(188740,),
        alt_refids=("MDC_TEMP",),
        loinc="8310-5",
        ucum="Cel",
        mdc_unit_code=_DEGC[0],
        mdc_unit_refid=_DEGC[1],
        plausible=(25, 45),
        decimals=1,
    ),
    Parameter(
        key="ecg_ii",
        label="ECG II",
        kind=Kind.WAVEFORM,
        mdc_code=131330,
        mdc_refid="MDC_ECG_ELEC_POTL_II",
        alt_refids=("MDC_ECG_LEAD_II",),
        ucum="mV",
        mdc_unit_code=_MV[0],
        mdc_unit_refid=_MV[1],
        plausible=(-10, 10),
    ),
    Parameter(
        key="ecg_i",
        label="ECG I",
        kind=Kind.WAVEFORM,
        mdc_code=131329,
        mdc_refid="MDC_ECG_ELEC_POTL_I",
        alt_refids=("MDC_ECG_LEAD_I",),
        ucum="mV",
        mdc_unit_code=_MV[0],
        mdc_unit_refid=_MV[1],
        plausible=(-10, 10),
    ),
    Parameter(
        key="pleth",
        label="Pleth",
        kind=Kind.WAVEFORM,
        mdc_code=150452,
        mdc_refid="MDC_PULS_OXIM_PLETH",
        ucum="1",
        mdc_unit_code=_DIMLESS[0],
        mdc_unit_refid=_DIMLESS[1],
        plausible=(-1e6, 1e6),
    ),
    Parameter(
        key="co2",
        label="CO₂",
        kind=Kind.WAVEFORM,
        mdc_code=151704,
        mdc_refid="MDC_CONC_AWAY_CO2",
        alt_refids=("MDC_AWAY_CO2",),
        ucum="mm[Hg]",
        mdc_unit_code=_MMHG[0],
        mdc_unit_refid=_MMHG[1],
        plausible=(-5, 150),
        note="capnogram; numeric code inferred from the EtCO2 (151708) / FiCO2 (151716) neighbours: verify",
    ),
)

CATALOGUE: dict[str, Parameter] = {p.key: p for p in _ROWS}
NUMERIC_KEYS: tuple[str, ...] = tuple(p.key for p in _ROWS if p.kind is Kind.NUMERIC)
WAVEFORM_KEYS: tuple[str, ...] = tuple(p.key for p in _ROWS if p.kind is Kind.WAVEFORM)


def _index() -> tuple[dict[int, Parameter], dict[str, Parameter], dict[str, Parameter]]:
    by_code: dict[int, Parameter] = {}
    by_refid: dict[str, Parameter] = {}
    by_loinc: dict[str, Parameter] = {}
    for p in _ROWS:
        for code in (p.mdc_code, *p.alt_mdc_codes):
            assert code not in by_code, f"duplicate MDC code {code}"
            by_code[code] = p
        for refid in (p.mdc_refid, *p.alt_refids):
            assert refid not in by_refid, f"duplicate RefId {refid}"
            by_refid[refid] = p
        for loinc in (p.loinc, *p.alt_loinc):
            if loinc is not None:
                assert loinc not in by_loinc, f"duplicate LOINC {loinc}"
                by_loinc[loinc] = p
    return by_code, by_refid, by_loinc


_BY_CODE, _BY_REFID, _BY_LOINC = _index()


def get(key: str) -> Parameter:
    """The catalogue row for ``key``; KeyError names the unknown key."""
    try:
        return CATALOGUE[key]
    except KeyError:
        raise KeyError(f"unknown parameter key {key!r}") from None


def by_mdc_code(code: int) -> Parameter | None:
    """The row for an MDC numeric code (primary or alternative), or None."""
    return _BY_CODE.get(code)


def by_refid(refid: str) -> Parameter | None:
    """The row for an MDC reference id such as ``MDC_ECG_HEART_RATE``, or None."""
    return _BY_REFID.get(refid.strip().upper())


def by_loinc(code: str) -> Parameter | None:
    """The row for a LOINC code such as ``8867-4``, or None."""
    return _BY_LOINC.get(code.strip())
