// The charts, drawn by uPlot (vendored): each is an image for assistive technology (role="img" with
// an aria-label saying what it shows, totals included), with a legend of buttons that filter by
// what they name, a line of text with the values under the cursor (the newest bucket's when the
// cursor is elsewhere), and, when a filter leaves a chart empty, a note saying why. Names come
// from events, so they only ever reach the page as text. Colours come from the stylesheet, so
// both themes and the list agree; times follow the page's zone.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { OTHERS as OTHER, missingLabel, top } from "./live.js";
import { eventClock, isUtc, tickLabels } from "./time.js";
import { typeClass } from "./view.js";

// Series colours for names without one of their own (nodes, instances): Tableau 10's
// colour-blind-safe set, which both themes show.
const PALETTE = ["#1170aa", "#fc7d0b", "#5fa2ce", "#c85200", "#a3cce9", "#ffbc79", "#57606c", "#c8d0d9"];
const OTHER_TEXT = "all others";
const HEIGHT = 110;
// Pixels between time ticks: wide enough for "00:00:00" over a date, so labels never touch.
const TICK_SPACE = 90;

// A colour the stylesheet gives (a custom property or a type's class), resolved for the theme.
const probe = document.createElement("span");
probe.hidden = true;
document.body.append(probe);
const resolved = new Map();

function cssColour(className, property = "--c") {
  const key = `${className} ${property}`;
  if (!resolved.has(key)) {
    probe.className = className;
    probe.style.color = `var(${property})`;
    resolved.set(key, getComputedStyle(probe).color);
  }
  return resolved.get(key);
}

// The look every chart is drawn with; `restyle` after the theme or the zone changed rebuilds them.
let look = 0;
export function restyle() {
  resolved.clear();
  look += 1;
}

export function typeColour(name, index) {
  const known = typeClass(name);
  return known === "t-other" ? PALETTE[index % PALETTE.length] : cssColour(known);
}

// The value axis as wide as its longest label ("12,000", "100%"), so no label is ever cut off.
function fitLabels(u, values, axisIndex, cycle) {
  const axis = u.axes[axisIndex];
  if (cycle > 1) return axis._size;
  const longest = (values || []).reduce((a, b) => (String(b).length > a.length ? String(b) : a), "");
  u.ctx.font = axis.font[0];
  return Math.ceil(axis.ticks.size + axis.gap + u.ctx.measureText(longest).width / devicePixelRatio) + 2;
}

function axes(yValues = null) {
  const stroke = cssColour("", "--muted");
  const line = cssColour("", "--line");
  const grid = { stroke: line, width: 1 };
  return [
    { stroke, grid, ticks: grid, space: TICK_SPACE, values: (u, splits, axis, space, incr) => tickLabels(splits, incr) },
    { stroke, grid, ticks: grid, size: fitLabels, ...(yValues ? { values: yValues } : {}) },
  ];
}

function percent(part, whole) {
  return whole ? `${Math.round((part / whole) * 1000) / 10}%` : "0%";
}

function clock(ms) {
  return eventClock(ms, false);
}

function rangeText(starts, size) {
  if (!starts.length) return "no time range";
  return `${clock(starts[0])} to ${clock(starts.at(-1) + size)}, in ${size / 1000}-second buckets`;
}

function display(name) {
  return name === OTHER ? OTHER_TEXT : name;
}

