// Wires the page together: config, filters from the URL, the feed, the list, details and counters.

import { Details } from "./details.js";
import { Feed } from "./feed.js";
import { fillForm, readForm, readState, writeState, filterQuery } from "./filters.js";
import { Stats } from "./stats.js";
import { EventList } from "./view.js";

const $ = (id) => document.getElementById(id);

const STATUS_TEXT = {
  connecting: (s) => `connecting (${s.transport})…`,
  live: (s) => `live · ${s.transport}`,
  reconnecting: (s) => `disconnected · retrying in ${s.seconds}s`,
  down: (s) => `Redis unavailable${s.detail ? `: ${s.detail}` : ""}`,
};

function showStatus(status) {
  const pill = $("status");
  pill.className = `status status-${status.state}`;
  pill.textContent = STATUS_TEXT[status.state](status);
}

async function loadConfig() {
  try {
    const response = await fetch("/api/config", { cache: "no-store" });
    return response.ok ? await response.json() : {};
  } catch {
    return {};
  }
}

async function main() {
  const config = await loadConfig();
  let state = readState(location);
  const form = $("filters");
  fillForm(form, state);

  const details = new Details({
    panel: $("details"),
    title: $("details-title"),
    fields: $("detail-fields"),
    traceLink: $("trace-link"),
    closeButton: $("close-details"),
    traceTemplate: config.trace_url_template || null,
  });
  const list = new EventList({
    list: $("events"),
    newButton: $("new-events"),
    shown: $("shown"),
    pauseButton: $("pause"),
    onSelect: (message) => details.show(message),
  });
  const stats = new Stats({ types: $("count-types"), backends: $("count-backends"), rate: $("rate") });
  let feed = null;

  function run() {
    if (feed) feed.stop();
    list.clear();
    list.setLimit(state.limit);
    feed = new Feed({
      filters: state.filters,
      backlog: state.limit,
      transport: state.transport,
      onEvents: (events) => list.add(events),
      onGap: (gap) => list.notice(`⚠ ${gap.message}`, "gap"),
      onState: showStatus,
    });
    feed.start();
    stats.start(state.filters);
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    state = readForm(form, state.transport);
    writeState(state);
    run();
  });
  $("clear-filters").addEventListener("click", () => {
    state = { filters: {}, limit: state.limit, transport: state.transport };
    fillForm(form, state);
    writeState(state);
    run();
  });
  $("clear-view").addEventListener("click", () => list.clear());
  $("load-older").addEventListener("click", async () => {
    const before = list.oldestId();
    const params = filterQuery(state.filters);
    params.set("limit", String(state.limit));
    if (before) params.set("before", before);
    const response = await fetch(`/api/routing_events?${params}`, { cache: "no-store" });
    if (!response.ok) return;
    const page = await response.json();
    if (page.events.length) list.prepend(page.events);
    $("load-older").disabled = page.next_before === null;
  });
  run();
}

main();
