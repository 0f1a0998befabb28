// Trend data for the bedside trend panel and the station sparklines: the server's downsampled history
// (GET /api/bays/{bay}/trends) plus live `vitals` folded into the same min/max buckets, so a trend extended
// live looks like one loaded whole (peaks kept, ≤ 1 point per 10 s on average, silences as gaps).

import { measuredAt } from './derive.js';

export const BUCKET_S = 20; // the server's smallest bucket (app/api/trends.py MIN_BUCKET_S)
export const GAP_S = 60; // a silence longer than this breaks the line (as the server does)

/**
 * GET /api/bays/{bay}/trends. ``since`` in Unix s (omit: the open session so far, else the last 2 h).
 * @returns {Promise<object>} the Trends body ({since, until, now, bucket_s, session_id, series, phases})
 */
export async function fetchTrends(bay, { since = null, params = [] } = {}) {
  const q = new URLSearchParams();
  if (since !== null) q.set('since', String(since));
  for (const p of params) q.append('param', p);
  const qs = q.toString();
  const res = await fetch(`/api/bays/${encodeURIComponent(bay)}/trends${qs ? `?${qs}` : ''}`, {
    headers: { Accept: 'application/json' },
  });
  if (!res.ok) throw new Error(`trends of ${bay}: HTTP ${res.status}`);
  return res.json();
}

/**
 * Live points of one parameter folded into min/max buckets. ``add`` takes readings as they arrive;
 * ``take(now)`` returns the points of buckets that are complete (in time order, with a null gap marker
 * after a silence) and forgets them.
 */
export class LiveBuckets {
  constructor(bucketS = BUCKET_S, gapS = GAP_S, lastT = null) {
    this.bucketS = bucketS;
    this.gapS = gapS;
    this.lastT = lastT; // time of the last point handed out (history included)
    this.key = null;
    this.min = null;
    this.max = null;
    this.lastTr = -Infinity; // receipt time of the last reading taken (duplicates are ignored)
  }

  /** Fold a reading in (invalid and repeated ones are ignored). Returns true when it was new. */
  add(t, value, tr = t) {
    if (!(tr > this.lastTr)) return false;
    this.lastTr = tr;
    if (value === null || value === undefined || !Number.isFinite(value)) return true;
    if (this.lastT !== null && t <= this.lastT) return true; // older than what is already drawn
    const key = Math.floor(t / this.bucketS);
    if (this.key !== null && key !== this.key) this._close();
    if (this.key === null) {
      this.key = key;
      this.min = { t, v: value };
      this.max = { t, v: value };
    } else {
      if (value < this.min.v) this.min = { t, v: value };
      if (value > this.max.v) this.max = { t, v: value };
    }
    return true;
  }

  _close() {
    if (this.key === null) return;
    const pts = this.min.t === this.max.t ? [this.min] : [this.min, this.max].sort((a, b) => a.t - b.t);
    if (this.min.v === this.max.v) pts.splice(1);
    this._done = (this._done ?? []).concat(pts);
    this.key = null;
  }

  /** Points of complete buckets (those before the bucket of ``now``): [{t, v}] with v null for a gap. */
  take(now) {
    if (this.key !== null && Math.floor(now / this.bucketS) > this.key) this._close();
    const done = this._done ?? [];
    this._done = [];
    const out = [];
    for (const p of done) {
      if (this.lastT !== null && p.t - this.lastT > this.gapS) out.push({ t: this.lastT + (p.t - this.lastT) / 2, v: null });
      out.push(p);
      this.lastT = p.t;
    }
    return out;
  }
}

/** A reading from the store's bay state as {t, v, tr} on the server clock (v null when not valid). */
export function readingPoint(bay, r) {
  if (!r) return null;
  const ok = r.value !== null && r.value !== undefined && r.quality !== 'invalid';
  return { t: measuredAt(bay, r), v: ok ? r.value : null, tr: r.tr };
}