// A uPlot instance that follows its container's width and is rebuilt when its series or the look
// change, with the readout line below it.
class Plot {
  constructor(element, options, onCursor) {
    this.element = element;
    this.options = options;
    this.plot = null;
    this.key = "";
    this.readout = document.createElement("p");
    this.readout.className = "readout";
    this.note = document.createElement("p");
    this.note.className = "empty-note";
    this.note.hidden = true;
    element.after(this.readout);
    element.after(this.note);
    this.onCursor = onCursor;
    new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: HEIGHT })).observe(element);
  }

  width() {
    return Math.max(200, this.element.clientWidth);
  }

  draw(key, series, data, xRange) {
    const scales = { x: { time: true, range: () => xRange }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } };
    const fullKey = `${look}\n${key}`;
    if (!this.plot || fullKey !== this.key) {
      this.plot?.destroy();
      this.key = fullKey;
      const hooks = { ...(this.options.hooks || {}), setCursor: [(u) => this.onCursor(u)] };
      const tzDate = isUtc() ? { tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC") } : {};
      this.plot = new uPlot(
        { ...this.options, ...tzDate, axes: this.options.axes(), hooks, width: this.width(), height: HEIGHT,
          padding: [8, 24, 0, 0], scales, series: [{}, ...series] },
        data,
        this.element,
      );
    } else {
      this.plot.batch(() => {
        this.plot.scales.x.range = () => xRange;
        this.plot.setData(data);
      });
    }
  }

  // The bucket under the cursor (null when the cursor is not over the plot), by where it points:
  // a bar covers its whole bucket, the newest included.
  cursorBucket(u, starts, size) {
    if (u.cursor.left === undefined || u.cursor.left < 0 || !starts.length) return null;
    const ms = u.posToVal(u.cursor.left, "x") * 1000;
    const index = Math.floor((ms - starts[0]) / size);
    return index >= 0 && index < starts.length ? index : null;
  }

  // The readout: the bucket under the cursor, else the newest one, as `describe(index, start)` says.
  readOut(u, shown, describe) {
    if (!shown || !shown.starts.length) {
      this.readout.textContent = "";
      return;
    }
    const pointed = this.cursorBucket(u, shown.starts, shown.size);
    const index = pointed ?? shown.starts.length - 1;
    const start = shown.starts[index];
    const which = pointed === null ? "newest " : "";
    this.readout.textContent = `${which}${clock(start)}–${clock(start + shown.size)}: ${describe(index, start)}`;
  }

  showEmpty(reason) {
    this.note.hidden = !reason;
    this.note.textContent = reason || "";
  }
}

function legendItem(name, text, colour, onPick) {
  const item = document.createElement("li");
  const pickable = onPick && name !== OTHER && name !== missingLabel();
  const label = document.createElement(pickable ? "button" : "span");
  if (pickable) {
    label.type = "button";
    label.title = `Show only ${name}`;
    label.addEventListener("click", () => onPick(name));
  }
  const swatch = document.createElement("span");
  swatch.className = "swatch";
  swatch.style.background = colour;
  const words = document.createElement("span");
  words.textContent = text;
  label.append(swatch, words);
  item.append(label);
  return item;
}

// Counts per bucket stacked by value (bars), the biggest values named and the rest as "all others".
export class StackedChart {
  constructor({ plot, legend, title, colourOf, maxSeries = 8, exclude = null, onPick = null, onBrush = null,
    emptyReason = null, leader = null, noun = "events" }) {
    this.container = plot;
    this.legend = legend;
    this.title = title;
    this.colourOf = colourOf || ((name, index) => PALETTE[index % PALETTE.length]);
    this.maxSeries = maxSeries;
    this.colours = new Map();
    this.coloursLook = look;
    this.exclude = exclude;
    this.onPick = onPick;
    this.emptyReason = emptyReason;
    this.leader = leader; // where "most traffic in the last minute" is said, if anywhere
    this.noun = noun; // what the leader counts, when there is none
    this.shown = null;
    const options = {
      legend: { show: false },
      axes: () => axes(),
      cursor: { points: { show: false }, drag: { x: Boolean(onBrush), y: false, setScale: false } },
      select: { show: Boolean(onBrush) },
      hooks: onBrush ? { setSelect: [(u) => this.brushed(u, onBrush)] } : {},
    };
    this.plot = new Plot(plot, options, (u) => this.readout(u));
  }

  colour(name) {
    if (name === OTHER) return cssColour("", "--muted");
    if (this.coloursLook !== look) {
      this.colours = new Map(); // another theme: the stylesheet's colours changed
      this.coloursLook = look;
    }
    if (!this.colours.has(name)) this.colours.set(name, this.colourOf(name, this.colours.size));
    return this.colours.get(name);
  }

