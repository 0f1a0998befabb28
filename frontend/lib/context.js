// The page's shared objects (store, clock, socket), set once by the page's entry module and read by the
// custom elements. A module singleton keeps the elements free of wiring attributes.

const ctx = { store: null, clock: null, socket: null };

/** Set the page context (call before elements connect, or call refresh() on them afterwards). */
export function setContext({ store, clock, socket }) {
  ctx.store = store ?? ctx.store;
  ctx.clock = clock ?? ctx.clock;
  ctx.socket = socket ?? ctx.socket;
}

/** The page context. */
export function context() {
  return ctx;
}
