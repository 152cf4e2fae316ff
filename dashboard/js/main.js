// Wires the page together. A view starts from the server's exact counts up to one stream id
// (/api/stats names it; the timelines and the list's history are read up to the same id), then the
// feed resumes after that id, so every later event is counted and listed exactly once. Charts and
// counters redraw at most once a second; the list at most once an animation frame. A view that
// cannot load (Redis down, the server restarting) tries again by itself, backing off.

import { getJson } from "./api.js";
import { feedUrl, hasToken } from "./auth.js";
import { FallbackChart, StackedChart, restyle, typeColour } from "./charts.js";
import { Details } from "./details.js";
import { setText } from "./dom.js";
import { Feed } from "./feed.js";
import { FilterForm } from "./filters.js";
import { nextId } from "./ids.js";
import { installKeys } from "./keys.js";
import { Counts, Timeline, missingLabel, setMissingLabel } from "./live.js";
import { getPref, setPref } from "./prefs.js";
import { RANGES, emptyFilters, isFixedRange, rangeQuery, readState, writeState } from "./state.js";
import { Counters, partialNotes } from "./stats.js";
import { isUtc, localZone, setUtc, zoneText } from "./time.js";
import { EventList } from "./view.js";

const $ = (id) => document.getElementById(id);
const RENDER_EVERY_MS = 1000;
const DURATION_MS = { m: 60_000, h: 3_600_000, d: 86_400_000 };
// A view that failed to load is asked for again after this long, doubling up to the maximum.
const RETRY_MS = 1000;
const MAX_RETRY_MS = 10_000;
const MIN_LIST_PX = 240;
const LIST_MARGIN_PX = 16;
const LIGHT = matchMedia("(prefers-color-scheme: light)");

let redisUrl = "Redis";

const STATUS_TEXT = {
  connecting: (s) => `connecting (${s.transport})…`,
  live: (s) => `live · ${s.transport}`,
  reconnecting: (s) => `disconnected · retrying in ${s.seconds}s`,
  // From the feed: the server's reader lost Redis (the detail is its error).
  down: (s) => `Redis at ${redisUrl} unavailable${s.detail ? `: ${s.detail}` : ""}`,
  // A view that did not load: the server's answer names what failed.
  failed: (s) => `${s.detail} · retrying in ${Math.round(s.delay / 1000)}s`,
  range: () => "time range · not live",
  loading: () => "loading…",
};

function showStatus(status) {
  const pill = $("status");
  pill.className = `status status-${status.state === "failed" ? "down" : status.state}`;
  pill.textContent = STATUS_TEXT[status.state](status);
}

// The theme the reader picked, else the system's; the button offers the other one.
function applyTheme() {
  const theme = getPref("theme") || (LIGHT.matches ? "light" : "dark");
  document.documentElement.dataset.theme = theme;
  const other = theme === "light" ? "dark" : "light";
  $("theme").textContent = `${other[0].toUpperCase()}${other.slice(1)} theme`;
  $("theme").setAttribute("aria-pressed", String(theme === "light"));
  restyle();
}

function durationMs(text) {
  const match = /^(\d+)([mhd])$/.exec(text);
  return match ? Number(match[1]) * DURATION_MS[match[2]] : null;
}

