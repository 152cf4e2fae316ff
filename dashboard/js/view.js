// The event list: newest at the bottom, at most `limit` rows, each keeping its stream id as data-id.
// The list pauses while the user reads (paused by hand, scrolled up, older events loaded, an event
// open), says so and why, and offers the new events back with one click. Events reach the DOM at
// most ten times a second, and every field through textContent, never markup.

import { setText } from "./dom.js";
import { eventClock, messageMs, relative } from "./time.js";

const NEAR_BOTTOM_PX = 40;
const USER_SCROLL_MS = 1000;
const FLUSH_MS = 100;
// A flush slower than this means events come faster than the page draws them.
const SLOW_FLUSH_MS = 16;
// No row is shorter than this: how many rows can be in view.
const MIN_ROW_PX = 16;
// Rows drawn in one task when a whole list is drawn.
const CHUNK_ROWS = 100;
const SCROLL_KEYS = new Set(["ArrowUp", "ArrowDown", "PageUp", "PageDown", "Home", "End", " "]);

const PAUSE_REASONS = {
  user: "you pressed Pause",
  scrolled: "you scrolled up",
  older: "older events are loaded",
  details: "an event is open",
};

export function typeClass(eventType) {
  const known = /^[A-Z_]{1,40}$/.test(eventType || "") ? eventType.toLowerCase() : "other";
  return `t-${known}`;
}

export function clock(message) {
  return eventClock(messageMs(message));
}

function cell(tag, className, text) {
  const node = document.createElement(tag);
  node.className = className;
  node.textContent = text;
  return node;
}

export class EventList {
  constructor({ list, newButton, shown, pauseButton, onSelect, onPauseChange }) {
    this.list = list;
    this.newButton = newButton;
    this.shown = shown;
    this.pauseButton = pauseButton;
    this.onSelect = onSelect;
    this.onPauseChange = onPauseChange;
    this.limit = 100;
    this.pending = [];
    this.queued = [];
    this.deferred = []; // older rows not drawn yet (see append), oldest first
    this.drawRun = 0;
    this.frame = 0;
    this.flushedAt = 0;
    this.flushCost = 0;
    this.slow = false;
    this.unseen = 0;
    this.reasons = new Set();
    this.live = true; // false while a fixed time range is shown: nothing arrives
    this.byNode = new WeakMap();
    this.byId = new Map();
    this.userScrollAt = 0;
    // Only the reader scrolls the list up; a layout change (the detail pane opening) does not.
    const reading = () => {
      this.userScrollAt = performance.now();
      this.drawDeferred();
    };
    list.addEventListener("wheel", reading, { passive: true });
    list.addEventListener("touchmove", reading, { passive: true });
    list.addEventListener("keydown", (event) => { if (SCROLL_KEYS.has(event.key)) reading(); });
    list.addEventListener("pointerdown", (event) => { if (event.target === list) reading(); }); // its scrollbar
    list.addEventListener("scroll", () => this.onScroll());
    list.addEventListener("click", (event) => this.onClick(event));
    // How long ago, worked out when the pointer reaches a time (a title set per row would go stale).
    list.addEventListener("pointerover", (event) => {
      const time = event.target.closest(".time");
      const message = time && this.byNode.get(time.parentElement);
      if (message) time.title = `${relative(messageMs(message))} (${time.textContent})`;
    });
    list.addEventListener("keydown", (event) => {
      if (event.key === "Enter") this.onClick(event); // space pauses the list (keys.js)
    });
    newButton.addEventListener("click", () => this.resume());
    pauseButton.addEventListener("click", () => (this.paused ? this.resume() : this.pause("user")));
  }

  get paused() {
    return this.reasons.size > 0;
  }

  // Why the list is not moving, in words; null when it is live.
  pauseText() {
    if (!this.live) return "a fixed time range is shown, so the list is not live";
    if (!this.paused) return null;
    const why = [...this.reasons].map((reason) => PAUSE_REASONS[reason]).join(" and ");
    const waiting = this.unseen ? `; ${this.unseen} new event${this.unseen === 1 ? "" : "s"} waiting` : "";
    return `paused because ${why}${waiting}`;
  }

  setLimit(limit) {
    this.limit = limit;
    this.trim();
  }

  setLive(live) {
    this.live = live;
    this.update();
  }

  clear() {
    this.deferred = [];
    this.drawRun += 1;
    this.slow = false;
    this.list.replaceChildren();
    this.byId.clear();
    this.pending = [];
    this.queued = [];
    this.unseen = 0;
    this.reasons.delete("older");
    this.reasons.delete("scrolled");
    this.update();
  }

