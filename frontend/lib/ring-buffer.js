// A ring buffer of waveform samples, each stored with its own display time (server clock, seconds).
//
// Storing a time per sample (rather than per chunk) keeps the renderer simple and honest: a gap in time
// is a gap on screen, whatever caused it (a dropped frame, a silent device, a resync).

export class SampleRing {
  /** @param {number} capacity number of samples kept (older ones are overwritten) */
  constructor(capacity) {
    this.capacity = Math.max(16, Math.ceil(capacity));
    this.times = new Float64Array(this.capacity);
    this.values = new Float32Array(this.capacity);
    this.start = 0; // physical index of the oldest sample
    this.length = 0;
  }

  /** Time of the newest sample, or -Infinity when empty. */
  get lastTime() {
    return this.length ? this.times[(this.start + this.length - 1) % this.capacity] : -Infinity;
  }

  /** Time of the oldest sample, or +Infinity when empty. */
  get firstTime() {
    return this.length ? this.times[this.start] : Infinity;
  }

  /** Append one sample; returns false (and drops it) when it is not newer than the newest one. */
  push(t, v) {
    if (this.length && t <= this.lastTime) return false;
    let i;
    if (this.length < this.capacity) {
      i = (this.start + this.length) % this.capacity;
      this.length += 1;
    } else {
      i = this.start;
      this.start = (this.start + 1) % this.capacity;
    }
    this.times[i] = t;
    this.values[i] = v;
    return true;
  }

  /** Time of the k-th oldest sample (0 = oldest). */
  timeAt(k) {
    return this.times[(this.start + k) % this.capacity];
  }

  /** Value of the k-th oldest sample. */
  valueAt(k) {
    return this.values[(this.start + k) % this.capacity];
  }

  /** Logical index of the first sample with time > t (binary search); length when none. */
  indexAfter(t) {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.timeAt(mid) > t) hi = mid; else lo = mid + 1;
    }
    return lo;
  }

  /** Forget everything. */
  clear() {
    this.start = 0;
    this.length = 0;
  }
}
