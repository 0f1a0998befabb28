// Re-render hook for everything that is not a waveform: called 4 times a second (ages, clocks and
// staleness change with time) and soon after every store change (coalesced to one call per frame).

import { context } from './context.js';

const subscribers = new Set();
let scheduled = false;
let interval = null;
let listening = null;

// The page's store may be set after elements connect (module imports run first): attach lazily.
function listen() {
  const { store } = context();
  if (store && listening !== store) {
    store.addEventListener('change', requestRender);
    listening = store;
  }
}

function run() {
  scheduled = false;
  listen();
  const { store, clock } = context();
  if (!store || !clock) return;
  const now = clock.now();
  for (const cb of subscribers) {
    try {
      cb(now, store);
    } catch (err) {
      console.error('vigil: render failed', err);
    }
  }
}

/** Ask for a render soon (at most once per animation frame; falls back to a timer in hidden tabs). */
export function requestRender() {
  if (scheduled) return;
  scheduled = true;
  if (document.hidden) setTimeout(run, 0); else requestAnimationFrame(run);
}

/** Call ``cb(nowServerSeconds, store)`` on every render. Returns an unsubscribe function. */
export function onRender(cb) {
  subscribers.add(cb);
  if (interval === null) interval = setInterval(run, 250);
  listen();
  requestRender();
  return () => subscribers.delete(cb);
}
