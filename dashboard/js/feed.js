// The live feed: WebSocket first, SSE when WebSocket fails; reconnects and resumes from the last
// stream id (and offset, which makes gap counts exact) so nothing is lost or shown twice.
// It starts after a given id: the page has already counted and listed everything up to it.

import { feedUrl } from "./auth.js";
import { compareIds } from "./ids.js";
import { filterQuery } from "./state.js";

// After a reset the stream is new: everything in it comes after "0-0".
const STREAM_START = "0-0";
const MAX_DELAY_MS = 10000;
const WS_FAILURES_BEFORE_SSE = 2;

export class Feed {
  constructor({ filters, after, transport, onEvents, onGap, onState }) {
    this.filters = filters;
    this.after = after;
    this.useSse = transport === "sse";
    this.onEvents = onEvents;
    this.onGap = onGap;
    this.onState = onState;
    this.lastId = after;
    this.received = false;
    this.offset = null;
    this.source = null;
    this.timer = null;
    this.delay = 500;
    this.wsFailures = 0;
    this.stopped = false;
    this.attempts = 0;
  }

  start() {
    this.stopped = false;
    this.connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.closeSource();
  }

  url(path, batch) {
    const params = filterQuery(this.filters);
    if (batch) params.set("batch", "1");
    params.set("last_id", this.lastId);
    if (this.offset !== null) params.set("offset", String(this.offset));
    return `${path}?${params}`;
  }

  connect() {
    this.onState({ state: "connecting", transport: this.useSse ? "SSE" : "WebSocket" });
    if (this.useSse) this.connectSse();
    else this.connectWs();
  }

  async connectWs() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const attempt = ++this.attempts;
    const url = await feedUrl(this.url("/ws/routing_events", true));
    if (this.stopped || attempt !== this.attempts) return;  // stopped or restarted meanwhile
    const socket = new WebSocket(`${scheme}//${location.host}${url}`);
    let opened = false;
    this.source = socket;
    socket.onopen = () => { opened = true; this.wsFailures = 0; };
    socket.onmessage = (message) => {
      const data = JSON.parse(message.data);
      this.handle(Array.isArray(data) ? data : [data], "WebSocket");
    };
    socket.onclose = () => {
      if (this.source !== socket) return;
      if (!opened && ++this.wsFailures >= WS_FAILURES_BEFORE_SSE) this.useSse = true;
      this.retry();
    };
  }

  async connectSse() {
    const attempt = ++this.attempts;
    const url = await feedUrl(this.url("/sse/routing_events", false));
    if (this.stopped || attempt !== this.attempts) return;  // stopped or restarted meanwhile
    const source = new EventSource(url);
    this.source = source;
    for (const kind of ["routing_event", "gap", "skipped", "status", "connected", "caught_up"]) {
      source.addEventListener(kind, (message) => this.handle([JSON.parse(message.data)], "SSE"));
    }
    // EventSource would reconnect by itself, but without the offset; do it ourselves instead.
    source.onerror = () => { if (this.source === source) this.retry(); };
  }

  closeSource() {
    const source = this.source;
    this.source = null;
    if (source) source.close();
  }

  retry() {
    this.closeSource();
    if (this.stopped) return;
    const delay = this.delay * (0.8 + Math.random() * 0.4);
    this.delay = Math.min(this.delay * 2, MAX_DELAY_MS);
    this.onState({ state: "reconnecting", seconds: Math.round(delay / 100) / 10 });
    this.timer = setTimeout(() => this.connect(), delay);
  }

  handle(messages, transport) {
    const events = [];
    for (const message of messages) {
      if (message.type === "routing_event") {
        if (compareIds(message.id, this.lastId) <= 0) continue;
        this.lastId = message.id;
        this.offset = message.offset ?? null;
        this.received = true;
        events.push(message);
        continue;
      }
      if (events.length) this.onEvents(events.splice(0));
      if (message.type === "gap") {
        // A stream that did not exist yet when the page started is not a lost one.
        const notYetWritten = message.reason === "reset" && !this.received && message.after_id === this.after;
        if (message.reason === "reset") { this.lastId = STREAM_START; this.offset = null; }
        if (message.reason !== "slow_client" && !notYetWritten) this.onGap(message);
      } else if (message.type === "skipped") {
        this.onGap(message);  // an entry no reader can show: said in place, like a gap
      } else if (message.type === "status") {
        this.onState(message.redis === "up"
          ? { state: "live", transport }
          : { state: "down", detail: message.detail });
      } else if (message.type === "caught_up") {
        this.delay = 500;
        this.onState({ state: "live", transport });
      } else if (message.type === "error") {
        this.onState({ state: "down", detail: message.message });
      }
    }
    if (events.length) this.onEvents(events);
  }
}