  brushed(u, onBrush) {
    if (u.select.width < 3) return;
    const from = u.posToVal(u.select.left, "x") * 1000;
    const to = u.posToVal(u.select.left + u.select.width, "x") * 1000;
    u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
    onBrush(Math.floor(from), Math.ceil(to));
  }

  // The values of the bucket under the cursor, or of the newest bucket.
  readout(u) {
    this.plot.readOut(u, this.shown, (index, start) => this.values(start));
  }

  values(start) {
    const shown = this.shown;
    const values = shown.groups
      .map(([name, members]) => [name, members.reduce((sum, m) => sum + shown.counts(start, m), 0)])
      .filter(([, n]) => n > 0)
      .sort((a, b) => b[1] - a[1]);
    const total = values.reduce((sum, [, n]) => sum + n, 0);
    const list = values.map(([name, n]) => `${display(name)} ${n}`).join(", ");
    return `${total}${list ? ` (${list})` : ""}`;
  }

  render(frame, size) {
    const excluded = this.exclude ? frame.totals.get(this.exclude) || 0 : 0;
    const ranked = top(frame.totals).filter(([name]) => name !== this.exclude);
    // The series are the biggest values in a stable order (by name), so the plot is rebuilt only
    // when that set changes, not whenever two values swap places; each keeps its colour.
    const named = ranked.slice(0, this.maxSeries).map(([name]) => name).sort();
    const rest = ranked.slice(this.maxSeries).map(([name]) => name);
    const groups = named.map((name) => [name, [name]]);
    if (rest.length) groups.push([OTHER, rest]);
    const colours = new Map(groups.map(([name]) => [name, this.colour(name)]));
    // Bars drawn tallest first: each series is the running total up to its group, so the visible
    // part of each bar is that group's count.
    const running = frame.starts.map(() => 0);
    const stacked = groups.map(([, members]) => frame.starts.map((start, i) => {
      running[i] += members.reduce((sum, name) => sum + frame.counts(start, name), 0);
      return running[i];
    }));
    const order = groups.map((_, i) => i).reverse();
    const series = order.map((i) => ({
      label: display(groups[i][0]),
      stroke: colours.get(groups[i][0]),
      fill: colours.get(groups[i][0]),
      width: 0,
      points: { show: false },
      paths: uPlot.paths.bars({ size: [0.92, Infinity], align: 1 }),
    }));
    const xs = frame.starts.map((start) => start / 1000);
    const xRange = xs.length ? [xs[0], xs.at(-1) + size / 1000] : [0, 1];
    this.shown = { starts: frame.starts, size, groups, counts: frame.counts };
    this.plot.draw(groups.map(([name]) => name).join("\n"), series, [xs, ...order.map((i) => stacked[i])], xRange);
    this.readout(this.plot.plot);

    const total = ranked.reduce((sum, [, n]) => sum + n, 0);
    const totals = groups.map(([name, members]) => [name, members.reduce((sum, m) => sum + frame.totals.get(m), 0)]);
    totals.sort((a, b) => (a[0] === OTHER) - (b[0] === OTHER) || b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    this.legend.replaceChildren(...totals.map(([name, n]) =>
      legendItem(name, `${display(name)} ${n} (${percent(n, total)})`, colours.get(name), this.onPick)));
    const parts = totals.map(([name, n]) => `${display(name)} ${n}`).join(", ");
    const without = excluded ? `; ${excluded} events name none` : "";
    const empty = total === 0 && this.emptyReason ? this.emptyReason(excluded) : null;
    this.plot.showEmpty(empty);
    const label = `${this.title}, ${rangeText(frame.starts, size)}: ${total} events${parts ? `: ${parts}` : ""}${without}` +
      `${empty ? `. ${empty}` : ""}`;
    this.container.setAttribute("aria-label", label);
    this.container.dataset.total = String(total);
    if (this.leader) this.leader.textContent = this.leading(frame, size);
  }

  // The value with the most events in the last minute, at a glance.
  leading(frame, size) {
    const since = Date.now() - 60_000;
    const recent = new Map();
    for (const start of frame.starts) {
      if (start + size <= since) continue;
      for (const [name] of frame.totals) {
        if (name === this.exclude) continue;
        const n = frame.counts(start, name);
        if (n) recent.set(name, (recent.get(name) || 0) + n);
      }
    }
    const [first] = top(recent, 1);
    if (!first) return `No ${this.noun} in the last minute`;
    const all = [...recent.values()].reduce((a, b) => a + b, 0);
    return `Most traffic in the last minute: ${first[0]} (${percent(first[1], all)}, ${first[1]} of ${all})`;
  }
}

// Fallbacks per routing decision (ROUTE_DECISION and CACHE_HIT) in each bucket, as a percentage.
export class FallbackChart {
  constructor({ plot, reasons, onReason, emptyReason }) {
    this.container = plot;
    this.reasons = reasons;
    this.onReason = onReason;
    this.emptyReason = emptyReason;
    this.shown = null;
    this.plot = new Plot(plot, {
      legend: { show: false },
      axes: () => axes((u, ticks) => ticks.map((v) => `${v}%`)),
      cursor: { points: { show: false }, drag: { x: false, y: false } },
    }, (u) => this.readout(u));
  }

