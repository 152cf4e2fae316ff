// The counters over the time range (by event type, backend, model), the event rate, and, when the
// filter matches nothing, the server's reasons why. Every counter is a button that filters by it.

import { setText } from "./dom.js";
import { idMs } from "./ids.js";
import { missingLabel, top } from "./live.js";
import { eventClock } from "./time.js";
import { typeClass } from "./view.js";

const SHOWN = 12;

function chips(list, entries, filter, onFilter, classFor = null) {
  list.replaceChildren(...entries.map(([name, count]) => {
    const item = document.createElement("li");
    const pickable = name !== missingLabel();
    const chip = document.createElement(pickable ? "button" : "span");
    if (classFor) chip.className = classFor(name);
    chip.textContent = `${name} ${count}`;
    if (pickable) {
      chip.type = "button";
      chip.title = `Show only ${filter} ${name}`;
      chip.addEventListener("click", () => onFilter(filter, name));
    }
    item.append(chip);
    return item;
  }));
}

export class Counters {
  constructor({ types, backends, models, rate, hints, notes, onFilter }) {
    Object.assign(this, { types, backends, models, rate, hints, notes, onFilter });
  }

  // `since`: where a sliding view ("last minute") began counting; its counts keep growing from
  // there, so they say so rather than claim to cover the last minute.
  render(counts, live, since = null) {
    chips(this.types, top(counts.by.event_type), "event_type", this.onFilter, typeClass);
    chips(this.backends, top(counts.by.backend, SHOWN), "backend", this.onFilter);
    chips(this.models, top(counts.by.model, SHOWN), "model", this.onFilter);
    const where = since === null ? "in range" : `since ${eventClock(since, false)}`;
    const events = counts.complete
      ? `${counts.events} event${counts.events === 1 ? "" : "s"} ${where}`
      : `at least ${counts.events} events ${where} (only the newest ${counts.counted} were counted)`;
    setText(this.rate, live
      ? `${counts.rate(10).toFixed(1)}/s (10 s) · ${counts.rate(60).toFixed(1)}/s (60 s) · ${events}`
      : events);
  }

  // What the answers leave out (a count cut short, a gap, values not named), said above the charts.
  showNotes(notes) {
    this.notes.hidden = notes.length === 0;
    const items = notes.map((note) => {
      const item = document.createElement("li");
      item.textContent = note;
      return item;
    });
    const title = document.createElement("p");
    title.textContent = "These answers are partial:";
    const list = document.createElement("ul");
    list.append(...items);
    this.notes.replaceChildren(...(notes.length ? [title, list] : []));
  }

  // Why nothing matched (from /api/stats), hidden once something does.
  showHints(hints, matched) {
    if (matched || !hints || !hints.length) {
      if (!this.hints.hidden) {
        this.hints.hidden = true;
        this.hints.replaceChildren();
      }
      return;
    }
    const title = document.createElement("p");
    title.textContent = "Nothing matches these filters:";
    const list = document.createElement("ul");
    list.append(...hints.map((hint) => {
      const item = document.createElement("li");
      item.textContent = hint;
      return item;
    }));
    this.hints.replaceChildren(title, list);
    this.hints.hidden = false;
  }
}

function when(value) {
  const ms = /^\d+(-\d+)?$/.test(String(value)) ? idMs(value) : Date.parse(value);
  return Number.isNaN(ms) ? String(value) : eventClock(ms, false);
}

// A gap in what the server could read, in words, whatever the answer names it by.
function gapText(gap) {
  if (typeof gap !== "object" || gap === null) return `A gap in the events: ${String(gap)}`;
  if (gap.message) return String(gap.message);
  const from = gap.since ?? gap.from ?? gap.start ?? gap.after_id;
  const to = gap.until ?? gap.to ?? gap.end ?? gap.first_id;
  const count = gap.missed ?? gap.events ?? gap.count;
  const span = `${from ? ` from ${when(from)}` : ""}${to ? ` to ${when(to)}` : ""}`;
  return `A gap in the events${span}: ${count ?? "an unknown number of"} events are missing`;
}

// The notes for a view's answers (/api/stats and the timelines); fields a server does not send
// are simply absent.
export function partialNotes(stats, timelines) {
  const notes = [];
  if (stats.window?.complete === false) {
    notes.push(`The counts cover the newest ${stats.window.entries} events of this range only: ` +
      "it holds more than the dashboard counts at once.");
  }
  for (const answer of [stats, ...timelines]) {
    for (const gap of Array.isArray(answer.gaps) ? answer.gaps : []) notes.push(gapText(gap));
    if (answer.bounded === true && answer.by) {
      notes.push(`By ${answer.by}: the busiest are named, the rest counted together as "all others".`);
    }
  }
  return [...new Set(notes)];
}