async function main() {
  applyTheme();
  const config = await getJson("/api/config");
  setMissingLabel(config.missing_label);
  if (config.redis_url) redisUrl = config.redis_url;
  let state = readState(location);
  let view = null;
  let feed = null;
  let generation = 0;
  let renderedAt = 0;
  let renderTimer = null;
  let retryTimer = null;
  let retryDelay = RETRY_MS;

  const form = new FilterForm({
    form: $("filters"), typeOptions: $("type-options"), typeSummary: $("types-summary"), active: $("active"),
    customRange: $("custom-range"), customZone: $("custom-zone"),
    onChange: () => update(form.read(state)),
    onRange: (from, to) => setRange(from, to),
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
    missing: $("details-missing"),
    body: $("details-body"),
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
    hints: $("hints"), notes: $("notes"), onFilter: (key, value) => filterBy(key, value),
  });
  const typesShown = () => state.filters.event_type;
  // Why a chart is empty, in words: no events at all, or none of the kind it draws.
  const noEvents = () => (typesShown().length || Object.values(state.filters).some((v) => v.length)
    ? "No events in this range match the filters." : "No events in this range.");
  const onlyTypes = () => (typesShown().length ? ` The event-type filter shows only ${typesShown().join(", ")}.` : "");
  const charts = {
    types: new StackedChart({
      plot: $("chart-types"), legend: $("legend-types"), title: "Events over time by type", colourOf: typeColour,
      maxSeries: 12, onPick: (value) => filterBy("event_type", value), onBrush: (from, to) => setRange(from, to),
      emptyReason: noEvents,
    }),
    nodes: new StackedChart({
      plot: $("chart-nodes"), legend: $("legend-nodes"), title: "Node share: events per node and RPC backend",
      exclude: missingLabel(), onPick: (value) => filterBy("node", value), leader: $("nodes-now"), noun: "event naming a node",
      emptyReason: (unnamed) => (unnamed
        ? `None of the ${unnamed} events in this range names a node or RPC backend.${onlyTypes()}` : noEvents()),
    }),
    fallbacks: new FallbackChart({
      plot: $("chart-fallbacks"), reasons: $("fallback-reasons"),
      onReason: (reason) => update({ filters: { ...state.filters, q: reason, event_type: ["FALLBACK_TRIGGERED"] } }),
      emptyReason: (fallbacks) => (fallbacks || typesShown().length
        ? `No ROUTE_DECISION or CACHE_HIT events to measure ${fallbacks} fallbacks against.${onlyTypes()}`
        : noEvents()),
    }),
    instances: new StackedChart({
      plot: $("chart-instances"), legend: $("legend-instances"), title: "Activity per instance",
      onPick: (value) => filterBy("instance", value), emptyReason: noEvents,
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
      () => counters.render(counts, live, view.since),
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

  // A view that did not load: said, and asked for again by itself (Redis back, server up).
  function failed(detail, mine) {
    showStatus({ state: "failed", detail, delay: retryDelay });
    retryTimer = setTimeout(() => { if (mine === generation) run(); }, retryDelay);
    retryDelay = Math.min(retryDelay * 2, MAX_RETRY_MS);
  }

  function exportLinks() {
    for (const format of ["ndjson", "csv"]) {
      const params = rangeQuery(state);
      params.set("format", format);
      $(`export-${format}`).href = `/api/export?${params}`;
    }
  }

  // A download cannot send the token's header: with a token, the link is followed with a ticket.
  for (const format of ["ndjson", "csv"]) {
    $(`export-${format}`).addEventListener("click", async (event) => {
      if (!hasToken()) return;
      event.preventDefault();
      const link = document.createElement("a");
      link.href = await feedUrl(event.currentTarget.getAttribute("href"));
      link.download = "";
      link.click();
    });
  }

  async function run() {
    const mine = ++generation;
    clearTimeout(retryTimer);
    if (feed) feed.stop();
    feed = null;
    view = null;
    const live = !isFixedRange(state);
    list.clear();
    list.setLimit(state.limit);
    list.setLive(live);
    form.fill(state);
    form.renderActive(state, removeFilter);
    exportLinks();
    setText($("zone-label"), `times in ${zoneText()}`);
    if (!retryTimer) showStatus({ state: "loading" });
    const stats = await getJson(`/api/stats?${rangeQuery(state)}`);
    if (mine !== generation) return;
    if (stats.error) {
      failed(stats.error, mine);
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
    const failure = [types, nodes, instances, history].find((answer) => answer.error);
    if (failure) {
      failed(failure.error, mine);
      return;
    }
    retryTimer = null;
    retryDelay = RETRY_MS;
    const sliding = live && RANGES.includes(state.since) ? durationMs(state.since) : null;
    view = {
      live,
      since: sliding ? Date.now() - sliding : null,
      counts: new Counts(stats),
      timelines: {
        types: new Timeline(types, { sliding }),
        nodes: new Timeline(nodes, { sliding }),
        instances: new Timeline(instances, { sliding }),
      },
    };
    form.addTypes(Object.keys(stats.by_event_type));
    counters.showHints(stats.hints, stats.events > 0);
    view.notes = partialNotes(stats, [types, nodes, instances]);
    counters.showNotes(view.notes);
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

  // A linked event's detail, brought into view (below the list on a narrow screen); an event that
  // is gone says so in the same place, until closed.
  async function openPermalink(id) {
    const message = await getJson(`/api/routing_events/${encodeURIComponent(id)}`);
    if (message.error) details.showMissing(id, message.error);
    else {
      openEvent(message);
      const row = list.find(String(message.id));
      if (row) list.reveal(row);
    }
    $("details").scrollIntoView({ block: "nearest" });
  }

  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    form.flush();
    update(form.read(state));
  });
  for (const button of document.querySelectorAll(".now-buttons button")) {
    button.addEventListener("click", () => update({ since: button.dataset.since, until: "" }));
  }
  $("zone").value = isUtc() ? "utc" : "local";
  $("zone").options[0].textContent = `local (${localZone()})`;
  $("zone").addEventListener("change", () => {
    setUtc($("zone").value === "utc");
    restyle();
    run(); // every time on the page, the list's included, in the new zone
  });
  $("theme").addEventListener("click", () => {
    setPref("theme", document.documentElement.dataset.theme === "light" ? "dark" : "light");
    applyTheme();
    render();
  });
  LIGHT.addEventListener("change", () => {
    applyTheme();
    render();
  });
  // The list fills the window below whatever is above it, so its newest rows are in view without
  // scrolling (or keeps a usable height when that leaves too little).
  const fitList = () => {
    const events = $("events");
    const top = events.getBoundingClientRect().top + scrollY;
    const atEnd = events.scrollHeight - events.scrollTop - events.clientHeight < 2;
    const height = Math.max(MIN_LIST_PX, innerHeight - top - LIST_MARGIN_PX);
    const layoutTop = document.querySelector(".layout").getBoundingClientRect().top + scrollY;
    // Custom properties: the list's height, and the detail pane beside it ending where the list does.
    document.documentElement.style.setProperty("--list-height", `${height}px`);
    document.documentElement.style.setProperty("--beside-list", `${top + height - layoutTop}px`);
    if (atEnd) events.scrollTop = events.scrollHeight; // the newest rows stay in view
  };
  const above = new ResizeObserver(fitList);
  for (const id of ["filters", "active", "hints", "notes", "charts-fold"]) above.observe($(id));
  above.observe(document.querySelector(".top"));
  above.observe(document.querySelector(".panel-head"));
  addEventListener("resize", fitList);
  const fold = $("charts-fold");
  if (getPref("charts") === "closed") fold.open = false; // only a change queues a toggle event
  fold.addEventListener("toggle", () => setPref("charts", fold.open ? "open" : "closed"));
  installKeys({
    search: $("filters").elements.q,
    menus: [$("types-menu")],
    onPause: () => (list.paused ? list.resume() : list.pause("user")),
    onMove: (step) => {
      const message = list.move(step);
      if (message) openEvent(message);
    },
    onEscape: () => details.close(),
  });
  $("clear-filters").addEventListener("click", () => update({ filters: emptyFilters(), since: "", until: "" }));
  $("clear-view").addEventListener("click", () => list.clear());
  $("load-older").addEventListener("click", async () => {
    const before = list.oldestId();
    const params = rangeQuery(state);
    params.set("limit", String(state.limit));
    if (before) params.set("before", before);
    const page = await getJson(`/api/routing_events?${params}`);
    if (!view) return;
    // A gap the history reports, or a page that failed, is said with the view's other notes.
    const more = page.error ? [`Older events could not be loaded: ${page.error}`] : partialNotes(page, []);
    if (more.length) counters.showNotes(view.notes = [...new Set([...view.notes, ...more])]);
    if (page.error) return;
    if (page.events.length) list.prepend(page.events);
    $("load-older").disabled = page.next_before === null;
  });
  setInterval(() => { if (view && view.live) scheduleRender(); }, RENDER_EVERY_MS);
  details.setPause(null, true);
  run();
}

main();
