// The charts, drawn by uPlot (vendored): each is an image for assistive technology (role="img" with
// an aria-label saying what it shows, totals included), with a legend of buttons that filter by
// what they name. Names come from events, so they only ever reach the page as text.

import uPlot from "../vendor/uplot/uPlot.esm.js";
import { missingLabel, top } from "./live.js";

export const TYPE_COLOURS = {
  ROUTE_DECISION: "#22d3ee",
  RPC_BACKEND_SELECTED: "#0e7490",
  FALLBACK_TRIGGERED: "#facc15",
  COORDINATOR_START: "#4ade80",
  TASK_QUEUED: "#86efac",
  TASK_START: "#22c55e",
  TASK_COMPLETE: "#15803d",
  COORDINATOR_STOP: "#f87171",
  CACHE_HIT: "#60a5fa",
  OLLAMA_NODE_SELECTED: "#c084fc",
  MODEL_SWITCH: "#f472b6",
  WORKER_LOAD: "#9ca3af",
};
const PALETTE = ["#60a5fa", "#f472b6", "#4ade80", "#facc15", "#c084fc", "#22d3ee", "#fb923c", "#a3e635"];
const OTHER_COLOUR = "#6b7280";
const OTHER = "other";
const AXIS = { stroke: "#8a93a6", grid: { stroke: "#262b38", width: 1 }, ticks: { stroke: "#262b38", width: 1 } };
const HEIGHT = 150;

const CLOCK = new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });

function clock(ms) {
  return CLOCK.format(ms);
}

function rangeText(starts, size) {
  if (!starts.length) return "no time range";
  return `${clock(starts[0])} to ${clock(starts.at(-1) + size)}, in ${size / 1000}-second buckets`;
}

function percent(part, whole) {
  return whole ? `${Math.round((part / whole) * 1000) / 10}%` : "0%";
}

// A uPlot instance that follows its container's width and is rebuilt when its series change.
class Plot {
  constructor(element, options) {
    this.element = element;
    this.options = options;
    this.plot = null;
    this.key = "";
    new ResizeObserver(() => this.plot?.setSize({ width: this.width(), height: HEIGHT })).observe(element);
  }

  width() {
    return Math.max(200, this.element.clientWidth);
  }

