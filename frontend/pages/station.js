// Central station: every bay as a tile in a fixed order (the server's /api/bays order, never re-sorted
// by alarms), decimated waves. Escalated alarms get a banner naming the bay (and the HIGH sound); the
// tiles are reachable by keyboard: Tab, or the arrow keys in the grid (Home/End), and Enter opens the bay.

import { fetchBays, startLive } from '../lib/app.js';
import { startAlarmAudio } from '../lib/audio.js';
import '../components/vigil-audio-status.js';
import '../components/vigil-bay-tile.js';
import '../components/vigil-connection-banner.js';
import { recoverEscalations } from '../components/vigil-escalation-banner.js';
import '../components/vigil-header.js';

const MAX_TILES = 16;
const grid = document.getElementById('tiles');
const tiles = new Map();
let fixedOrder = null; // from /api/bays, once known

let cols = 2;

function layout(n) {
  cols = Math.max(1, Math.ceil(Math.sqrt(n)));
  const rows = Math.max(1, Math.ceil(n / cols));
  grid.style.setProperty('--cols', String(cols));
  grid.style.setProperty('--rows', String(rows));
}

function sync(store) {
  // Fixed order: /api/bays first; bays it did not list (should not happen) after, in snapshot order.
  const ids = [...(fixedOrder ?? []).map((b) => b.bay)];
  for (const id of store.order) if (!ids.includes(id)) ids.push(id);
  const shown = ids.slice(0, MAX_TILES);
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
    grid.replaceChildren(...shown.map((id) => tiles.get(id)));
    layout(shown.length);
  }
  if (ids.length > MAX_TILES) console.warn(`vigil: ${ids.length} bays; the station shows the first ${MAX_TILES}`);
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

const { store } = startLive({ bays: null, waves: 'decimated' });
startAlarmAudio({ bays: () => store.order, station: true });
layout(4);
grid.addEventListener('keydown', onGridKey);
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
