// The live stream: one WebSocket per page, authenticated by the session cookie (no ticket
// in the page), re-opened with back-off after a drop, its subscriptions replayed.
//
//   const off = stream.ticks(["NSE:INFY"], (tick) => ...);   // "quote" mode by default
//   stream.private("orders", accountId, (event) => ...);       // order_update frames
//   stream.halts((frame) => ...);                              // trading halts, for everyone
//
// Private channels resume from the last seq seen, so a reconnect misses no event.

const PRIVATE_TYPES = { order_update: "orders", fill: "fills", position: "positions", account: "account" };

class Stream {
  constructor() {
    this.socket = null;
    this.tickHandlers = new Map(); // instrument -> Set(handler)
    this.tickModes = new Map(); // instrument -> mode
    this.privateHandlers = new Map(); // "channel:account" -> {handlers, seq}
    this.statusHandlers = new Set();
    this.haltHandlers = new Set(); // the status channel: trading_status and trading_halt frames
    this.nextId = 1;
    this.delay = 500;
    this.status = "idle"; // a page that never subscribes never connects
  }

  onStatus(handler) {
    this.statusHandlers.add(handler);
    handler(this.status);
  }

  setStatus(status) {
    this.status = status;
    for (const handler of this.statusHandlers) handler(status);
  }

  connect() {
    if (this.socket) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}/api/v1/stream`);
    this.socket = socket;
    this.setStatus("connecting");
    socket.addEventListener("message", (event) => this.receive(JSON.parse(event.data)));
    socket.addEventListener("close", (event) => {
      this.socket = null;
      this.authenticated = false;
      this.setStatus("offline");
      if (event.code === 4001 || event.code === 4003) return; // signed out or refused
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 10000);
    });
  }

  send(frame) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN && this.authenticated) {
      this.socket.send(JSON.stringify({ id: `c${this.nextId++}`, ...frame }));
    }
  }

  receive(frame) {
    if (frame.type === "ack" && frame.op === "auth") {
      this.authenticated = true;
      this.delay = 500;
      this.setStatus("live");
      this.replay();
      return;
    }
    if (frame.type === "tick") {
      for (const handler of this.tickHandlers.get(frame.instrument) || []) handler(frame);
      return;
    }
    const channel = PRIVATE_TYPES[frame.type];
    if (channel) {
      const entry = this.privateHandlers.get(`${channel}:${frame.account_id}`);
      if (!entry) return;
      if (frame.seq !== undefined) entry.seq = Math.max(entry.seq ?? 0, frame.seq);
      for (const handler of entry.handlers) handler(frame);
      return;
    }
    if (frame.type === "trading_status" || frame.type === "trading_halt") {
      for (const handler of this.haltHandlers) handler(frame);
      return;
    }
    if (frame.type === "resync_required") {
      const entry = this.privateHandlers.get(`${frame.channel}:${frame.account_id}`);
      if (entry) {
        entry.seq = frame.seq;
        for (const handler of entry.handlers) handler(frame);
      }
    }
  }

  replay() {
    const byMode = new Map();
    for (const [instrument, mode] of this.tickModes) {
      if (!byMode.has(mode)) byMode.set(mode, []);
      byMode.get(mode).push(instrument);
    }
    for (const [mode, instruments] of byMode) this.send({ op: "subscribe", channel: "ticks", mode, instruments });
    if (this.haltHandlers.size) this.send({ op: "subscribe", channel: "status" });
    for (const [key, entry] of this.privateHandlers) {
      const [channel, account_id] = key.split(":");
      const frame = { op: "subscribe", channel, account_id };
      if (entry.seq !== undefined) frame.from_seq = entry.seq + 1;
      this.send(frame);
    }
  }

  ticks(instruments, handler, mode = "quote") {
    const fresh = [];
    for (const instrument of instruments) {
      if (!this.tickHandlers.has(instrument)) {
        this.tickHandlers.set(instrument, new Set());
        fresh.push(instrument);
      }
      this.tickHandlers.get(instrument).add(handler);
      this.tickModes.set(instrument, mode);
    }
    this.connect();
    if (fresh.length) this.send({ op: "subscribe", channel: "ticks", mode, instruments: fresh });
    return () => {
      const gone = [];
      for (const instrument of instruments) {
        const handlers = this.tickHandlers.get(instrument);
        if (!handlers) continue;
        handlers.delete(handler);
        if (!handlers.size) {
          this.tickHandlers.delete(instrument);
          this.tickModes.delete(instrument);
          gone.push(instrument);
        }
      }
      if (gone.length) this.send({ op: "unsubscribe", channel: "ticks", instruments: gone });
    };
  }

  // Trading halts (the kill switch): a trading_status snapshot on every (re)subscription,
  // then a trading_halt frame per halt or resumption.
  halts(handler) {
    this.haltHandlers.add(handler);
    this.connect();
    if (this.haltHandlers.size === 1) this.send({ op: "subscribe", channel: "status" });
    return () => {
      this.haltHandlers.delete(handler);
      if (!this.haltHandlers.size) this.send({ op: "unsubscribe", channel: "status" });
    };
  }

  private(channel, accountId, handler) {
    const key = `${channel}:${accountId}`;
    let entry = this.privateHandlers.get(key);
    if (!entry) {
      entry = { handlers: new Set(), seq: undefined };
      this.privateHandlers.set(key, entry);
      this.connect();
      this.send({ op: "subscribe", channel, account_id: accountId });
    }
    entry.handlers.add(handler);
    return () => {
      entry.handlers.delete(handler);
      if (!entry.handlers.size) {
        this.privateHandlers.delete(key);
        this.send({ op: "unsubscribe", channel, account_id: accountId });
      }
    };
  }
}

export const stream = new Stream();
