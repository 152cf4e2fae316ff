// Wires the page together. A view starts from the server's exact counts up to one stream id
// (/api/stats names it; the timelines and the list's history are read up to the same id), then the
// feed resumes after that id, so every later event is counted and listed exactly once. Charts and
// counters redraw at most once a second; the list at most once an animation frame.

import { authFetch } from "./auth.js";
import { FallbackChart, StackedChart, typeColour } from "./charts.js";
import { Details } from "./details.js";
import { Feed } from "./feed.js";
import { FilterForm } from "./filters.js";
import { nextId } from "./ids.js";
import { Counts, Timeline, missingLabel, setMissingLabel } from "./live.js";
import { RANGES, emptyFilters, isFixedRange, rangeQuery, readState, writeState } from "./state.js";
import { Counters } from "./stats.js";
import { EventList } from "./view.js";

const $ = (id) => document.getElementById(id);
const RENDER_EVERY_MS = 1000;
const DURATION_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 };

const STATUS_TEXT = {
  connecting: (s) => `connecting (${s.transport})…`,
  live: (s) => `live · ${s.transport}`,
  reconnecting: (s) => `disconnected · retrying in ${s.seconds}s`,
  down: (s) => `Redis unavailable${s.detail ? `: ${s.detail}` : ""}`,
  range: () => "time range · not live",
  loading: () => "loading…",
};

function showStatus(status) {
  const pill = $("status");
  pill.className = `status status-${status.state}`;
  pill.textContent = STATUS_TEXT[status.state](status);
}

async function getJson(url) {
  try {
    const response = await authFetch(url, { cache: "no-store" });
    const body = await response.json();
    return response.ok ? body : { error: body.error || `HTTP ${response.status}` };
  } catch (error) {
    return { error: `the server did not answer (${error.message})` };
  }
}

function durationMs(text) {
  const match = /^(\d+)([mhd])$/.exec(text);
  return match ? Number(match[1]) * DURATION_MS[match[2]] : null;
}