  oldestId() {
    if (this.deferred.length) return this.deferred[0].id;
    for (const node of this.list.children) {
      const message = this.byNode.get(node);
      if (message) return message.id;
    }
    return null;
  }

  find(id) {
    return this.byId.get(id) || null;
  }

  row(message) {
    const item = document.createElement("li");
    item.classList.add(typeClass(message.event_type));
    if (message.full_event && message.full_event.success === false) item.classList.add("failed");
    item.dataset.id = String(message.id);
    item.tabIndex = 0;
    item.append(
      cell("span", "time", clock(message)),
      cell("span", "type", String(message.event_type)),
      cell("span", "msg", String(message.message ?? "")),
      cell("span", "inst", String(message.instance_id ?? "")),
    );
    this.byNode.set(item, message);
    this.byId.set(String(message.id), item);
    return item;
  }

  add(messages) {
    if (this.paused) {
      this.hold(messages);
      this.scheduleUpdate();
      return;
    }
    this.queued.push(...messages);
    if (this.queued.length > this.limit) this.queued.splice(0, this.queued.length - this.limit);
    this.scheduleUpdate();
  }

  // In an animation frame, at most every FLUSH_MS (a person cannot read faster) and never more
  // than a fifth of the main thread: each flush costs a layout of the rows it adds, so a slow
  // machine flushes less often (and draws fewer rows: see append).
  scheduleUpdate() {
    if (this.frame) return;
    const gap = Math.max(FLUSH_MS, this.flushCost * 4);
    const wait = Math.max(0, this.flushedAt + gap - performance.now());
    this.frame = setTimeout(() => requestAnimationFrame(() => this.flush()), wait);
  }

  // Events that came while the list is paused, offered back with "N new".
  hold(messages) {
    this.pending.push(...messages);
    this.unseen += messages.length;
    if (this.pending.length > this.limit) this.pending.splice(0, this.pending.length - this.limit);
  }

  flush() {
    const started = performance.now();
    this.frame = 0;
    if (this.paused && this.queued.length) {
      this.hold(this.queued); // queued before the pause: the reader holds the list as it is
      this.queued = [];
    }
    if (this.queued.length) {
      const messages = this.queued;
      this.queued = [];
      this.append(messages);
    }
    this.update();
    this.flushedAt = performance.now();
    this.flushCost = this.flushedAt - started;
    // Slow once a flush takes SLOW_FLUSH_MS, fast again only when one takes a quarter of that.
    this.slow = this.flushCost > (this.slow ? SLOW_FLUSH_MS / 4 : SLOW_FLUSH_MS);
  }

  append(messages) {
    this.drawRun += 1; // rows still being drawn above belong to the list this replaces
    const fresh = messages.slice(-this.limit);
    const inView = Math.ceil(this.list.clientHeight / MIN_ROW_PX) + 2;
    const fragment = document.createDocumentFragment();
    if (this.slow && fresh.length > inView) {
      // Events come faster than the page draws them: only the newest rows in view are drawn; the
      // older ones (up to `limit` in all) wait as messages until the reader stops the list.
      const drawn = this.list.children;
      const older = [...this.deferred];
      for (const node of drawn) if (this.byNode.has(node)) older.push(this.byNode.get(node));
      older.push(...fresh.slice(0, -inView));
      this.deferred = older.slice(-(this.limit - inView));
      this.replaceRows(fresh.slice(-inView));
    } else if (fresh.length >= this.limit) {
      // A whole new list (the first one, or after a burst): the newest rows now, the others a
      // chunk at a time above them, so a list of 1,000 is never one long task.
      this.deferred = fresh.slice(0, -CHUNK_ROWS);
      this.replaceRows(fresh.slice(-CHUNK_ROWS));
      if (this.deferred.length) setTimeout(() => this.drawDeferred(), 0);
    } else {
      for (const message of fresh) fragment.append(this.row(message));
      this.list.append(fragment);
      this.trim();
    }
    this.list.scrollTop = this.list.scrollHeight;
  }

  replaceRows(messages) {
    const fragment = document.createDocumentFragment();
    this.byId.clear();
    for (const message of messages) fragment.append(this.row(message));
    this.list.replaceChildren(fragment);
  }

