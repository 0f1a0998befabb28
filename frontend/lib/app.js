// Page bootstrap shared by bedside, station and review: clock + store + socket, wired together.

import { ServerClock } from './clock.js';
import { setContext } from './context.js';
import { setClinicTimeZone } from './format.js';
import { loadCatalogue } from './params.js';
import { VigilStore } from './store.js';
import { requestRender } from './ticker.js';
import { VigilSocket, defaultWsUrl } from './ws-client.js';

const UI_CONFIG_TIMEOUT_MS = 3000;

/**
 * Start a page's stream: live by default; the review page passes the replay's websocket ``url`` and a
 * ReplayClock (same protocol, same store and elements; only the clock and the URL differ).
 * @param {{bays: string[]|null, waves: 'full'|'decimated'|'none'}} subscription
 * @param {{url?: string, clock?: object}} [opts]
 * @returns {{clock: ServerClock, store: VigilStore, socket: VigilSocket, catalogue: Promise<object>}}
 */
export function startLive(subscription, { url = defaultWsUrl(), clock = new ServerClock() } = {}) {
  const store = new VigilStore(clock);
  const socket = new VigilSocket({ ...subscription, url, clock, handlers: store.handlers() });
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

/**
 * GET /api/ui-config once at page start and apply it (the clinic's time zone for every clock time).
 * Never throws and never waits more than a few seconds: on failure the page keeps the browser's zone
 * (logged) rather than not starting.
 * @returns {Promise<object|null>}
 */
export async function loadUiConfig() {
  const ctrl = new AbortController();
  const timer = setTimeout(() => ctrl.abort(), UI_CONFIG_TIMEOUT_MS);
  try {
    const res = await fetch('/api/ui-config', { headers: { Accept: 'application/json' }, signal: ctrl.signal });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const cfg = await res.json();
    if (typeof cfg?.clinic_timezone === 'string') setClinicTimeZone(cfg.clinic_timezone);
    document.documentElement.dataset.timezone = cfg?.clinic_timezone ?? '';
    return cfg;
  } catch (err) {
    console.warn("vigil: /api/ui-config unavailable; clock times are in the browser's time zone:", err);
    return null;
  } finally {
    clearTimeout(timer);
  }
}