async function main() {
  const config = await getJson("/api/config");
  setMissingLabel(config.missing_label);
  let state = readState(location);
  let view = null;
  let feed = null;
  let generation = 0;
  let renderedAt = 0;
  let renderTimer = null;

  const form = new FilterForm({
    form: $("filters"), typeOptions: $("type-options"), typeSummary: $("types-summary"), active: $("active"),
  });
  const list = new EventList({
    list: $("events"),
    newButton: $("new-events"),
    shown: $("shown"),
    pauseButton: $("pause"),
    onSelect: (message) => openEvent(message),
    onPauseChange: () => details.setPause(list.pauseText(), list.live),
  });
  const details = new Details({
    panel: $("details"),
    title: $("details-title"),
    fields: $("detail-fields"),
    traceLink: $("trace-link"),
    permalink: $("permalink"),
    copyButton: $("copy-json"),
    copyStatus: $("copy-status"),
    copyFallback: $("copy-fallback"),
    pauseNote: $("pause-note"),
    resumeButton: $("details-resume"),
    chain: $("chain"),
    chainTitle: $("chain-title"),
    chainList: $("chain-events"),
    closeButton: $("close-details"),
  }, {
    traceTemplate: config.trace_url_template || null,
    onFilter: (key, value) => filterBy(key, value),
    onOpen: (message) => openEvent(message),
    onClose: () => {
      list.select(null);
      list.resume("details");
      state = { ...state, id: "" };
      writeState(state);
    },
    onResume: () => list.resume(),
    loadChain: async (traceId, limit) => {
      const found = await getJson(`/api/routing_events?${new URLSearchParams({ trace_id: traceId, limit: String(limit) })}`);
      return found.events || [];
    },
  });
  const counters = new Counters({
    types: $("count-types"), backends: $("count-backends"), models: $("count-models"), rate: $("rate"),
    hints: $("hints"), onFilter: (key, value) => filterBy(key, value),
  });
  const charts = {
    types: new StackedChart({
      plot: $("chart-types"), legend: $("legend-types"), title: "Events over time by type", colourOf: typeColour,
      maxSeries: 12, onPick: (value) => filterBy("event_type", value), onBrush: (from, to) => setRange(from, to),
    }),
    nodes: new StackedChart({
      plot: $("chart-nodes"), legend: $("legend-nodes"), title: "Node share: events per node and RPC backend",
      exclude: missingLabel(), onPick: (value) => filterBy("node", value),
    }),
    fallbacks: new FallbackChart({
      plot: $("chart-fallbacks"), reasons: $("fallback-reasons"),
      onReason: (reason) => update({ filters: { ...state.filters, q: reason, event_type: ["FALLBACK_TRIGGERED"] } }),
    }),
    instances: new StackedChart({
      plot: $("chart-instances"), legend: $("legend-instances"), title: "Activity per instance",
      onPick: (value) => filterBy("instance", value),
    }),
  };

  function update(changes) {
    state = { ...state, id: "", ...changes };
    writeState(state);
    details.close();
    run();
  }

  function filterBy(key, value) {
    update({ filters: { ...state.filters, [key]: key === "event_type" ? [value] : value } });
  }

  function removeFilter(key, value) {
    if (key === "range") update({ since: "", until: "" });
    else if (key === "event_type") update({ filters: { ...state.filters, event_type: state.filters.event_type.filter((t) => t !== value) } });
    else update({ filters: { ...state.filters, [key]: "" } });
  }

  function setRange(fromMs, toMs) {
    update({ since: new Date(fromMs).toISOString(), until: new Date(toMs).toISOString() });
  }

  function openEvent(message) {
    details.show(message);
    list.select(list.find(String(message.id)));
    list.pause("details");
    details.setPause(list.pauseText(), list.live);
    state = { ...state, id: String(message.id) };
    writeState(state);
  }

  // Each chart in a task of its own: small tasks keep the page answering clicks while it redraws.
  function render() {
    renderedAt = Date.now();
    renderTimer = null;
    if (!view) return;
    const { counts, timelines, live } = view;
    const frame = (timeline) => timeline.frame(renderedAt, live);
    const steps = [
      () => counters.render(counts, live),
      () => charts.types.render(frame(timelines.types), timelines.types.size),
      () => charts.fallbacks.render(frame(timelines.types), timelines.types.size, counts.reasons),
      () => charts.nodes.render(frame(timelines.nodes), timelines.nodes.size),
      () => charts.instances.render(frame(timelines.instances), timelines.instances.size),
    ];
    const mine = view;
    const next = () => {
      if (view !== mine || !steps.length) return;
      steps.shift()();
      setTimeout(next, 0);
    };
    next();
  }

  // At most once a second, however fast events come.
  function scheduleRender() {
    if (renderTimer === null) renderTimer = setTimeout(render, Math.max(0, renderedAt + RENDER_EVERY_MS - Date.now()));
  }

  function onEvents(events) {
    for (const message of events) {
      view.counts.add(message);
      for (const timeline of Object.values(view.timelines)) timeline.add(message);
    }
    counters.showHints(null, true);
    list.add(events);
    scheduleRender();
  }

  async function run() {
    const mine = ++generation;
    if (feed) feed.stop();
    feed = null;
    view = null;
    const live = !isFixedRange(state);
    list.clear();
    list.setLimit(state.limit);
    list.setLive(live);
    form.fill(state);
    form.renderActive(state, removeFilter);
    showStatus({ state: "loading" });
    const stats = await getJson(`/api/stats?${rangeQuery(state)}`);
    if (mine !== generation) return;
    if (stats.error) {
      showStatus({ state: "down", detail: stats.error });
      return;
    }
    const query = (extra) => {
      const params = rangeQuery(state);
      for (const [key, value] of Object.entries(extra)) params.set(key, value);
      return params;
    };
    const lastId = stats.last_id;
    const [types, nodes, instances, history] = await Promise.all([
      getJson(`/api/timeline?${query({ by: "event_type", last_id: lastId })}`),
      getJson(`/api/timeline?${query({ by: "node", last_id: lastId })}`),
      getJson(`/api/timeline?${query({ by: "instance", last_id: lastId })}`),
      getJson(`/api/routing_events?${query({ limit: String(state.limit), before: nextId(lastId) })}`),
    ]);
    if (mine !== generation) return;
    const failed = [types, nodes, instances, history].find((answer) => answer.error);
    if (failed) {
      showStatus({ state: "down", detail: failed.error });
      return;
    }
    const sliding = live && RANGES.includes(state.since) ? durationMs(state.since) : null;
    view = {
      live,
      counts: new Counts(stats),
      timelines: {
        types: new Timeline(types, { sliding }),
        nodes: new Timeline(nodes, { sliding }),
        instances: new Timeline(instances, { sliding }),
      },
    };
    form.addTypes(Object.keys(stats.by_event_type));
    counters.showHints(stats.hints, stats.events > 0);
    list.add(history.events);
    $("load-older").disabled = history.next_before === null;
    render();
    if (state.id) openPermalink(state.id);
    if (!live) {
      showStatus({ state: "range" });
      return;
    }
    feed = new Feed({
      filters: state.filters,
      after: lastId,
      transport: state.transport,
      onEvents,
      onGap: (gap) => list.notice(`⚠ ${gap.message}`, "gap"),
      onState: showStatus,
    });
    feed.start();
  }

  async function openPermalink(id) {
    const message = await getJson(`/api/routing_events/${encodeURIComponent(id)}`);
    if (message.error) {
      counters.showHints([`Event ${id}: ${message.error}`], false);
      return;
    }
    openEvent(message);
  }

  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    update(form.read(state));
  });
  $("clear-filters").addEventListener("click", () => update({ filters: emptyFilters(), since: "", until: "" }));
  $("clear-view").addEventListener("click", () => list.clear());
  $("load-older").addEventListener("click", async () => {
    const before = list.oldestId();
    const params = rangeQuery(state);
    params.set("limit", String(state.limit));
    if (before) params.set("before", before);
    const page = await getJson(`/api/routing_events?${params}`);
    if (page.error) return;
    if (page.events.length) list.prepend(page.events);
    $("load-older").disabled = page.next_before === null;
  });
  setInterval(() => { if (view && view.live) scheduleRender(); }, RENDER_EVERY_MS);
  details.setPause(null, true);
  run();
}

main();
