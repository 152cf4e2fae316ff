// The event list: newest at the bottom, at most `limit` rows, auto-scroll that pauses while the
// user reads (scrolled up or paused), with an "N new" button to jump back. Every event field
// becomes text through textContent, never markup.

const NEAR_BOTTOM_PX = 40;

function typeClass(eventType) {
  const known = /^[A-Z_]{1,40}$/.test(eventType || "") ? eventType.toLowerCase() : "other";
  return `t-${known}`;
}

function clock(message) {
  const moment = message.time ? new Date(message.time) : null;
  if (!moment || Number.isNaN(moment.getTime())) return "--:--:--.---";
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(moment.getHours())}:${pad(moment.getMinutes())}:${pad(moment.getSeconds())}.${pad(moment.getMilliseconds(), 3)}`;
}

function cell(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

export class EventList {
  constructor({ list, newButton, shown, pauseButton, onSelect }) {
    this.list = list;
    this.newButton = newButton;
    this.shown = shown;
    this.pauseButton = pauseButton;
    this.onSelect = onSelect;
    this.limit = 100;
    this.pending = [];
    this.unseen = 0;
    this.userPaused = false;
    this.scrolledUp = false;
    this.expanded = false; // older events loaded: keep them until the user jumps back to live
    this.byNode = new WeakMap();
    list.addEventListener("scroll", () => this.onScroll());
    list.addEventListener("click", (event) => this.onClick(event));
    newButton.addEventListener("click", () => this.resume());
    pauseButton.addEventListener("click", () => (this.userPaused ? this.resume() : this.pause()));
  }

  get paused() {
    return this.userPaused || this.scrolledUp || this.expanded;
  }

  setLimit(limit) {
    this.limit = limit;
    this.trim();
  }

  clear() {
    this.list.replaceChildren();
    this.pending = [];
    this.unseen = 0;
    this.expanded = false;
    this.update();
  }

  oldestId() {
    for (const node of this.list.children) {
      const message = this.byNode.get(node);
      if (message) return message.id;
    }
    return null;
  }

  row(message) {
    const item = document.createElement("li");
    item.classList.add(typeClass(message.event_type));
    if (message.full_event && message.full_event.success === false) item.classList.add("failed");
    item.dataset.id = String(message.id);
    item.append(
      cell("span", "time", clock(message)),
      cell("span", "type", String(message.event_type)),
      cell("span", "msg", String(message.message ?? "")),
      cell("span", "inst", String(message.instance_id ?? "")),
    );
    this.byNode.set(item, message);
    return item;
  }

  add(messages) {
    if (this.paused) {
      this.pending.push(...messages);
      this.unseen += messages.length;
      if (this.pending.length > this.limit) this.pending.splice(0, this.pending.length - this.limit);
      this.update();
      return;
    }
    this.append(messages);
  }

  append(messages) {
    const start = Math.max(0, messages.length - this.limit);
    const fragment = document.createDocumentFragment();
    for (let i = start; i < messages.length; i++) fragment.append(this.row(messages[i]));
    this.list.append(fragment);
    this.trim();
    this.list.scrollTop = this.list.scrollHeight;
    this.update();
  }

  prepend(messages) {
    const fragment = document.createDocumentFragment();
    for (const message of messages) fragment.append(this.row(message));
    const before = this.list.scrollHeight;
    this.list.prepend(fragment);
    this.list.scrollTop += this.list.scrollHeight - before;
    this.expanded = true;
    this.update();
  }

  notice(text, className) {
    const item = document.createElement("li");
    item.className = className;
    item.textContent = text;
    if (this.paused) return;
    this.list.append(item);
    this.trim();
    this.list.scrollTop = this.list.scrollHeight;
  }

  trim() {
    if (this.expanded) return;
    while (this.list.children.length > this.limit) this.list.firstElementChild.remove();
  }

  pause() {
    this.userPaused = true;
    this.update();
  }

  resume() {
    this.userPaused = false;
    this.scrolledUp = false;
    this.expanded = false;
    const pending = this.pending;
    this.pending = [];
    this.unseen = 0;
    this.append(pending);
  }

  onScroll() {
    const { scrollTop, scrollHeight, clientHeight } = this.list;
    const nearBottom = scrollHeight - scrollTop - clientHeight < NEAR_BOTTOM_PX;
    if (nearBottom && this.scrolledUp && !this.userPaused && !this.expanded) {
      this.resume();
    } else if (!nearBottom && !this.scrolledUp) {
      this.scrolledUp = true;
      this.update();
    }
  }

  onClick(event) {
    const item = event.target.closest("li");
    const message = item && this.byNode.get(item);
    if (!message) return;
    for (const selected of this.list.querySelectorAll(".selected")) selected.classList.remove("selected");
    item.classList.add("selected");
    this.onSelect(message);
  }

  update() {
    const count = this.list.querySelectorAll("li[data-id]").length;
    this.shown.textContent = `${count} event${count === 1 ? "" : "s"}${this.paused ? " · paused" : ""}`;
    this.newButton.hidden = this.unseen === 0;
    this.newButton.textContent = `${this.unseen} new ↓`;
    this.pauseButton.textContent = this.userPaused ? "Resume" : "Pause";
    this.pauseButton.setAttribute("aria-pressed", String(this.userPaused));
  }
}
