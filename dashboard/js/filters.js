// The filter form: a search box, any number of event types, model/backend/node/instance/trace,
// the time range and how many rows to keep; and the active filters as buttons that remove them.

import { RANGES, TEXT_FILTERS, activeFilters } from "./state.js";
import { eventClock, fromInput, inputValue, isUtc } from "./time.js";

export const KNOWN_TYPES = [
  "ROUTE_DECISION", "CACHE_HIT", "FALLBACK_TRIGGERED", "COORDINATOR_START", "COORDINATOR_STOP",
  "OLLAMA_NODE_SELECTED", "RPC_BACKEND_SELECTED", "MODEL_SWITCH", "TASK_QUEUED", "TASK_START",
  "TASK_COMPLETE", "WORKER_LOAD",
];
const CUSTOM = "custom";
const PICK = "pick";
// Typing pauses this long before the page asks the server again.
const TYPING_MS = 300;
const HOUR_MS = 3_600_000;

function rangeLabel(state) {
  const when = (text) => {
    const ms = Date.parse(text);
    return Number.isNaN(ms) ? text : eventClock(ms, false);
  };
  if (state.until) return `${state.since ? when(state.since) : "the start"} to ${when(state.until)}`;
  return RANGES.includes(state.since) ? `last ${state.since}` : `since ${when(state.since)}`;
}

// Every choice applies as it is made (`onChange`): text as you type, once typing pauses.
export class FilterForm {
  constructor({ form, typeOptions, typeSummary, active, customRange, customZone, onChange, onRange }) {
    Object.assign(this, { form, typeOptions, typeSummary, active, customRange, customZone, onChange, onRange });
    this.types = new Set(KNOWN_TYPES);
    this.typing = null;
    this.shown = null; // the state the form last showed
    this.renderTypes([]);
    typeOptions.addEventListener("change", () => {
      this.summarise();
      onChange();
    });
    form.addEventListener("input", (event) => {
      if (!TEXT_FILTERS.includes(event.target.name)) return;
      clearTimeout(this.typing);
      this.typing = setTimeout(() => onChange(), TYPING_MS);
    });
    form.elements.since.addEventListener("change", () => {
      if (form.elements.since.value === PICK) this.pickRange();
      else {
        customRange.hidden = true;
        onChange();
      }
    });
    form.elements.limit.addEventListener("change", () => onChange());
    customRange.querySelector("button").addEventListener("click", () => this.applyRange());
  }

  // The custom range's inputs, in the page's zone, from the range shown (else the last hour).
  pickRange() {
    const elements = this.form.elements;
    const until = Date.parse(this.shown?.until || "") || Date.now();
    const since = Date.parse(this.shown?.since || "") || until - HOUR_MS;
    elements.from.value = inputValue(since);
    elements.to.value = inputValue(until);
    this.customZone.textContent = isUtc() ? "UTC" : "local time";
    this.customRange.hidden = false;
    elements.from.focus();
  }

  applyRange() {
    const from = fromInput(this.form.elements.from.value);
    const to = fromInput(this.form.elements.to.value);
    if (Number.isNaN(from) || Number.isNaN(to) || to <= from) {
      this.form.elements.to.setCustomValidity("Pick a start, and an end after it");
      this.form.elements.to.reportValidity();
      return;
    }
    this.form.elements.to.setCustomValidity("");
    this.customRange.hidden = true;
    this.onRange(from, to);
  }

  // Waiting input is applied now (Enter, Apply).
  flush() {
    clearTimeout(this.typing);
  }

  // Types written by routers we do not know yet are offered too.
  addTypes(names) {
    let added = false;
    for (const name of names) {
      if (!this.types.has(name) && /^[A-Za-z0-9_.:-]{1,64}$/.test(name)) {
        this.types.add(name);
        added = true;
      }
    }
    if (added) this.renderTypes(this.checkedTypes());
  }

  renderTypes(checked) {
    this.typeOptions.replaceChildren(...[...this.types].map((name) => {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.name = "event_type";
      box.value = name;
      box.checked = checked.includes(name);
      label.append(box, document.createTextNode(` ${name}`));
      return label;
    }));
    this.summarise();
  }

  checkedTypes() {
    return [...this.typeOptions.querySelectorAll("input:checked")].map((box) => box.value);
  }

  summarise() {
    const checked = this.checkedTypes();
    this.typeSummary.textContent = checked.length === 0 ? "all" : checked.length === 1 ? checked[0] : `${checked.length} types`;
  }

  fill(state) {
    this.shown = state;
    const elements = this.form.elements;
    // Only what differs: rewriting a field being typed in would move its caret.
    for (const key of TEXT_FILTERS) {
      if (elements[key].value.trim() !== state.filters[key]) elements[key].value = state.filters[key];
    }
    this.addTypes(state.filters.event_type);
    this.renderTypes(state.filters.event_type);
    const since = elements.since;
    for (const option of [...since.options]) if (!["", PICK, ...RANGES].includes(option.value)) option.remove();
    const custom = state.until || (state.since && !RANGES.includes(state.since));
    if (custom) since.add(new Option(rangeLabel(state), CUSTOM));
    since.value = custom ? CUSTOM : state.since;
    elements.limit.value = String(state.limit);
  }

  read(state) {
    const elements = this.form.elements;
    const filters = { event_type: this.checkedTypes() };
    for (const key of TEXT_FILTERS) filters[key] = elements[key].value.trim();
    const range = elements.since.value;
    const keep = range === CUSTOM || range === PICK;
    return {
      ...state,
      filters,
      since: keep ? state.since : range,
      until: keep ? state.until : "",
      limit: Number(elements.limit.value) || 100,
      id: "",
    };
  }

  // The active filters and time range as buttons that remove them.
  renderActive(state, onRemove) {
    const buttons = activeFilters(state.filters).map(([key, value]) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = `${key}=${value} ✕`;
      button.setAttribute("aria-label", `Remove filter ${key}=${value}`);
      button.addEventListener("click", () => onRemove(key, value));
      return button;
    });
    if (state.since || state.until) {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "range";
      button.textContent = state.until ? `${rangeLabel(state)}: back to live ✕` : `${rangeLabel(state)} ✕`;
      button.setAttribute("aria-label", state.until ? "Back to live: remove the time range" : "Remove the time range");
      button.addEventListener("click", () => onRemove("range", null));
      buttons.push(button);
    }
    this.active.replaceChildren(...buttons);
    this.active.hidden = buttons.length === 0;
  }
}
