// Times as the whole page shows them: in the browser's zone or in UTC (the reader's choice, kept),
// with the date whenever it is not today, and how long ago in words for a hover.

import { getPref, setPref } from "./prefs.js";

let utc = getPref("zone") === "utc";

const pad = (n, width = 2) => String(n).padStart(width, "0");

export function isUtc() {
  return utc;
}

export function setUtc(on) {
  utc = on;
  setPref("zone", on ? "utc" : "local");
}

export function localZone() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
}

// The zone's name and offset now, e.g. "America/New_York, UTC−05:00".
export function zoneText(ms = Date.now()) {
  if (utc) return "UTC";
  const name = localZone();
  const minutes = -new Date(ms).getTimezoneOffset();
  const sign = minutes < 0 ? "−" : "+";
  return `${name}, UTC${sign}${pad(Math.floor(Math.abs(minutes) / 60))}:${pad(Math.abs(minutes) % 60)}`;
}

// The parts of a moment in the chosen zone.
function parts(ms) {
  const d = new Date(ms);
  return utc
    ? [d.getUTCFullYear(), d.getUTCMonth() + 1, d.getUTCDate(), d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds(), d.getUTCMilliseconds()]
    : [d.getFullYear(), d.getMonth() + 1, d.getDate(), d.getHours(), d.getMinutes(), d.getSeconds(), d.getMilliseconds()];
}

function dateOf([year, month, day]) {
  return `${year}-${pad(month)}-${pad(day)}`;
}

export function dayOf(ms) {
  return dateOf(parts(ms));
}

// "06:20:12.123" today, "2026-12-01 06:20:12.123" on any other day.
export function eventClock(ms, withMs = true) {
  if (!Number.isFinite(ms)) return "--:--:--.---";
  const p = parts(ms);
  const time = `${pad(p[3])}:${pad(p[4])}:${pad(p[5])}${withMs ? `.${pad(p[6], 3)}` : ""}`;
  return dateOf(p) === dayOf(Date.now()) ? time : `${dateOf(p)} ${time}`;
}

// A datetime-local input's value for a moment, and back, in the page's zone.
export function inputValue(ms) {
  const p = parts(ms);
  return `${dateOf(p)}T${pad(p[3])}:${pad(p[4])}:${pad(p[5])}`;
}

export function fromInput(value) {
  if (!value) return NaN;
  return Date.parse(utc ? `${value}Z` : value);
}

// The full moment with its zone, for the detail pane.
export function fullTime(ms) {
  if (!Number.isFinite(ms)) return "unknown";
  const p = parts(ms);
  return `${dateOf(p)} ${pad(p[3])}:${pad(p[4])}:${pad(p[5])}.${pad(p[6], 3)} (${zoneText(ms)})`;
}

// "12 s ago", "3 min ago", "in 2 s" (a clock ahead of this one).
export function relative(ms, nowMs = Date.now()) {
  const seconds = Math.round((nowMs - ms) / 1000);
  const size = Math.abs(seconds);
  const amount = size < 60 ? `${size} s` : size < 3600 ? `${Math.round(size / 60)} min`
    : size < 86_400 ? `${Math.round(size / 3600)} h` : `${Math.round(size / 86_400)} d`;
  return seconds < 0 ? `in ${amount}` : `${amount} ago`;
}

// A message's time: its event's timestamp, else the time Redis added it (its id).
export function messageMs(message) {
  const parsed = message.time ? Date.parse(message.time) : NaN;
  return Number.isNaN(parsed) ? Number(String(message.id).split("-")[0]) : parsed;
}

// "Dec 1" (in the reader's language): a month's name, so no one reads 12-01 as the 12th of January.
const dateFormats = new Map();
function shortDate(ms) {
  const zone = utc ? "UTC" : undefined;
  if (!dateFormats.has(zone)) dateFormats.set(zone, new Intl.DateTimeFormat([], { month: "short", day: "numeric", timeZone: zone }));
  return dateFormats.get(zone).format(ms);
}

// Labels for a time axis (splits in seconds): the time, and the date under the first tick and
// wherever the day changes; seconds only when ticks are less than a minute apart.
export function tickLabels(splits, incrSeconds) {
  let lastDay = null;
  return splits.map((seconds) => {
    const p = parts(seconds * 1000);
    const day = dateOf(p);
    const time = incrSeconds < 60 ? `${pad(p[3])}:${pad(p[4])}:${pad(p[5])}` : `${pad(p[3])}:${pad(p[4])}`;
    const showDay = day !== lastDay && (lastDay !== null || day !== dayOf(Date.now()));
    lastDay = day;
    const date = shortDate(seconds * 1000);
    return incrSeconds >= 86_400 ? date : showDay ? `${time}\n${date}` : time;
  });
}
