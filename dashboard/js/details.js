// The detail view of one event: every field as text (those that can filter the page as buttons),
// whether the list is paused and why, a permalink, copy as JSON, the link to its trace, and the
// request's chain: every routing event of the same trace, in the order they were written.

import { setText } from "./dom.js";
import { fullTime, messageMs, relative } from "./time.js";
import { clock } from "./view.js";

const TRACE_ID = /^[0-9a-f]{32}$/i;
const CHAIN_LIMIT = 500;

// Event keys whose value filters the page, and the filter each one sets.
const FILTER_OF = {
  event_type: "event_type",
  model: "model",
  backend: "backend",
  from_backend: "backend",
  instance_id: "instance",
  hostname: "q",
  node_url: "node",
  node: "node",
  backend_host: "node",
  trace_id: "trace_id",
  reason: "q",
};

function valueText(value) {
  if (value === null || value === undefined) return "null";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function eventJson(message) {
  return JSON.stringify({ stream_id: message.id, ...(message.full_event || {}) }, null, 2);
}

export class Details {
  constructor(elements, { traceTemplate, onFilter, onOpen, onClose, onResume, loadChain }) {
    Object.assign(this, elements);
    this.traceTemplate = traceTemplate;
    this.onFilter = onFilter;
    this.onOpen = onOpen;
    this.onClose = onClose;
    this.loadChain = loadChain;
    this.message = null;
    this.chainFor = null;
    this.closeButton.addEventListener("click", () => this.close());
    this.resumeButton.addEventListener("click", () => onResume());
    this.copyButton.addEventListener("click", () => this.copy());
  }

  get open() {
    return !this.panel.hidden;
  }

  show(message) {
    this.message = message;
    this.missing.hidden = true;
    this.body.hidden = false;
    this.title.textContent = String(message.event_type);
    this.copyStatus.textContent = "";
    this.copyFallback.hidden = true;
    // The time as the list shows it (the zone the page is set to), then every field as written.
    const ms = messageMs(message);
    const rows = [["time", `${fullTime(ms)}, ${relative(ms)}`], ["stream id", message.id],
      ...Object.entries(message.full_event || {})].map(([key, value]) => this.fieldRow(key, value));
    this.fields.replaceChildren(...rows);
    this.permalink.href = `${location.pathname}?${new URLSearchParams({ id: String(message.id) })}`;
    const traceId = typeof message.trace_id === "string" && TRACE_ID.test(message.trace_id) ? message.trace_id : null;
    if (this.traceTemplate && traceId) {
      this.traceLink.href = this.traceTemplate.replaceAll("{trace_id}", encodeURIComponent(traceId));
      this.traceLink.hidden = false;
    } else {
      this.traceLink.hidden = true;
      this.traceLink.removeAttribute("href");
    }
    this.panel.hidden = false;
    this.showChain(message.trace_id ? String(message.trace_id) : null);
  }

  fieldRow(key, value) {
    const row = document.createElement("tr");
    const name = document.createElement("th");
    name.scope = "row";
    name.textContent = key;
    const cell = document.createElement("td");
    const filter = FILTER_OF[key];
    const text = key === "timestamp" && typeof value === "string" ? `${value} as written` : valueText(value);
    if (filter && value !== null && value !== undefined && value !== "" && typeof value !== "object") {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "value";
      button.textContent = text;
      button.title = `Show only events with ${filter === "q" ? "this text" : filter} ${text}`;
      button.addEventListener("click", () => this.onFilter(filter, text));
      cell.append(button);
    } else {
      cell.textContent = text;
    }
    row.append(name, cell);
    return row;
  }

  async showChain(traceId) {
    if (!traceId) {
      this.chain.hidden = true;
      this.chainFor = null;
      return;
    }
    this.chain.hidden = false;
    if (this.chainFor !== traceId) {
      this.chainFor = traceId;
      this.chainEvents = null;
      this.chainTitle.textContent = `Request chain: trace ${traceId}`;
      this.chainList.replaceChildren();
      const events = await this.loadChain(traceId, CHAIN_LIMIT);
      if (this.chainFor !== traceId) return; // another event was opened meanwhile
      this.chainEvents = events;
    }
    this.renderChain();
  }

  renderChain() {
    const events = this.chainEvents;
    if (!events) return;
    const limited = events.length >= CHAIN_LIMIT ? ` (the first ${CHAIN_LIMIT})` : "";
    this.chainTitle.textContent = `Request chain: ${events.length} event${events.length === 1 ? "" : "s"}${limited} of trace ${this.chainFor}`;
    this.chainList.replaceChildren(...events.map((event) => {
      const item = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      const current = this.message && event.id === this.message.id;
      if (current) button.setAttribute("aria-current", "true");
      button.textContent = `${clock(event)} ${event.event_type}: ${event.message ?? ""}${current ? " (this event)" : ""}`;
      button.addEventListener("click", () => this.onOpen(event));
      item.append(button);
      return item;
    }));
  }

  // A permalink's event that cannot be shown, said where its detail would be, until closed.
  showMissing(id, reason) {
    this.message = null;
    this.title.textContent = "Event not found";
    this.missing.textContent = `Event ${id}: ${reason}`;
    this.missing.hidden = false;
    this.body.hidden = true;
    this.panel.hidden = false;
  }

  // The list's state, said where the reader is looking.
  setPause(text, live) {
    let note = text ? `The list is ${text}. Charts and counters stay live.` : "The list is live: new events keep arriving.";
    if (!live) note = "A fixed time range is shown: nothing here is live.";
    setText(this.pauseNote, note);
    this.resumeButton.hidden = !(live && text);
  }

  async copy() {
    const text = eventJson(this.message);
    try {
      await navigator.clipboard.writeText(text);
      this.copyStatus.textContent = "Copied as JSON.";
    } catch {
      this.copyFallback.value = text;
      this.copyFallback.hidden = false;
      this.copyFallback.select();
      this.copyStatus.textContent = "The browser refused the clipboard: the JSON is selected below, copy it from there.";
    }
  }

  close() {
    if (this.panel.hidden) return;
    this.panel.hidden = true;
    this.message = null;
    this.onClose();
  }
}