  readout(u) {
    this.plot.readOut(u, this.shown, (i) => {
      const { rates, fallbacks, decisions } = this.shown;
      return `${rates[i] === null ? "no decisions" : `${rates[i]}%`} (${fallbacks[i]} fallbacks, ${decisions[i]} decisions)`;
    });
  }

  render(frame, size, reasons) {
    const fallbacks = frame.starts.map((start) => frame.counts(start, "FALLBACK_TRIGGERED"));
    const decisions = frame.starts.map((start) => frame.counts(start, "ROUTE_DECISION") + frame.counts(start, "CACHE_HIT"));
    const rates = fallbacks.map((n, i) => (decisions[i] ? Math.round((n / decisions[i]) * 1000) / 10 : null));
    const xs = frame.starts.map((start) => start / 1000);
    const xRange = xs.length ? [xs[0], xs.at(-1) + size / 1000] : [0, 1];
    const colour = typeColour("FALLBACK_TRIGGERED", 0);
    const series = [{
      label: "fallback rate",
      stroke: colour,
      fill: colour.replace("rgb(", "rgba(").replace(")", ", 0.15)"),
      width: 2,
      spanGaps: false,
      points: { show: true, size: 4 },
    }];
    this.shown = { starts: frame.starts, size, rates, fallbacks, decisions };
    this.plot.draw("rate", series, [xs, rates], xRange);
    this.readout(this.plot.plot);

    const totalFallbacks = fallbacks.reduce((a, b) => a + b, 0);
    const totalDecisions = decisions.reduce((a, b) => a + b, 0);
    const ranked = top(reasons, 5);
    this.reasons.replaceChildren(...ranked.map(([reason, n]) =>
      legendItem(reason, `${reason} ${n}`, colour, this.onReason)));
    let peak = null;
    rates.forEach((rate, i) => { if (rate !== null && (peak === null || rate > rates[peak])) peak = i; });
    const peakText = peak === null ? "" : `; highest ${rates[peak]}% at ${clock(frame.starts[peak])}`;
    const reasonText = ranked.length ? `; top reasons: ${ranked.map(([r, n]) => `${r} ${n}`).join(", ")}` : "";
    const empty = totalDecisions === 0 ? this.emptyReason(totalFallbacks) : null;
    this.plot.showEmpty(empty);
    const label = `Fallback rate over time, ${rangeText(frame.starts, size)}: ${totalFallbacks} fallbacks per ` +
      `${totalDecisions} routing decisions (${percent(totalFallbacks, totalDecisions)})${peakText}${reasonText}` +
      `${empty ? `. ${empty}` : ""}`;
    this.container.setAttribute("aria-label", label);
    this.container.dataset.total = String(totalFallbacks);
  }
}
