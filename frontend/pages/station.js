// Central station: every bay as a tile in a fixed order (the server's /api/bays order, never re-sorted
// by alarms), decimated waves. Escalated alarms get a banner naming the bay (and the HIGH sound); the
// tiles are reachable by keyboard: Tab, or the arrow keys in the grid (Home/End), and Enter opens the bay.
// More than 16 bays: pages of 16 (buttons, PgUp / PgDn), the tile size stays that of a full page, and the
// bar above the grid names alarms on the other pages. The bar also counts the alarms and names the bay with
// the highest one (that tile gets data-top: a wider, glowing border); tiles never move. Phases and clocks of
// open sessions: GET /api/station/sessions every 5 s.

import { fetchBays, loadUiConfig, startLive } from '../lib/app.js';
import { startAlarmAudio } from '../lib/audio.js';
import { PRIORITY_MARK, PRIORITY_RANK, sortedAlarms } from '../lib/derive.js';
import { h, setAttr, setText } from '../lib/format.js';
import { onRender } from '../lib/ticker.js';
import '../components/vigil-audio-status.js';
import { setSessionClocks } from '../components/vigil-bay-tile.js';
import '../components/vigil-connection-banner.js';
import { recoverEscalations } from '../components/vigil-escalation-banner.js';
import '../components/vigil-header.js';
import '../components/vigil-restart-notice.js';

const PAGE_SIZE = 16;
const CLOCKS_POLL_MS = 5000;
const grid = document.getElementById('tiles');
const tiles = new Map();
let fixedOrder = null; // from /api/bays, once known
let allIds = [];
let page = 0;

let cols = 2;

let rows = 2;

function layout(n) {
  cols = Math.max(1, Math.ceil(Math.sqrt(n)));
  rows = Math.max(1, Math.ceil(n / cols));
  grid.style.setProperty('--cols', String(cols));
  grid.style.setProperty('--rows', String(rows));
  tileUnits();
}

/** --th / --tw: 1 % of a tile's height and width (what the tile's type sizes are given in). */
function tileUnits() {
  const cs = getComputedStyle(grid);
  const gap = parseFloat(cs.rowGap) || 0;
  const padX = (parseFloat(cs.paddingLeft) || 0) + (parseFloat(cs.paddingRight) || 0);
  const padY = (parseFloat(cs.paddingTop) || 0) + (parseFloat(cs.paddingBottom) || 0);
  const th = Math.max(1, (grid.clientHeight - padY - gap * (rows - 1)) / rows - 8) / 100; // − borders
  const tw = Math.max(1, (grid.clientWidth - padX - gap * (cols - 1)) / cols - 8) / 100;
  grid.style.setProperty('--th', `${th.toFixed(2)}px`);
  grid.style.setProperty('--tw', `${tw.toFixed(2)}px`);
}
new ResizeObserver(tileUnits).observe(grid);

function sync(store) {
  // Fixed order: /api/bays first; bays it did not list (should not happen) after, in snapshot order.
  const ids = [...(fixedOrder ?? []).map((b) => b.bay)];
  for (const id of store.order) if (!ids.includes(id)) ids.push(id);
  allIds = ids;
  const pages = Math.max(1, Math.ceil(ids.length / PAGE_SIZE));
  page = Math.min(page, pages - 1);
  const shown = ids.slice(page * PAGE_SIZE, (page + 1) * PAGE_SIZE);
  const labels = new Map((fixedOrder ?? []).map((b) => [b.bay, b.label]));
  for (const id of shown) {
    if (!tiles.has(id)) {
      const tile = document.createElement('vigil-bay-tile');
      tile.setAttribute('bay', id);
      tile.setAttribute('label', labels.get(id) ?? store.bays.get(id)?.label ?? id);
      tiles.set(id, tile);
    }
  }
  const current = [...grid.children].map((el) => el.getAttribute('bay'));
  if (current.join('\u0000') !== shown.join('\u0000')) {
    const hadFocus = grid.contains(document.activeElement);
    grid.replaceChildren(...shown.map((id) => tiles.get(id)));
    layout(Math.min(ids.length, PAGE_SIZE)); // every page has the tile size of a full one
    if (hadFocus) grid.querySelector('.tile-link')?.focus();
  }
  grid.dataset.page = String(page + 1);
  grid.dataset.pages = String(pages);
  renderBar(store);
}

/** Show page ``n`` (0-based, clamped). */
function goPage(n) {
  const pages = Math.max(1, Math.ceil(allIds.length / PAGE_SIZE));
  const next = Math.max(0, Math.min(pages - 1, n));
  if (next === page) return;
  page = next;
  sync(store);
}

// ---- the bar above the grid: alarm counts, the highest alarm's bay, paging -------------------------------
const bar = document.getElementById('station-bar');
const summary = h('div', 'summary');
summary.setAttribute('aria-live', 'polite');
const counts = new Map(['high', 'medium', 'low'].map((p) => {
  const el = h('span', 'count');
  el.dataset.priority = p;
  el.hidden = true;
  return [p, el];
}));
const none = h('span', 'summary-none', 'No active alarms');
const highest = h('a', 'highest');
highest.hidden = true;
summary.append(...counts.values(), highest, none);
const pager = h('div', 'pager');
pager.hidden = true;
const prev = h('button', 'page-prev', '◀ Page up');
prev.type = 'button';
prev.setAttribute('aria-keyshortcuts', 'PageUp');
const pageOf = h('span', 'page-of');
const next = h('button', 'page-next', 'Page down ▶');
next.type = 'button';
next.setAttribute('aria-keyshortcuts', 'PageDown');
const others = h('span', 'other-pages');
pager.append(prev, pageOf, next, others);
bar.append(summary, pager);
prev.addEventListener('click', () => goPage(page - 1));
next.addEventListener('click', () => goPage(page + 1));

