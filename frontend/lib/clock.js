// Server clock estimate: serverTime ≈ localTime + offset.
//
// Every server message carries ``t`` (server send time). On arrival, t - localNow = offset - latency,
// so each sample is a lower bound of the true offset and the best estimate is the largest recent sample
// (the message that travelled fastest). A sliding window (not an all-time maximum) lets the estimate
// follow a server clock step or local clock drift. Local time is performance.timeOrigin + now(), which is
// monotonic within a page, unlike Date.now().

const WINDOW_S = 30;

/** Local monotonic wall time in Unix seconds. */
export function localNow() {
  return (performance.timeOrigin + performance.now()) / 1000;
}

export class ServerClock {
  constructor() {
    /** @type {{at: number, offset: number}[]} */
    this._samples = [];
    this._offset = 0;
    this.known = false;
  }

  /** Record one message's server time ``t`` (seconds), received now. */
  sample(t) {
    if (typeof t !== 'number' || !Number.isFinite(t)) return;
    const at = localNow();
    const offset = t - at;
    const s = this._samples;
    // Keep a monotone deque: drop samples that can never be the maximum again.
    while (s.length && s[s.length - 1].offset <= offset) s.pop();
    s.push({ at, offset });
    while (s.length && s[0].at < at - WINDOW_S) s.shift();
    this._offset = s[0].offset;
    this.known = true;
  }

  /** Current offset estimate in seconds (server − local). */
  get offset() {
    const s = this._samples;
    const at = localNow();
    while (s.length > 1 && s[0].at < at - WINDOW_S) s.shift();
    if (s.length) this._offset = s[0].offset;
    return this._offset;
  }

  /** Estimated current server time in Unix seconds. */
  now() {
    return localNow() + this.offset;
  }
}
