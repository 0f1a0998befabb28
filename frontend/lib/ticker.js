// Re-render hook for everything that is not a waveform: called 4 times a second (ages, clocks and
// staleness change with time) and soon after every store change (coalesced to one call per frame).
//
// Callbacks get ``(now, store, bays)``: ``bays`` is null when everything should render (the 4 Hz tick, a
// change that is not about one bay) or the Set of bays whose data changed since the last render, so an
// element showing one bay (a station tile) can skip a render that is about other bays: with 16 bays
// reporting every second, most store changes are about a bay other than any given tile's.

import { context } from './context.js';

const subscribers = new Set();
let scheduled = false;
let interval = null;
let listening = null;
let changedBays = new Set();
let changedAll = false;

function onStoreChange(ev) {
  const bay = ev?.detail?.bay;
  if (bay) changedBays.add(bay); else changedAll = true;
  schedule();
}

// The page's store may be set after elements connect (module imports run first): attach lazily.
function listen() {
  const { store } = context();
  if (store && listening !== store) {
    store.addEventListener('change', onStoreChange);
    listening = store;
  }
}

function run(everything = false) {
  if (!everything) scheduled = false;
  listen();
  const { store, clock } = context();
  if (!store || !clock) return;
  const bays = everything || changedAll ? null : changedBays;
  changedBays = new Set();
  changedAll = false;
  const now = clock.now();
  for (const cb of subscribers) {
    try {
      cb(now, store, bays);
    } catch (err) {
      console.error('vigil: render failed', err);
    }
  }
}

/** Ask for a render soon (at most once per animation frame; falls back to a timer in hidden tabs). */
export function requestRender() {
  changedAll = true;
  schedule();
}

function schedule() {
  if (scheduled) return;
  scheduled = true;
  if (document.hidden) setTimeout(() => run(), 0); else requestAnimationFrame(() => run());
}

/** Call ``cb(nowServerSeconds, store, changedBaysOrNull)`` on every render. Returns an unsubscribe function. */
export function onRender(cb) {
  subscribers.add(cb);
  if (interval === null) interval = setInterval(() => run(true), 250);
  listen();
  requestRender();
  return () => subscribers.delete(cb);
}
