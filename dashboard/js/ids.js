// Redis stream ids ("1700000000000-3"): compared as numbers, for dropping anything already shown;
// their first half is the epoch millisecond Redis added the event at, which is what charts count by.

export function compareIds(a, b) {
  const [am, as = "0"] = a.split("-");
  const [bm, bs = "0"] = b.split("-");
  const ms = Number(am) - Number(bm);
  if (ms !== 0) return Math.sign(ms);
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq > 0n ? 1 : -1;
}

export function idMs(id) {
  return Number(String(id).split("-")[0]);
}

// The smallest id after `id`: `before` is exclusive, so history up to and including `id` is before nextId(id).
export function nextId(id) {
  const [ms, seq = "0"] = String(id).split("-");
  return `${ms}-${BigInt(seq) + 1n}`;
}
