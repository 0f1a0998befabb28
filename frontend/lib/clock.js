// Server clock estimate: serverTime ≈ localTime + offset.
//
// Every server message carries ``t`` (server send time). On arrival, t - localNow = offset - latency,
// so each sample is a lower bound of the true offset and the best estimate is the largest recent sample
// (the message that travelled fastest). A sliding window (not an all-time maximum) lets the estimate
// follow a server clock step or local clock drift. Local time is performance.timeOrigin + now(), which is
// monotonic within a page, unlike Date.now().

const WINDOW_S = 30;
const JITTER_S = 0.5; // replay: position reports within this much real time of our estimate are not jumps

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

/**
 * The clock of a replay: the recorded time being shown, not the server's wall clock.
 *
 * ServerClock's max-offset estimate assumes time only moves forward at one second per second; a replay
 * pauses, runs at 1–60× and jumps back on seek. Here now() = position + (playing ? speed × local seconds
 * since the last ``replay`` message : 0), never beyond the recording's end, and never backwards except
 * through a seek (reset()) — so ages ("5 s") and staleness read exactly as they did when recorded.
 */
export class ReplayClock {
  constructor() {
    this.position = null; // recorded time (Unix s) at the last replay message
    this.speed = 1;
    this.playing = false;
    this.state = 'paused'; // 'playing' | 'paused' | 'ended'
    this.start = null;
    this.end = null;
    this._at = 0; // localNow() when position was reported
    this._floor = -Infinity; // the last time handed out (keeps now() monotonic between jumps)
    this.known = false;
  }

  /** Message times are the server's wall clock, which says nothing about the replay position. */
  sample() {}

  /**
   * Apply a ``replay`` message (or a control answer): {state, speed, position, start, end}. A position that
   * differs from our running estimate by more than timer jitter is a jump (seek, or another viewer's
   * control): time may then go backwards once.
   */
  update({ state, speed, position, start, end }) {
    const before = this.position === null ? null : this._estimate();
    if (Number.isFinite(start)) this.start = start;
    if (Number.isFinite(end)) this.end = end;
    if (Number.isFinite(speed) && speed > 0) this.speed = speed;
    if (typeof state === 'string') this.state = state;
    this.playing = this.state === 'playing';
    if (Number.isFinite(position)) {
      if (before === null || Math.abs(position - before) > JITTER_S * this.speed + 0.05) this.reset();
      this.position = position;
      this._at = localNow();
      this.known = true;
    }
  }

  /** Forget the monotonic floor (after a seek: time may go backwards once). */
  reset() {
    this._floor = -Infinity;
  }

  _estimate() {
    let t = this.position + (this.playing ? this.speed * (localNow() - this._at) : 0);
    if (this.end !== null) t = Math.min(t, this.end);
    return t;
  }

  /** Current recorded time shown (Unix s). */
  now() {
    if (this.position === null) return localNow();
    const t = Math.max(this._estimate(), this._floor); // only timer jitter can be behind the floor
    this._floor = t;
    return t;
  }

  /** Offset from the local clock (for displays that show one). */
  get offset() {
    return this.now() - localNow();
  }
}
