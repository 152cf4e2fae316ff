// Every request the page makes goes through here, so whatever a request needs (an auth header, a
// ticket) is added in one place.

import { authFetch } from "./auth.js";

export async function getJson(url) {
  try {
    const response = await authFetch(url, { cache: "no-store" });
    const body = await response.json();
    return response.ok ? body : { error: body.error || `HTTP ${response.status}` };
  } catch (error) {
    return { error: `the dashboard server did not answer (${error.message})` };
  }
}
