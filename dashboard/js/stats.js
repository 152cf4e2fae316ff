// Counters over the retained window, refreshed from /api/stats with the current filters.

import { filterQuery } from "./filters.js";

const REFRESH_MS = 5000;

function chips(list, counts, classFor) {
  const items = Object.entries(counts).map(([name, count]) => {
    const item = document.createElement("li");
    if (classFor) item.className = classFor(name);
    item.textContent = `${name} ${count}`;
    return item;
  });
  list.replaceChildren(...items);
}

export class Stats {
  constructor({ types, backends, rate }) {
    this.types = types;
    this.backends = backends;
    this.rate = rate;
    this.filters = {};
    this.timer = null;
  }

  start(filters) {
    this.filters = filters;
    clearTimeout(this.timer);
    this.refresh();
  }

  async refresh() {
    try {
      const response = await fetch(`/api/stats?${filterQuery(this.filters)}`, { cache: "no-store" });
      if (response.ok) this.render(await response.json());
    } catch {
      // the feed's status already says when the server is away
    }
    this.timer = setTimeout(() => this.refresh(), REFRESH_MS);
  }

  render(stats) {
    chips(this.types, stats.by_event_type, (name) => `t-${/^[A-Z_]+$/.test(name) ? name.toLowerCase() : "other"}`);
    chips(this.backends, stats.by_backend);
    const rates = stats.rate_per_second || {};
    this.rate.textContent = `${rates["10s"] ?? 0}/s (10 s) · ${rates["60s"] ?? 0}/s (60 s) · ${stats.events} in window`;
  }
}