  draw(key, series, data, xRange) {
    const scales = { x: { time: true, range: () => xRange }, y: { range: (u, min, max) => [0, Math.max(1, max * 1.1)] } };
    if (!this.plot || key !== this.key) {
      this.plot?.destroy();
      this.key = key;
      this.plot = new uPlot(
        { ...this.options, width: this.width(), height: HEIGHT, scales, series: [{}, ...series] },
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

// Counts per bucket stacked by value (bars), the biggest values named and the rest as "other".
export class StackedChart {
  constructor({ plot, legend, title, colourOf, maxSeries = 8, exclude = null, onPick = null, onBrush = null }) {
    this.container = plot;
    this.legend = legend;
    this.title = title;
    this.colourOf = colourOf || ((name, index) => PALETTE[index % PALETTE.length]);
    this.maxSeries = maxSeries;
    this.colours = new Map();
    this.exclude = exclude;
    this.onPick = onPick;
    const options = {
      legend: { show: false },
      axes: [AXIS, { ...AXIS, size: 42 }],
      cursor: { points: { show: false }, drag: { x: Boolean(onBrush), y: false, setScale: false } },
      select: { show: Boolean(onBrush) },
      hooks: onBrush ? { setSelect: [(u) => this.brushed(u, onBrush)] } : {},
    };
    this.plot = new Plot(plot, options);
  }

  colour(name) {
    if (name === OTHER) return OTHER_COLOUR;
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
      label: groups[i][0],
      stroke: colours.get(groups[i][0]),
      fill: colours.get(groups[i][0]),
      width: 0,
      points: { show: false },
      paths: uPlot.paths.bars({ size: [0.92, Infinity], align: 1 }),
    }));
    const xs = frame.starts.map((start) => start / 1000);
    const xRange = xs.length ? [xs[0], xs.at(-1) + size / 1000] : [0, 1];
    this.plot.draw(groups.map(([name]) => name).join("\n"), series, [xs, ...order.map((i) => stacked[i])], xRange);

    const total = ranked.reduce((sum, [, n]) => sum + n, 0);
    const totals = groups.map(([name, members]) => [name, members.reduce((sum, m) => sum + frame.totals.get(m), 0)]);
    totals.sort((a, b) => (a[0] === OTHER) - (b[0] === OTHER) || b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
    this.legend.replaceChildren(...totals.map(([name, n]) =>
      legendItem(name, `${name} ${n} (${percent(n, total)})`, colours.get(name), this.onPick)));
    const parts = totals.map(([name, n]) => `${name} ${n}`).join(", ");
    const without = excluded ? `; ${excluded} events name none` : "";
    const label = `${this.title}, ${rangeText(frame.starts, size)}: ${total} events${parts ? `: ${parts}` : ""}${without}`;
    this.container.setAttribute("aria-label", label);
    this.container.dataset.total = String(total);
  }
}

// Fallbacks per routing decision (ROUTE_DECISION and CACHE_HIT) in each bucket, as a percentage.
export class FallbackChart {
  constructor({ plot, reasons, onReason }) {
    this.container = plot;
    this.reasons = reasons;
    this.onReason = onReason;
    this.plot = new Plot(plot, {
      legend: { show: false },
      axes: [AXIS, { ...AXIS, size: 50, values: (u, ticks) => ticks.map((v) => `${v}%`) }],
      cursor: { points: { show: false }, drag: { x: false, y: false } },
    });
  }

  render(frame, size, reasons) {
    const fallbacks = frame.starts.map((start) => frame.counts(start, "FALLBACK_TRIGGERED"));
    const decisions = frame.starts.map((start) => frame.counts(start, "ROUTE_DECISION") + frame.counts(start, "CACHE_HIT"));
    const rates = fallbacks.map((n, i) => (decisions[i] ? Math.round((n / decisions[i]) * 1000) / 10 : null));
    const xs = frame.starts.map((start) => start / 1000);
    const xRange = xs.length ? [xs[0], xs.at(-1) + size / 1000] : [0, 1];
    const series = [{
      label: "fallback rate",
      stroke: "#facc15",
      fill: "rgba(250, 204, 21, 0.15)",
      width: 2,
      spanGaps: false,
      points: { show: true, size: 4 },
    }];
    this.plot.draw("rate", series, [xs, rates], xRange);

    const totalFallbacks = fallbacks.reduce((a, b) => a + b, 0);
    const totalDecisions = decisions.reduce((a, b) => a + b, 0);
    const ranked = top(reasons, 5);
    this.reasons.replaceChildren(...ranked.map(([reason, n]) =>
      legendItem(reason, `${reason} ${n}`, "#facc15", this.onReason)));
    let peak = null;
    rates.forEach((rate, i) => { if (rate !== null && (peak === null || rate > rates[peak])) peak = i; });
    const peakText = peak === null ? "" : `; highest ${rates[peak]}% at ${clock(frame.starts[peak])}`;
    const reasonText = ranked.length ? `; top reasons: ${ranked.map(([r, n]) => `${r} ${n}`).join(", ")}` : "";
    const label = `Fallback rate over time, ${rangeText(frame.starts, size)}: ${totalFallbacks} fallbacks per ` +
      `${totalDecisions} routing decisions (${percent(totalFallbacks, totalDecisions)})${peakText}${reasonText}`;
    this.container.setAttribute("aria-label", label);
    this.container.dataset.total = String(totalFallbacks);
  }
}

export function typeColour(name, index) {
  return TYPE_COLOURS[name] || PALETTE[index % PALETTE.length];
}
