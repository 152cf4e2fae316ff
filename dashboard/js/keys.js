// The page's keys: `/` search, space pauses or resumes the list, j and k move through the events,
// Escape closes an open menu, else the open event. None acts while the reader types in a field;
// a menu also closes when the reader clicks anywhere outside it.

const CONTROLS = "input, select, textarea, button, summary, a, [contenteditable]";

export function installKeys({ search, menus, onPause, onMove, onEscape }) {
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.defaultPrevented) return;
    if (event.key === "Escape") {
      const open = menus.filter((menu) => menu.open);
      for (const menu of open) menu.open = false;
      if (!open.length) onEscape();
      return;
    }
    if (event.target.closest?.(CONTROLS)) return;
    if (event.key === "/") {
      event.preventDefault();
      search.focus();
      search.select();
    } else if (event.key === " ") {
      event.preventDefault(); // not a scroll of the page
      onPause();
    } else if (event.key === "j" || event.key === "k") {
      onMove(event.key === "j" ? 1 : -1);
    }
  });
  document.addEventListener("click", (event) => {
    for (const menu of menus) if (menu.open && !menu.contains(event.target)) menu.open = false;
  });
}
