// Counts that start from the server's exact answer (/api/stats, /api/timeline, up to one stream id)
// and grow with every event the feed delivers after that id, so they stay exact without polling.

import { idMs } from "./ids.js";

let missing = "(none)";

export function setMissingLabel(label) {
  if (typeof label === "string" && label) missing = label;
}

export function missingLabel() {
  return missing;
}

// An event's value for a dimension, as the server counts it (one label for "none").
export function valueOf(message, by) {
  const raw = by === "event_type" ? message.event_type : by === "instance" ? message.instance_id : message[by];
  return raw === null || raw === undefined || raw === "" ? missing : String(raw);
}

// Events the server counted but did not name (a bounded answer's `other`): a key no event carries,
// so a node really named "other" stays its own.
export const OTHERS = "\u0000other";

export const DIMENSIONS = ["event_type", "backend", "model", "node", "instance"];
// A live chart that grows past this many buckets merges them in pairs.
const MAX_BUCKETS = 360;

// Totals per value of each dimension, the top fallback reasons and the last minute's events per second.
export class Counts {
  constructor(stats) {
    this.events = stats.events;
    // False when the server counted only part of the range (its newest entries): say "at least".
    this.complete = stats.window?.complete !== false;
    this.counted = stats.window?.entries ?? stats.events;
    this.by = {
      event_type: new Map(Object.entries(stats.by_event_type || {})),
      backend: new Map(Object.entries(stats.by_backend || {})),
      model: new Map(Object.entries(stats.by_model || {})),
      node: new Map(Object.entries(stats.by_node || {})),
      instance: new Map(Object.entries(stats.by_instance || {})),
    };
    this.reasons = new Map(Object.entries(stats.top_fallback_reasons || {}));
    this.perSecond = new Map();
    const seconds = stats.per_second || { last: 0, counts: [] };
    seconds.counts.forEach((n, i) => {
      if (n) this.perSecond.set(seconds.last - seconds.counts.length + 1 + i, n);
    });
  }

  add(message) {
    this.events += 1;
    for (const by of DIMENSIONS) {
      const value = valueOf(message, by);
      this.by[by].set(value, (this.by[by].get(value) || 0) + 1);
    }
    if (message.event_type === "FALLBACK_TRIGGERED") {
      const reason = message.reason === null || message.reason === undefined || message.reason === ""
        ? missing : String(message.reason);
      this.reasons.set(reason, (this.reasons.get(reason) || 0) + 1);
    }
    const second = Math.floor(idMs(message.id) / 1000);
    this.perSecond.set(second, (this.perSecond.get(second) || 0) + 1);
  }

  // Events per second over the last `seconds` (by the time Redis added them).
  rate(seconds, nowMs = Date.now()) {
    const now = Math.floor(nowMs / 1000);
    let total = 0;
    for (const [second, n] of this.perSecond) {
      if (second > now - seconds && second <= now) total += n;
      else if (second <= now - 60) this.perSecond.delete(second);
    }
    return total / seconds;
  }
}

function sortedEntries(map) {
  return [...map.entries()].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
}

export function top(map, n = Infinity) {
  return sortedEntries(map).slice(0, n);
}

// One dimension's counts per time bucket, aligned to multiples of the bucket length (as the server's).
export class Timeline {
  constructor(answer, { sliding = null } = {}) {
    this.by = answer.by;
    this.size = answer.bucket_seconds * 1000;
    this.sliding = sliding; // milliseconds kept back from now, for a "last 15 minutes" view
    this.buckets = new Map();
    for (const bucket of answer.buckets) {
      const counts = new Map(Object.entries(bucket.counts));
      if (typeof bucket.other === "number" && bucket.other > 0) counts.set(OTHERS, bucket.other);
      this.buckets.set(Date.parse(bucket.start), counts);
    }
    this.first = Date.parse(answer.buckets[0]?.start ?? answer.since);
    this.last = Date.parse(answer.buckets.at(-1)?.start ?? answer.since);
    this.until = Date.parse(answer.until);
  }

  add(message) {
    const ms = idMs(message.id);
    const start = Math.floor(ms / this.size) * this.size;
    if (start < this.first) return; // older than the view: the server counted or excluded it
    let counts = this.buckets.get(start);
    if (!counts) {
      counts = new Map();
      this.buckets.set(start, counts);
    }
    const value = valueOf(message, this.by);
    counts.set(value, (counts.get(value) || 0) + 1);
    if (start > this.last) this.last = start;
  }

  // Twice as long buckets, for a live view that has grown past MAX_BUCKETS: still exact.
  coarsen() {
    const size = this.size * 2;
    const merged = new Map();
    for (const [start, counts] of this.buckets) {
      const key = Math.floor(start / size) * size;
      const into = merged.get(key) || new Map();
      for (const [value, n] of counts) into.set(value, (into.get(value) || 0) + n);
      merged.set(key, into);
    }
    this.buckets = merged;
    this.size = size;
    this.first = Math.floor(this.first / size) * size;
    this.last = Math.floor(this.last / size) * size;
  }

  // The buckets to draw: from the first to now (or the range's end), without holes.
  frame(nowMs, live) {
    if (live) {
      const end = Math.floor(Math.max(nowMs, this.until - 1) / this.size) * this.size;
      this.last = Math.max(this.last, end);
      if (this.sliding) {
        const keep = Math.floor((nowMs - this.sliding) / this.size) * this.size;
        for (const start of this.buckets.keys()) if (start < keep) this.buckets.delete(start);
        this.first = Math.max(this.first, keep);
      }
    }
    while ((this.last - this.first) / this.size >= MAX_BUCKETS) this.coarsen();
    const starts = [];
    for (let start = this.first; start <= this.last; start += this.size) starts.push(start);
    const totals = new Map();
    for (const start of starts) {
      for (const [value, n] of this.buckets.get(start) || []) totals.set(value, (totals.get(value) || 0) + n);
    }
    return { starts, totals, counts: (start, value) => this.buckets.get(start)?.get(value) || 0 };
  }
}
