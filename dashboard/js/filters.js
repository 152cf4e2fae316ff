// The filters live in the URL, so a view can be bookmarked and shared.

export const FILTER_KEYS = ["model", "backend", "event_type", "instance"];
const LIMITS = [100, 250, 500, 1000];

export function readState(location) {
  const params = new URLSearchParams(location.search);
  const filters = {};
  for (const key of FILTER_KEYS) {
    const value = (params.get(key) || "").trim();
    if (value) filters[key] = value;
  }
  const limit = Number(params.get("limit"));
  const transport = params.get("transport") === "sse" ? "sse" : "auto";
  return { filters, limit: LIMITS.includes(limit) ? limit : 100, transport };
}

export function writeState(state) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(state.filters)) params.set(key, value);
  if (state.limit !== 100) params.set("limit", String(state.limit));
  if (state.transport === "sse") params.set("transport", "sse");
  const query = params.toString();
  history.replaceState(null, "", query ? `?${query}` : location.pathname);
}

export function fillForm(form, state) {
  for (const key of FILTER_KEYS) {
    const field = form.elements[key];
    const value = state.filters[key] || "";
    if (field.tagName === "SELECT" && value && ![...field.options].some((o) => o.value === value)) {
      field.add(new Option(value, value));
    }
    field.value = value;
  }
  form.elements.limit.value = String(state.limit);
}

export function readForm(form, transport) {
  const filters = {};
  for (const key of FILTER_KEYS) {
    const value = form.elements[key].value.trim();
    if (value) filters[key] = value;
  }
  return { filters, limit: Number(form.elements.limit.value) || 100, transport };
}

export function filterQuery(filters) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(filters)) params.set(key, value);
  return params;
}
