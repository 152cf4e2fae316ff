// The dashboard's token: kept in this tab's sessionStorage and sent only as a header, so nothing
// the browser sends by itself (as it sends cookies to every port of this host) carries it. The live
// feeds cannot send headers (WebSocket, EventSource): they present a short-lived, single-use ticket
// obtained with the header instead.

const KEY = "sollol_dashboard_token";

// A `?token=` login link: keep the token for this tab, and take it out of the address bar and history.
function adoptLoginToken() {
  const url = new URL(location.href);
  const token = url.searchParams.get("token");
  if (token === null) return;
  if (token) sessionStorage.setItem(KEY, token);
  url.searchParams.delete("token");
  history.replaceState(history.state, "", `${url.pathname}${url.search}${url.hash}`);
}

adoptLoginToken();

// Whether this tab holds a token (links it follows then need a ticket).
export function hasToken() {
  return Boolean(sessionStorage.getItem(KEY));
}

// fetch() with the token's Authorization header when this tab has one.
export function authFetch(url, options = {}) {
  const token = sessionStorage.getItem(KEY);
  const headers = new Headers(options.headers);
  if (token) headers.set("Authorization", `Bearer ${token}`);
  return fetch(url, { ...options, headers });
}

// A feed's or a download's URL (path and query), with a ticket when this tab has a token. Without one (or when no
// ticket can be had) the URL goes as it is: the server then refuses it, and the feed retries.
export async function feedUrl(url) {
  if (!sessionStorage.getItem(KEY)) return url;
  try {
    const response = await authFetch("/api/ticket", { method: "POST", cache: "no-store" });
    if (!response.ok) return url;
    const { ticket } = await response.json();
    return `${url}${url.includes("?") ? "&" : "?"}ticket=${encodeURIComponent(ticket)}`;
  } catch {
    return url;
  }
}
