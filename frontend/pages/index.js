// Index: links to what the signed-in user may use (GET /api/me): the station and each bay's bedside view
// (GET /api/bays) for clinical roles, the review page for physicians and reviewers, administration notes.

import { fetchBays } from '../lib/app.js';
import { currentUser } from '../lib/auth.js';
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

/** The user's permissions (null when login is off: every view is shown). */
async function permissions() {
  const me = await currentUser;
  return me?.role ? new Set(me.permissions ?? []) : null;
}

async function start() {
  const perms = await permissions();
  let shown = 0;
  for (const section of document.querySelectorAll('section[data-needs]')) {
    const need = section.dataset.needs;
    const may = perms === null ? need !== 'users' : perms.has(need);
    section.hidden = !may;
    if (may) shown += 1;
  }
  document.getElementById('nothing').hidden = shown > 0;
  if (!document.getElementById('bedside-views').hidden) load();
}

start();
