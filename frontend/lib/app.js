// Page bootstrap shared by bedside and station: clock + store + socket, wired together.

import { ServerClock } from './clock.js';
import { setContext } from './context.js';
import { loadCatalogue } from './params.js';
import { VigilStore } from './store.js';
import { requestRender } from './ticker.js';
import { VigilSocket } from './ws-client.js';

/**
 * Start a live page.
 * @param {{bays: string[]|null, waves: 'full'|'decimated'|'none'}} subscription
 * @returns {{clock: ServerClock, store: VigilStore, socket: VigilSocket, catalogue: Promise<object>}}
 */
export function startLive(subscription) {
  const clock = new ServerClock();
  const store = new VigilStore(clock);
  const socket = new VigilSocket({ ...subscription, clock, handlers: store.handlers() });
  setContext({ store, clock, socket });

  document.body.dataset.connection = 'closed';
  socket.addEventListener('state', (ev) => {
    const open = ev.detail.state === 'open';
    // Mark everything stale the moment the link drops: values must never look current without it.
    store.setConnected(open);
    document.body.dataset.connection = open ? 'open' : 'closed';
    requestRender();
  });
  const catalogue = loadCatalogue().then((c) => { requestRender(); return c; });
  socket.start();
  return { clock, store, socket, catalogue };
}

/** GET /api/bays (null on failure; logged). */
export async function fetchBays() {
  try {
    const res = await fetch('/api/bays', { headers: { Accept: 'application/json' } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const rows = await res.json();
    if (!Array.isArray(rows)) throw new Error('expected a JSON list');
    return rows;
  } catch (err) {
    console.warn('vigil: /api/bays unavailable:', err);
    return null;
  }
}
