// The counters over the time range (by event type, backend, model), the event rate, and, when the
// filter matches nothing, the server's reasons why. Every counter is a button that filters by it.

import { setText } from "./dom.js";
import { missingLabel, top } from "./live.js";
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
  constructor({ types, backends, models, rate, hints, onFilter }) {
    Object.assign(this, { types, backends, models, rate, hints, onFilter });
  }

  render(counts, live) {
    chips(this.types, top(counts.by.event_type), "event_type", this.onFilter, typeClass);
    chips(this.backends, top(counts.by.backend, SHOWN), "backend", this.onFilter);
    chips(this.models, top(counts.by.model, SHOWN), "model", this.onFilter);
    const events = `${counts.events} event${counts.events === 1 ? "" : "s"} in range`;
    setText(this.rate, live
      ? `${counts.rate(10).toFixed(1)}/s (10 s) · ${counts.rate(60).toFixed(1)}/s (60 s) · ${events}`
      : events);
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
