// Small text formatters shared by every page. Times are Unix seconds (server clock).
//
// Clock times are shown in the clinic's time zone (Settings.clinic_timezone, served by GET /api/ui-config
// and set once at page start with setClinicTimeZone), never silently in the browser's: a reviewer abroad
// or a station PC set to UTC must read the same times as the bedside. Until the zone is known (or if the
// browser does not know it) the browser's own zone is used and clinicTimeZone() says so.

const pad2 = (n) => String(n).padStart(2, '0');

let zone = null; // IANA name in force, null = the browser's zone
let fmtHMS = null;
let fmtHM = null;
let fmtDate = null;
let fmtZone = null;
let fmtZoneGB = null;
let fmtParts = null;
let offsetCache = new Map(); // 15-minute bucket → zone offset (s); zone changes happen on such boundaries

function buildFormatters(timeZone) {
  const base = { hourCycle: 'h23', ...(timeZone ? { timeZone } : {}) };
  fmtHMS = new Intl.DateTimeFormat('en-GB', { ...base, hour: '2-digit', minute: '2-digit', second: '2-digit' });
  fmtHM = new Intl.DateTimeFormat('en-GB', { ...base, hour: '2-digit', minute: '2-digit' });
  fmtDate = new Intl.DateTimeFormat('en-GB', { ...base, weekday: 'short', day: 'numeric', month: 'short', year: 'numeric' });
  fmtZone = new Intl.DateTimeFormat('en-US', { ...base, timeZoneName: 'short' });
  fmtZoneGB = new Intl.DateTimeFormat('en-GB', { ...base, timeZoneName: 'short' });
  fmtParts = new Intl.DateTimeFormat('en-US', {
    ...base, year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
  });
  offsetCache = new Map();
}
buildFormatters(null);

/**
 * Show every clock time in ``timeZone`` (an IANA name such as "Europe/Berlin"). Returns false (and keeps
 * the browser's zone, loudly in the console) when this browser does not know the zone.
 */
export function setClinicTimeZone(timeZone) {
  try {
    buildFormatters(timeZone);
    zone = timeZone;
    return true;
  } catch (err) {
    console.error(`vigil: this browser does not know the clinic time zone ${JSON.stringify(timeZone)}; showing times in the browser's zone`, err);
    buildFormatters(null);
    zone = null;
    return false;
  }
}

/** The IANA zone clock times are shown in (the browser's own when the clinic's is not set or unknown). */
export function clinicTimeZone() {
  return zone ?? fmtHMS.resolvedOptions().timeZone;
}

/** Short name of the display zone at ``unixS`` ("CET", "EST", "UTC", else "GMT+5:30"): shown beside clocks. */
export function zoneAbbreviation(unixS = Date.now() / 1000) {
  const d = new Date(Number.isFinite(unixS) ? unixS * 1000 : Date.now());
  const pick = (f) => f.formatToParts(d).find((p) => p.type === 'timeZoneName')?.value ?? '';
  const us = pick(fmtZone);
  if (!us.startsWith('GMT')) return us; // "EST", "PST", "UTC"
  const gb = pick(fmtZoneGB); // en-GB names European zones ("CET", "BST") where en-US says "GMT+1"
  return gb || us;
}

/** "now" under 2 s, then "5 s", "3 min", "2 h". */
export function formatAge(ageS) {
  if (!Number.isFinite(ageS)) return '';
  const a = Math.max(0, ageS);
  if (a < 2) return 'now';
  if (a < 120) return `${Math.floor(a)} s`;
  if (a < 7200) return `${Math.floor(a / 60)} min`;
  return `${Math.floor(a / 3600)} h`;
}

/** "3 min ago" / "12 s ago" / "just now" (NIBP style). */
export function formatAgo(ageS) {
  const a = formatAge(ageS);
  if (a === '') return '';
  return a === 'now' ? 'just now' : `${a} ago`;
}

/** "no data for 12 s" (seconds up to 2 min, then minutes/hours). */
export function formatNoData(ageS) {
  if (!Number.isFinite(ageS)) return 'no data';
  const a = formatAge(Math.max(ageS, 2));
  return `no data for ${a}`;
}

/** Elapsed time as "00:42", "12:05" or "1:02:03" (technical banners, station tiles). */
export function formatElapsed(seconds) {
  if (!Number.isFinite(seconds)) return '--:--';
  const s = Math.max(0, Math.floor(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}:${pad2(m)}:${pad2(sec)}` : `${pad2(m)}:${pad2(sec)}`;
}

/** Wall-clock "HH:MM:SS" (or "HH:MM") in the clinic's time zone for a Unix time in seconds. */
export function formatClock(unixS, withSeconds = true) {
  if (!Number.isFinite(unixS)) return '--:--';
  return (withSeconds ? fmtHMS : fmtHM).format(new Date(unixS * 1000));
}

/** Offset of the display zone from UTC at ``unixS``, in seconds (3600 for CET, −18000 for EST). */
export function zoneOffsetS(unixS) {
  const bucket = Math.floor(unixS / 900);
  let off = offsetCache.get(bucket);
  if (off === undefined) {
    const at = bucket * 900;
    const p = Object.fromEntries(fmtParts.formatToParts(new Date(at * 1000)).map((x) => [x.type, x.value]));
    const wall = Date.UTC(Number(p.year), Number(p.month) - 1, Number(p.day), Number(p.hour) % 24, Number(p.minute), Number(p.second));
    off = Math.round(wall / 1000 - at);
    if (offsetCache.size > 10000) offsetCache.clear();
    offsetCache.set(bucket, off);
  }
  return off;
}

/**
 * The clinic wall-clock time of ``unixS`` as milliseconds of a UTC date: what a chart library that draws
 * dates in UTC (plotly) must be given to label its axis in the clinic's zone.
 */
export function wallMs(unixS) {
  return (unixS + zoneOffsetS(unixS)) * 1000;
}

/** Inverse of wallMs (the instant shown as that clinic wall time). */
export function unixFromWallMs(ms) {
  const guess = ms / 1000 - zoneOffsetS(ms / 1000);
  return ms / 1000 - zoneOffsetS(guess);
}

/** Calendar date "Wed 25 Nov 2026" in the clinic's time zone. */
export function formatDate(unixS) {
  if (!Number.isFinite(unixS)) return '';
  return fmtDate.format(new Date(unixS * 1000)).replace(',', '');
}

/** "Wed 25 Nov 2026 14:05:03 CET": an unambiguous moment, for recorded data. */
export function formatDateTime(unixS, withSeconds = true) {
  if (!Number.isFinite(unixS)) return '';
  return `${formatDate(unixS)} ${formatClock(unixS, withSeconds)} ${zoneAbbreviation(unixS)}`;
}

/** Set an element's text only when it changed (avoids layout work at 4 Hz). */
export function setText(el, text) {
  if (el && el.textContent !== text) el.textContent = text;
}

/** Set (or remove, for null/undefined) an attribute only when it changed. */
export function setAttr(el, name, value) {
  if (!el) return;
  if (value === null || value === undefined || value === false) {
    if (el.hasAttribute(name)) el.removeAttribute(name);
  } else if (el.getAttribute(name) !== String(value)) {
    el.setAttribute(name, String(value));
  }
}

/** Create an element with a class and optional text (no innerHTML anywhere: CSP and XSS hygiene). */
export function h(tag, className = '', text = '') {
  const el = document.createElement(tag);
  if (className) el.className = className;
  if (text) el.textContent = text;
  return el;
}
