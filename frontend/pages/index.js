// Index: links to the station and to each bay's bedside view (GET /api/bays).

import { fetchBays } from '../lib/app.js';
import { h } from '../lib/format.js';

const list = document.getElementById('bay-list');

async function load() {
  const bays = await fetchBays();
  if (bays === null) {
    list.replaceChildren(h('li', 'error', 'Could not load the list of bays from the server (GET /api/bays). Retrying…'));
    setTimeout(load, 3000);
    return;
  }
  if (!bays.length) {
    list.replaceChildren(h('li', 'empty', 'No bays are configured on this server.'));
    return;
  }
  list.replaceChildren(...bays.map((b) => {
    const li = h('li', 'bay');
    li.dataset.bay = b.bay;
    const a = h('a', 'big-link', b.label ?? b.bay);
    a.href = `/bedside.html?bay=${encodeURIComponent(b.bay)}`;
    const devices = (b.devices ?? []).map((d) => `${d.device_id} (${d.state})`).join(', ');
    li.append(a, h('span', 'devices', devices ? `devices: ${devices}` : 'no devices'));
    return li;
  }));
}

load();
