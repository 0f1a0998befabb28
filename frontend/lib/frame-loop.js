// One requestAnimationFrame loop for every animated thing on the page (waveforms), so they all draw
// with the same "now" and the browser schedules one callback per frame.

const callbacks = new Set();
let handle = null;
let last = 0;

function frame(ts) {
  handle = null;
  const dt = last ? (ts - last) / 1000 : 0;
  last = ts;
  for (const cb of callbacks) {
    try {
      cb(dt);
    } catch (err) {
      console.error('vigil: frame callback failed', err);
    }
  }
  if (callbacks.size) handle = requestAnimationFrame(frame);
}

/** Call ``cb(dtSeconds)`` every display frame until removed. */
export function onFrame(cb) {
  callbacks.add(cb);
  if (handle === null) {
    last = 0;
    handle = requestAnimationFrame(frame);
  }
  return () => offFrame(cb);
}

/** Stop calling ``cb``. */
export function offFrame(cb) {
  callbacks.delete(cb);
  if (!callbacks.size && handle !== null) {
    cancelAnimationFrame(handle);
    handle = null;
  }
}