  // The rows held back, drawn above the others a chunk at a time (each chunk its own task), or all
  // at once when older events are about to go above them.
  drawDeferred(all = false) {
    const run = ++this.drawRun;
    const step = () => {
      if (run !== this.drawRun || !this.deferred.length) return;
      const chunk = all ? this.deferred.splice(0) : this.deferred.splice(-CHUNK_ROWS);
      const fragment = document.createDocumentFragment();
      for (const message of chunk) fragment.append(this.row(message));
      const fromBottom = this.list.scrollHeight - this.list.scrollTop;
      this.list.prepend(fragment);
      this.list.scrollTop = this.list.scrollHeight - fromBottom;
      this.update();
      if (this.deferred.length) setTimeout(step, 0);
    };
    step();
  }

  prepend(messages) {
    this.drawDeferred(true);
    const fragment = document.createDocumentFragment();
    for (const message of messages) fragment.append(this.row(message));
    const before = this.list.scrollHeight;
    this.list.prepend(fragment);
    this.list.scrollTop += this.list.scrollHeight - before;
    if (this.live) this.reasons.add("older");
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
    if (this.reasons.has("older")) return;
    const over = this.deferred.length + this.list.children.length - this.limit;
    if (over > 0) this.deferred.splice(0, over);
    while (this.list.children.length > this.limit) {
      const first = this.list.firstElementChild;
      if (first.dataset.id) this.byId.delete(first.dataset.id);
      first.remove();
    }
  }

  pause(reason) {
    this.drawDeferred();
    if (!this.live || this.reasons.has(reason)) return;
    this.reasons.add(reason);
    this.update();
  }

  // Lifts one reason (the event was closed), or all of them (Resume, "N new").
  resume(reason = null) {
    if (reason) this.reasons.delete(reason);
    else this.reasons.clear();
    if (this.paused) {
      this.update();
      return;
    }
    const pending = this.pending;
    this.pending = [];
    this.unseen = 0;
    this.queued.push(...pending);
    this.flush();
    this.update();
  }

  onScroll() {
    const { scrollTop, scrollHeight, clientHeight } = this.list;
    const nearBottom = scrollHeight - scrollTop - clientHeight < NEAR_BOTTOM_PX;
    if (performance.now() - this.userScrollAt > USER_SCROLL_MS) {
      if (!nearBottom && !this.paused) {
        this.list.scrollTop = scrollHeight; // a live list stays at its newest rows
      }
      return;
    }
    if (nearBottom && this.reasons.has("scrolled") && !this.reasons.has("older")) {
      this.resume("scrolled");
    } else if (!nearBottom && !this.reasons.has("scrolled") && this.live) {
      this.pause("scrolled");
    }
  }

  onClick(event) {
    const item = event.target.closest("li");
    const message = item && this.byNode.get(item);
    if (!message) return;
    this.select(item);
    this.onSelect(message);
  }

  select(item) {
    for (const selected of this.list.querySelectorAll(".selected")) selected.classList.remove("selected");
    if (item) item.classList.add("selected");
  }

  // The row `step` rows below the selected one (above when negative; the newest when none is),
  // selected and scrolled into view: its message, or null at either end.
  move(step) {
    const current = this.list.querySelector("li.selected");
    let item = current;
    if (!current) item = this.list.lastElementChild;
    else {
      const sibling = step > 0 ? "nextElementSibling" : "previousElementSibling";
      do item = item[sibling]; while (item && !this.byNode.has(item));
    }
    while (item && !this.byNode.has(item)) item = item.previousElementSibling;
    if (!item) return null;
    this.select(item);
    this.reveal(item);
    item.focus({ preventScroll: true });
    return this.byNode.get(item);
  }

  // Scrolls the list (only the list) so the row is in view.
  reveal(item) {
    const box = item.getBoundingClientRect();
    const frame = this.list.getBoundingClientRect();
    if (box.top < frame.top || box.bottom > frame.top + this.list.clientHeight) {
      this.list.scrollTop += box.top - frame.top - this.list.clientHeight / 2;
    }
  }

  update() {
    const count = this.byId.size + this.deferred.length;
    const why = this.pauseText();
    setText(this.shown, `${count} event${count === 1 ? "" : "s"}${why ? ` · ${why}` : ""}`);
    this.newButton.hidden = this.unseen === 0;
    setText(this.newButton, `${this.unseen} new ↓`);
    this.pauseButton.hidden = !this.live;
    setText(this.pauseButton, this.paused ? "Resume" : "Pause");
    this.pauseButton.setAttribute("aria-pressed", String(this.paused));
    if (this.onPauseChange) this.onPauseChange();
  }
}
