// Central station: every bay as a tile in a fixed order (the server's /api/bays order, never re-sorted
// by alarms), decimated waves.

import { fetchBays, startLive } from '../lib/app.js';
import '../components/vigil-bay-tile.js';
import '../components/vigil-connection-banner.js';
import '../components/vigil-header.js';

const MAX_TILES = 16;
const grid = document.getElementById('tiles');
const tiles = new Map();
let fixedOrder = null; // from /api/bays, once known

function layout(n) {
  const cols = Math.max(1, Math.ceil(Math.sqrt(n)));
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

const { store } = startLive({ bays: null, waves: 'decimated' });
layout(4);
store.addEventListener('change', (ev) => {
  if (ev.detail.kind === 'snapshot') sync(store);
});
fetchBays().then((bays) => {
  if (bays) fixedOrder = bays;
  sync(store);
});
