// The reader's choices that outlive a view (theme, time zone, folded charts), kept in localStorage;
// a browser that refuses storage (a policy, a full quota) still works: it only forgets them.

const PREFIX = "sollol-otel.";

export function getPref(name) {
  try {
    return localStorage.getItem(PREFIX + name);
  } catch {
    return null;
  }
}

export function setPref(name, value) {
  try {
    localStorage.setItem(PREFIX + name, value);
  } catch {
    // not kept: the choice holds until the page is closed
  }
}
