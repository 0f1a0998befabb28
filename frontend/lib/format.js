// Small text formatters shared by every page. Times are Unix seconds (server clock).

const pad2 = (n) => String(n).padStart(2, '0');

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

/** Wall-clock "HH:MM:SS" (local time zone of the browser) for a Unix time in seconds. */
export function formatClock(unixS, withSeconds = true) {
  if (!Number.isFinite(unixS)) return '--:--';
  const d = new Date(unixS * 1000);
  const hm = `${pad2(d.getHours())}:${pad2(d.getMinutes())}`;
  return withSeconds ? `${hm}:${pad2(d.getSeconds())}` : hm;
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