/** The highest active alarm of a bay as {priority, text, t} (null when none or no link). */
function topAlarm(s, id) {
  if (!s.connected) return null;
  const a = sortedAlarms(s.bays.get(id))[0];
  return a && a.priority !== 'info' ? a : null;
}

function renderBar(s) {
  const n = { high: 0, medium: 0, low: 0 };
  let best = null;
  let bestId = null;
  const otherBest = { before: null, after: null };
  allIds.forEach((id, i) => {
    const a = topAlarm(s, id);
    if (!a) return;
    n[a.priority] = (n[a.priority] ?? 0) + 1;
    const rank = PRIORITY_RANK[a.priority] ?? 0;
    // Highest priority; among equals the one raised first (it has waited longest).
    if (!best || rank > PRIORITY_RANK[best.priority] || (rank === PRIORITY_RANK[best.priority] && a.t < best.t)) {
      best = a;
      bestId = id;
    }
    const p = Math.floor(i / PAGE_SIZE);
    if (p !== page) {
      const side = p < page ? 'before' : 'after';
      const cur = otherBest[side];
      if (!cur || rank > PRIORITY_RANK[cur.a.priority]) otherBest[side] = { a, id };
    }
  });
  for (const [p, el] of counts) {
    el.hidden = n[p] === 0;
    setText(el, `${PRIORITY_MARK[p]} ${n[p]} ${p.toUpperCase()}`);
  }
  none.hidden = best !== null;
  highest.hidden = best === null;
  if (best) {
    const label = s.bays.get(bestId)?.label ?? bestId;
    setText(highest, `Highest: ${label} — ${PRIORITY_MARK[best.priority]} ${best.text || best.code}`);
    setAttr(highest, 'href', `/bedside.html?bay=${encodeURIComponent(bestId)}`);
    setAttr(highest, 'data-priority', best.priority);
  }
  for (const [id, tile] of tiles) setAttr(tile, 'data-top', id === bestId ? '' : null);
  const pages = Math.max(1, Math.ceil(allIds.length / PAGE_SIZE));
  pager.hidden = pages < 2;
  prev.disabled = page === 0;
  next.disabled = page >= pages - 1;
  setText(pageOf, `Page ${page + 1} / ${pages}`);
  setAttr(prev, 'data-alarm', otherBest.before?.a.priority ?? null);
  setAttr(next, 'data-alarm', otherBest.after?.a.priority ?? null);
  const other = [otherBest.before, otherBest.after].filter(Boolean).sort((x, y) => PRIORITY_RANK[y.a.priority] - PRIORITY_RANK[x.a.priority])[0];
  setText(others, other ? `Other page: ${PRIORITY_MARK[other.a.priority]} ${s.bays.get(other.id)?.label ?? other.id} — ${other.a.text || other.a.code}` : '');
  setAttr(others, 'data-priority', other?.a.priority ?? null);
}

/** PgUp / PgDn page through the bays wherever the focus is (not while typing in a field). */
function onPageKey(ev) {
  if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
  if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement || ev.target instanceof HTMLTextAreaElement) return;
  if (ev.key === 'PageDown') { ev.preventDefault(); goPage(page + 1); }
  else if (ev.key === 'PageUp') { ev.preventDefault(); goPage(page - 1); }
}

/** Open sessions' phases and clocks for the tiles (one request for every bay). */
async function pollClocks() {
  try {
    const res = await fetch('/api/station/sessions', { headers: { Accept: 'application/json' } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    setSessionClocks(await res.json());
  } catch (err) {
    console.warn('vigil: session clocks unavailable:', err);
  } finally {
    setTimeout(pollClocks, CLOCKS_POLL_MS);
  }
}

/** Arrow keys move the focus between tiles in grid order (the tiles' links; Enter follows the link). */
function onGridKey(ev) {
  if (ev.altKey || ev.ctrlKey || ev.metaKey) return;
  const links = [...grid.querySelectorAll('vigil-bay-tile > .tile-link')];
  const i = links.indexOf(document.activeElement);
  if (i < 0) return;
  const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: cols, ArrowUp: -cols }[ev.key];
  let j = null;
  if (step !== undefined) j = i + step;
  else if (ev.key === 'Home') j = 0;
  else if (ev.key === 'End') j = links.length - 1;
  if (j === null) return;
  ev.preventDefault();
  if (j >= 0 && j < links.length) links[j].focus();
}

await loadUiConfig(); // the clinic's time zone, before any time is shown
const { store } = startLive({ bays: null, waves: 'decimated' });
startAlarmAudio({ bays: () => store.order, station: true });
layout(4);
grid.addEventListener('keydown', onGridKey);
document.addEventListener('keydown', onPageKey);
onRender((now, s) => renderBar(s));
pollClocks();
store.addEventListener('change', (ev) => {
  if (ev.detail.kind === 'snapshot') {
    sync(store);
    recoverEscalations(store); // escalations raised before we (re)connected are only in the logs
  }
});
fetchBays().then((bays) => {
  if (bays) fixedOrder = bays;
  sync(store);
});
