// What the page shows lives in the URL, so a view (or one event: ?id=) can be bookmarked and shared.
// The filters are the server's, with the same names on every feed and endpoint.

export const TEXT_FILTERS = ["q", "model", "backend", "node", "instance", "trace_id"];
const LIMITS = [100, 250, 500, 1000];
export const RANGES = ["1m", "5m", "15m", "1h", "6h", "24h", "7d", "30d"];

function clean(value) {
  return (value || "").trim();
}

export function emptyFilters() {
  return { q: "", model: "", backend: "", node: "", instance: "", trace_id: "", event_type: [] };
}

export function readState(location) {
  const params = new URLSearchParams(location.search);
  const filters = emptyFilters();
  for (const key of TEXT_FILTERS) filters[key] = clean(params.get(key));
  const types = params.getAll("event_type").flatMap((v) => v.split(",")).map((v) => v.trim().toUpperCase());
  filters.event_type = [...new Set(types.filter(Boolean))];
  const limit = Number(params.get("limit"));
  return {
    filters,
    since: clean(params.get("since")),
    until: clean(params.get("until")),
    id: clean(params.get("id")),
    limit: LIMITS.includes(limit) ? limit : 100,
    transport: params.get("transport") === "sse" ? "sse" : "auto",
  };
}

// The filters as query parameters (event_type repeated), for the feeds and every endpoint.
export function filterQuery(filters) {
  const params = new URLSearchParams();
  for (const key of TEXT_FILTERS) if (filters[key]) params.set(key, filters[key]);
  for (const type of filters.event_type) params.append("event_type", type);
  return params;
}

// The filters plus the time range: what history, stats and the timeline are asked for.
export function rangeQuery(state, until = state.until) {
  const params = filterQuery(state.filters);
  if (state.since) params.set("since", state.since);
  if (until) params.set("until", until);
  return params;
}

export function writeState(state) {
  const params = filterQuery(state.filters);
  if (state.since) params.set("since", state.since);
  if (state.until) params.set("until", state.until);
  if (state.limit !== 100) params.set("limit", String(state.limit));
  if (state.transport === "sse") params.set("transport", "sse");
  if (state.id) params.set("id", state.id);
  const query = params.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

export function activeFilters(filters) {
  const out = TEXT_FILTERS.filter((key) => filters[key]).map((key) => [key, filters[key]]);
  for (const type of filters.event_type) out.push(["event_type", type]);
  return out;
}

// A fixed range (brushed, or from a link) is history: the page is not live while it is set.
export function isFixedRange(state) {
  return Boolean(state.until);
}
