// The parameter catalogue as the browser sees it, plus the display palette.
//
// The server's GET /api/parameters is authoritative; DEFAULT_CATALOGUE mirrors monitors/parameters.py so
// labels and decimals are right even before (or without) that fetch. Colours are ours (UI.md: one colour
// per parameter, the same for waveform and numeric).

/** Fallback copy of the catalogue rows the UI needs (key → row). */
export const DEFAULT_CATALOGUE = Object.freeze({
  hr: { key: 'hr', label: 'HR', kind: 'numeric', ucum: '/min', unit_display: 'bpm', decimals: 0, cadence: 'continuous', group: null },
  spo2: { key: 'spo2', label: 'SpO₂', kind: 'numeric', ucum: '%', unit_display: '%', decimals: 0, cadence: 'continuous', group: null },
  pr: { key: 'pr', label: 'PR', kind: 'numeric', ucum: '/min', unit_display: 'bpm', decimals: 0, cadence: 'continuous', group: null },
  nibp_sys: { key: 'nibp_sys', label: 'NIBP sys', kind: 'numeric', ucum: 'mm[Hg]', unit_display: 'mmHg', decimals: 0, cadence: 'episodic', group: 'nibp' },
  nibp_dia: { key: 'nibp_dia', label: 'NIBP dia', kind: 'numeric', ucum: 'mm[Hg]', unit_display: 'mmHg', decimals: 0, cadence: 'episodic', group: 'nibp' },
  nibp_mean: { key: 'nibp_mean', label: 'NIBP mean', kind: 'numeric', ucum: 'mm[Hg]', unit_display: 'mmHg', decimals: 0, cadence: 'episodic', group: 'nibp' },
  rr: { key: 'rr', label: 'RR', kind: 'numeric', ucum: '/min', unit_display: 'rpm', decimals: 0, cadence: 'continuous', group: null },
  etco2: { key: 'etco2', label: 'EtCO₂', kind: 'numeric', ucum: 'mm[Hg]', unit_display: 'mmHg', decimals: 0, cadence: 'continuous', group: null },
  temp: { key: 'temp', label: 'Temp', kind: 'numeric', ucum: 'Cel', unit_display: '°C', decimals: 1, cadence: 'continuous', group: null },
  ecg_ii: { key: 'ecg_ii', label: 'ECG II', kind: 'waveform', ucum: 'mV', unit_display: 'mV', decimals: 2, cadence: 'continuous', group: null },
  ecg_i: { key: 'ecg_i', label: 'ECG I', kind: 'waveform', ucum: 'mV', unit_display: 'mV', decimals: 2, cadence: 'continuous', group: null },
  pleth: { key: 'pleth', label: 'Pleth', kind: 'waveform', ucum: '1', unit_display: '', decimals: 0, cadence: 'continuous', group: null },
  co2: { key: 'co2', label: 'CO₂', kind: 'waveform', ucum: 'mm[Hg]', unit_display: 'mmHg', decimals: 0, cadence: 'continuous', group: null },
});

/** Colour family per parameter (CSS custom property names are defined in styles/base.css). */
export const PARAM_COLOUR = Object.freeze({
  hr: 'ecg', ecg_ii: 'ecg', ecg_i: 'ecg',
  spo2: 'spo2', pr: 'spo2', pleth: 'spo2',
  etco2: 'co2', rr: 'co2', co2: 'co2',
  nibp: 'nibp', nibp_sys: 'nibp', nibp_dia: 'nibp', nibp_mean: 'nibp',
  temp: 'temp',
});

/** Canvas colours (canvas cannot read CSS variables cheaply every frame). Keep in sync with base.css. */
export const CANVAS_COLOUR = Object.freeze({
  ecg: '#3ee05a',
  spo2: '#2ee6f0',
  co2: '#ffe033',
  nibp: '#f2f2f2',
  temp: '#f2f2f2',
  other: '#d0d0d0',
});

let catalogue = { ...DEFAULT_CATALOGUE };

/** The catalogue row for ``key`` (never undefined: unknown keys get a plain row named after the key). */
export function param(key) {
  return catalogue[key] ?? { key, label: key, kind: 'numeric', ucum: '', unit_display: '', decimals: 0, cadence: 'continuous', group: null };
}

/** True when ``key`` arrives episodically (NIBP) rather than continuously. */
export function isEpisodic(key) {
  return param(key).cadence === 'episodic';
}

/**
 * Fetch GET /api/parameters and merge it over the defaults. Failure is logged, not fatal: the defaults
 * are a faithful copy, and the page must keep working offline.
 */
export async function loadCatalogue() {
  try {
    const res = await fetch('/api/parameters', { headers: { Accept: 'application/json' } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const rows = await res.json();
    if (!Array.isArray(rows)) throw new Error('expected a JSON list');
    const merged = { ...DEFAULT_CATALOGUE };
    for (const row of rows) {
      if (row && typeof row.key === 'string') merged[row.key] = { ...(merged[row.key] ?? {}), ...row };
    }
    catalogue = merged;
  } catch (err) {
    console.warn('vigil: /api/parameters unavailable, using the built-in catalogue:', err);
  }
  return catalogue;
}

/** Format a numeric value with the catalogue's decimals. */
export function formatValue(key, value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return '-?-';
  return value.toFixed(param(key).decimals ?? 0);
}
