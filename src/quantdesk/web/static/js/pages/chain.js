// Option chain: strikes around ATM with OI, change in OI, IV and Greeks per strike, LTP /
// bid / ask, max pain, PCR and the IV smile, live.
//
// Live, in two parts, because the numbers on the page come from two places:
// * the quote fields (LTP, bid, ask, volume, OI and its change) arrive on the stream:
//   `stream.ticks` for the visible option keys in "full" mode (full carries OI), painted as
//   they come, exactly as quoted;
// * everything derived (IV, Greeks, ATM, max pain, PCR, the smile, the expected move) is the
//   server's analytics of the chain, never recomputed here, so it always equals the API's:
//   the chain is fetched again when ticks have arrived, at most once per REFRESH_MS and not
//   while the tab is hidden.  A closed market sends no ticks, so the page sends no request.

import { api } from "../api.js";
import { start } from "../shell.js";
import { $, fail, h, num, sign, time } from "../ui.js";

const REFRESH_MS = 3000;
const QUOTE_BATCH = 190; // GET /market/quotes takes at most 200 keys
const BASKET_KEY = "qd-strategy-basket";
const SVG_NS = "http://www.w3.org/2000/svg";

// Per side, from the outside in (calls are drawn left to right, puts mirrored).
const FIELDS = [
  { field: "oi", label: "OI", title: "Open interest (contracts)" },
  { field: "oi_change", label: "ΔOI", title: "Change in open interest since the previous session" },
  { field: "volume", label: "Volume", title: "The session's volume", optional: "volume" },
  { field: "iv", label: "IV %", title: "Implied volatility at the mark" },
  { field: "delta", label: "Δ", title: "Delta", greek: true },
  { field: "gamma", label: "Γ", title: "Gamma", greek: true },
  { field: "theta_per_day", label: "Θ/day", title: "Theta per calendar day", greek: true },
  { field: "vega_per_point", label: "Vega", title: "Vega per volatility point", greek: true },
  { field: "last", label: "LTP", title: "Last traded price" },
  { field: "bid", label: "Bid", title: "Best bid" },
  { field: "ask", label: "Ask", title: "Best ask" },
];
const QUOTE_FIELDS = new Set(["last", "bid", "ask", "volume", "oi", "oi_change"]);

// Analytics are JSON numbers: shown at a fixed precision, the exact value kept in data-value.
const FORMAT = {
  iv: (x) => (x * 100).toFixed(2),
  delta: (x) => x.toFixed(4),
  gamma: (x) => x.toFixed(6),
  theta_per_day: (x) => x.toFixed(2),
  vega_per_point: (x) => x.toFixed(2),
};

const state = {
  underlying: "",
  expiry: "",
  chain: null,
  visible: [], // indexes into chain.strikes
  rows: new Map(), // strike -> <tr>
  cells: new Map(), // option key -> {field: <td>}
  quotes: new Map(), // option key -> the last quote / tick
  pending: new Map(), // option key -> ticks not painted yet (merged), painted per frame
  frame: 0, // the requestAnimationFrame that paints them, if one is asked for
  off: null, // unsubscribes the ticks
  dirty: false,
  fetching: false,
  lastFetch: 0,
  generation: 0, // each fetch's answer is shown only if nothing was asked since
};
let streamRef;

// --- exact decimal strings (no float for quantities) -----------------------------------
function places(text) {
  const dot = text.indexOf(".");
  return dot < 0 ? 0 : text.length - dot - 1;
}
function scaled(text, p) {
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = (negative ? text.slice(1) : text).split(".");
  const big = BigInt(whole + fraction.padEnd(p, "0"));
  return negative ? -big : big;
}
function unscaled(big, p) {
  const negative = big < 0n;
  let digits = (negative ? -big : big).toString().padStart(p + 1, "0");
  if (p) digits = `${digits.slice(0, -p)}.${digits.slice(-p)}`;
  return (negative ? "-" : "") + digits;
}
function subtract(a, b) {
  const p = Math.max(places(a), places(b));
  return unscaled(scaled(a, p) - scaled(b, p), p);
}

// --- the underlying and its expiries -----------------------------------------------------
function root(text) {
  // "SIM:SIMIDX" or "simidx" -> "SIMIDX": the chain is keyed by the derivatives' root.
  const upper = text.trim().toUpperCase();
  return upper.includes(":") ? upper.slice(upper.indexOf(":") + 1) : upper;
}

async function loadExpiries(underlying) {
  const { expiries } = await api(`/api/v1/instruments/${encodeURIComponent(underlying)}/expiries`);
  return expiries;
}

function fillExpiries(expiries, floor, chosen) {
  const select = $("#chain-expiry");
  // Expiries before `floor` have settled: the chain would refuse them.
  select.replaceChildren(...expiries.filter((e) => e >= floor).map((e) => h("option", { value: e }, e)));
  select.value = chosen;
}

// --- the table -------------------------------------------------------------------------
function columns() {
  const greeks = $("#chain-greeks").checked;
  const volume = $("#chain-volume").checked;
  const shown = FIELDS.filter((f) => (greeks || !f.greek) && (volume || f.optional !== "volume"));
  const head = $("#chain-columns");
  const th = (f, side) => h("th", { scope: "col", class: `num ${f.greek ? "greek" : ""}`, title: f.title, id: `col-${side}-${f.field}` }, f.label);
  head.replaceChildren(
    h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Add a call leg")),
    ...shown.map((f) => th(f, "call")),
    h("th", { scope: "col", class: "num strike-col" }, "Strike"),
    ...[...shown].reverse().map((f) => th(f, "put")),
    h("th", { scope: "col" }, h("span", { class: "sr-only" }, "Add a put leg")),
  );
  $("#calls-head").colSpan = shown.length + 1;
  $("#puts-head").colSpan = shown.length + 1;
  return shown;
}

function visibleIndexes(chain) {
  const width = $("#chain-width").value;
  const all = chain.strikes.map((_, i) => i);
  if (width === "all" || chain.atm_strike === null) return all;
  const n = Number(width);
  const atm = chain.strikes.findIndex((s) => Number(s) === Number(chain.atm_strike));
  return all.slice(Math.max(0, atm - n), atm + n + 1);
}

function legButtons(key, side, strike) {
  if (!key) return h("td", { class: "legs" });
  const kind = side === "call" ? "call" : "put";
  const add = (action) => h("button", {
    type: "button",
    class: `leg-button ${action}`,
    "aria-label": `${action === "buy" ? "Buy" : "Sell"} the ${num(strike)} ${kind} (add to the strategy basket)`,
    title: `${action === "buy" ? "Buy" : "Sell"} ${key}`,
    dataset: { key, action },
    onclick: () => addToBasket(key, action),
  }, action === "buy" ? "B" : "S");
  return h("td", { class: "legs" }, add("buy"), add("sell"));
}

function renderTable() {
  const chain = state.chain;
  const shown = columns();
  state.rows.clear();
  state.cells.clear();
  const body = $("#chain-table tbody");
  body.replaceChildren();
  for (const i of state.visible) {
    const strike = chain.strikes[i];
    const tr = h("tr", { dataset: { strike } });
    const sideCells = (sideName) => {
      const side = chain[sideName === "call" ? "calls" : "puts"];
      const key = side.key[i];
      const out = {};
      const tds = shown.map((f) => {
        const td = h("td", { class: `num ${f.greek ? "greek" : ""}`, dataset: { side: sideName, field: f.field } }, "—");
        out[f.field] = td;
        return td;
      });
      if (key) state.cells.set(key, out);
      return { tds, key };
    };
    const calls = sideCells("call");
    const puts = sideCells("put");
    tr.append(
      legButtons(calls.key, "call", strike),
      ...calls.tds,
      h("th", { scope: "row", class: "num strike-col" }, num(strike)),
      ...puts.tds.reverse(),
      legButtons(puts.key, "put", strike),
    );
    if (calls.key) tr.dataset.call = calls.key;
    if (puts.key) tr.dataset.put = puts.key;
    body.append(tr);
    state.rows.set(strike, tr);
  }
  if (!state.visible.length) body.append(h("tr", {}, h("td", { colspan: 2 * shown.length + 3, class: "empty" }, "No strikes listed.")));
}

function setCell(td, text, value) {
  if (!td) return;
  if (td.textContent !== text) {
    td.textContent = text;
    td.classList.remove("flash");
    void td.offsetWidth; // restart the highlight
    td.classList.add("flash");
  }
  if (value === undefined || value === null) delete td.dataset.value;
  else td.dataset.value = String(value);
}

// The analytics of the chain into the rows: IV, Greeks, ATM and ITM shading.
function paintAnalytics() {
  const chain = state.chain;
  const spot = Number(chain.spot);
  for (const i of state.visible) {
    const strike = chain.strikes[i];
    const tr = state.rows.get(strike);
    if (!tr) continue;
    const atm = chain.atm_strike !== null && Number(strike) === Number(chain.atm_strike);
    tr.classList.toggle("atm", atm);
    if (atm) tr.setAttribute("aria-current", "true");
    else tr.removeAttribute("aria-current");
    for (const [sideName, side] of [["call", chain.calls], ["put", chain.puts]]) {
      const key = side.key[i];
      const cells = key ? state.cells.get(key) : null;
      const itm = sideName === "call" ? Number(strike) < spot : Number(strike) > spot;
      for (const td of tr.querySelectorAll(`td[data-side=${sideName}]`)) td.classList.toggle("itm", itm);
      if (!cells) continue;
      for (const [field, format] of Object.entries(FORMAT)) {
        const value = side[field][i];
        setCell(cells[field], value === null ? "—" : format(value), value);
        if (field === "iv" && cells.iv) cells.iv.title = value === null ? `no IV: ${side.iv_reason[i]}` : "";
      }
      if (cells.oi_change && side.buildup) cells.oi_change.title = side.buildup[i] || "";
    }
  }
}

// A quote (REST snapshot or stream tick) into its row: the quote fields, as quoted.
function paintQuote(key, quote) {
  const cells = state.cells.get(key);
  if (!cells) return;
  const merged = { ...(state.quotes.get(key) || {}), ...quote };
  state.quotes.set(key, merged);
  for (const field of ["last", "bid", "ask", "volume", "oi"]) {
    if (merged[field] !== undefined) setCell(cells[field], num(merged[field]), merged[field]);
  }
  if (merged.oi != null && merged.prev_oi != null && cells.oi_change) {
    const change = subtract(String(merged.oi), String(merged.prev_oi));
    setCell(cells.oi_change, num(change), change);
    cells.oi_change.classList.toggle("up", sign(change) === "up");
    cells.oi_change.classList.toggle("down", sign(change) === "down");
  }
}

// The chain's own quote fields, for sides the quote snapshot does not cover.
function paintChainQuotes() {
  const chain = state.chain;
  for (const i of state.visible) {
    for (const side of [chain.calls, chain.puts]) {
      const key = side.key[i];
      if (!key) continue;
      const quote = { last: side.last[i], volume: side.volume[i], oi: side.oi[i] };
      for (const k of Object.keys(quote)) if (quote[k] === null) delete quote[k];
      paintQuote(key, quote);
      const cells = state.cells.get(key);
      if (cells?.oi_change && side.oi_change[i] !== null && !state.quotes.get(key)?.prev_oi) {
        setCell(cells.oi_change, num(side.oi_change[i]), side.oi_change[i]);
        cells.oi_change.classList.toggle("up", sign(side.oi_change[i]) === "up");
        cells.oi_change.classList.toggle("down", sign(side.oi_change[i]) === "down");
      }
    }
  }
}

function visibleKeys() {
  const keys = [];
  for (const i of state.visible) {
    for (const side of [state.chain.calls, state.chain.puts]) if (side.key[i]) keys.push(side.key[i]);
  }
  return keys;
}

async function quoteSnapshot(keys) {
  for (let i = 0; i < keys.length; i += QUOTE_BATCH) {
    const { quotes } = await api("/api/v1/market/quotes", { query: { keys: keys.slice(i, i + QUOTE_BATCH).join(",") } });
    for (const quote of quotes) paintQuote(quote.key, quote);
  }
}

// --- the facts and the smile -------------------------------------------------------------
function fact(id, text, value) {
  const dd = $(`#${id}`);
  dd.textContent = text;
  if (value === undefined || value === null) delete dd.dataset.value;
  else dd.dataset.value = String(value);
}

const pct = (x) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(2)}%`);
const ratio = (x) => (x === null || x === undefined ? "—" : x.toFixed(2));

function paintFacts() {
  const c = state.chain;
  $("#chain-title").textContent = `${c.underlying} · ${c.expiry}`;
  fact("fact-spot", `${num(c.spot)} (${c.spot_key})`, c.spot);
  fact("fact-forward", num(c.forward), c.forward);
  fact("fact-atm", num(c.atm_strike), c.atm_strike);
  fact("fact-atm-iv", pct(c.atm_iv), c.atm_iv);
  fact("fact-max-pain", num(c.max_pain), c.max_pain);
  fact("fact-pcr-oi", ratio(c.pcr_oi), c.pcr_oi);
  fact("fact-pcr-volume", ratio(c.pcr_volume), c.pcr_volume);
  const move = c.expected_move;
  fact("fact-expected-move", move && move.straddle !== null
    ? `±${num(move.straddle)} (${move.pct.toFixed(2)}%): ${num(move.lower)} – ${num(move.upper)}` : "—", move?.straddle);
  fact("fact-rr", c.skew_25d.risk_reversal === null ? "—" : `${(c.skew_25d.risk_reversal * 100).toFixed(2)} vol pts`, c.skew_25d.risk_reversal);
  fact("fact-lot", num(c.lot_size), c.lot_size);
  fact("fact-days", (c.t_years * 365).toFixed(2), c.t_years);
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function niceTicks(lo, hi, count = 5) {
  const raw = (hi - lo) / Math.max(count - 1, 1) || 1;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(t);
  return out;
}

function paintSmile() {
  const c = state.chain;
  const box = $("#smile");
  const idx = state.visible;
  const points = (values) => idx.map((i) => [Number(c.strikes[i]), values[i]]).filter(([, v]) => v !== null);
  const smile = points(c.smile);
  const calls = points(c.calls.iv);
  const puts = points(c.puts.iv);
  const all = [...smile, ...calls, ...puts];
  if (all.length < 2) {
    box.replaceChildren(h("p", { class: "hint" }, "Not enough quoted strikes for a smile."));
    return;
  }
  const W = 640, H = 300, L = 52, R = 16, T = 14, B = 36;
  const xs = all.map(([x]) => x), ys = all.map(([, y]) => y * 100);
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  const pad = (y1 - y0) * 0.1 || 1;
  y0 -= pad; y1 += pad;
  const fx = (x) => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - R);
  const fy = (y) => H - B - ((y - y0) / (y1 - y0 || 1)) * (H - T - B);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "smile-chart", role: "img",
    "aria-label": `IV smile of ${c.underlying} ${c.expiry}: ATM IV ${pct(c.atm_iv)}` });
  chart.append(svg("title", {}, `IV smile, ${c.underlying} ${c.expiry}`));
  for (const t of niceTicks(y0, y1, 6)) {
    chart.append(svg("line", { x1: L, x2: W - R, y1: fy(t), y2: fy(t), class: "grid-line" }));
    chart.append(svg("text", { x: L - 6, y: fy(t) + 4, "text-anchor": "end", class: "axis" }, `${t.toFixed(1)}%`));
  }
  for (const t of niceTicks(x0, x1, 6)) {
    chart.append(svg("text", { x: fx(t), y: H - B + 18, "text-anchor": "middle", class: "axis" }, t.toLocaleString()));
  }
  const forward = Number(c.forward ?? c.spot);
  if (forward >= x0 && forward <= x1) {
    chart.append(svg("line", { x1: fx(forward), x2: fx(forward), y1: T, y2: H - B, class: "spot-line" }));
    chart.append(svg("text", { x: fx(forward) + 4, y: T + 10, class: "axis" }, "forward"));
  }
  const line = (pts, cls) => svg("polyline", { points: pts.map(([x, y]) => `${fx(x).toFixed(1)},${fy(y * 100).toFixed(1)}`).join(" "), class: cls });
  chart.append(line(smile, "smile-line"));
  const dots = (pts, cls, label) => {
    for (const [x, y] of pts) {
      chart.append(svg("circle", { cx: fx(x), cy: fy(y * 100), r: 3, class: `${cls} point` }, svg("title", {}, `${label} ${x.toLocaleString()}: ${(y * 100).toFixed(2)}%`)));
    }
  };
  dots(calls, "call-dot", "call");
  dots(puts, "put-dot", "put");
  const legend = svg("g", { class: "legend", transform: `translate(${W - R - 190},${T + 4})` },
    svg("line", { x1: 0, x2: 18, y1: 0, y2: 0, class: "smile-line" }), svg("text", { x: 22, y: 4, class: "axis" }, "smile"),
    svg("circle", { cx: 75, cy: 0, r: 3, class: "call-dot" }), svg("text", { x: 82, y: 4, class: "axis" }, "call IV"),
    svg("circle", { cx: 135, cy: 0, r: 3, class: "put-dot" }), svg("text", { x: 142, y: 4, class: "axis" }, "put IV"));
  chart.append(legend);
  box.replaceChildren(chart);
}

// --- loading and live --------------------------------------------------------------------
function subscribe() {
  state.off?.();
  state.off = null;
  if (!$("#chain-live").checked || !state.chain) return;
  const keys = visibleKeys();
  const spotKey = state.chain.spot_key;
  state.off = streamRef.ticks([...keys, spotKey], (tick) => {
    // Ticks are merged per instrument and painted once per frame: a busy tab (dozens of
    // strikes ticking several times a second) never queues more DOM work than one frame.
    state.pending.set(tick.instrument, { ...(state.pending.get(tick.instrument) || {}), ...tick });
    if (!tick.snapshot) state.dirty = true;
    if (!state.frame) state.frame = requestAnimationFrame(paintPending);
  }, "full");
}

function paintPending() {
  state.frame = 0;
  const spotKey = state.chain?.spot_key;
  for (const [key, tick] of state.pending) {
    if (key === spotKey) {
      $("#fact-spot").textContent = `${num(tick.last)} (${spotKey})`;
    } else {
      paintQuote(key, tick);
    }
  }
  state.pending.clear();
}

function stamp(fetchedAt) {
  const p = $("#chain-updated");
  p.textContent = `Analytics as of ${time(fetchedAt.toISOString())}${$("#chain-live").checked ? " · live" : " · paused"}`;
  p.dataset.updated = String(fetchedAt.getTime());
}

async function fetchChain() {
  const chain = await api(`/api/v1/analytics/chain/${encodeURIComponent(state.underlying)}`, {
    query: { expiry: state.expiry || undefined },
  });
  state.lastFetch = Date.now();
  return chain;
}

// A whole load: the table rebuilt for the strikes around ATM, quotes, subscriptions.
async function load() {
  const generation = ++state.generation;
  state.fetching = true;
  try {
    const chain = await fetchChain();
    if (generation !== state.generation) return; // a later load or pause supersedes this one
    state.chain = chain;
    state.expiry = chain.expiry;
    state.visible = visibleIndexes(chain);
    state.quotes.clear();
    state.pending.clear();
    renderTable();
    paintChainQuotes();
    paintAnalytics();
    paintFacts();
    paintSmile();
    stamp(new Date());
    await quoteSnapshot(visibleKeys());
    subscribe();
    const params = new URLSearchParams({ underlying: state.underlying, expiry: chain.expiry });
    history.replaceState(null, "", `?${params}`);
  } finally {
    state.fetching = false;
  }
}

// A live refresh: the analytics again; the rows are rebuilt only if the ATM window moved.
async function refreshAnalytics() {
  const generation = ++state.generation;
  state.fetching = true;
  state.dirty = false;
  try {
    const chain = await fetchChain();
    if (generation !== state.generation) return; // paused, or a whole load since
    const visible = visibleIndexes(chain);
    const moved = chain.expiry !== state.chain.expiry || chain.strikes.length !== state.chain.strikes.length
      || visible.join() !== state.visible.join();
    state.chain = chain;
    if (moved) {
      state.visible = visible;
      renderTable();
      paintChainQuotes();
      for (const [key, quote] of state.quotes) paintQuote(key, quote);
      subscribe();
    }
    paintAnalytics();
    paintFacts();
    paintSmile();
    stamp(new Date());
  } catch (error) {
    fail(error);
  } finally {
    state.fetching = false;
  }
}

function liveLoop() {
  setInterval(() => {
    if (!$("#chain-live").checked || !state.dirty || state.fetching || document.hidden) return;
    if (Date.now() - state.lastFetch < REFRESH_MS) return;
    refreshAnalytics();
  }, 500);
}

async function choose(underlying, expiry) {
  state.underlying = root(underlying);
  $("#chain-underlying").value = state.underlying;
  const expiries = await loadExpiries(state.underlying);
  if (!expiries.length) throw new Error(`${state.underlying} has no listed options`);
  // Without an expiry the chain answers the nearest one not yet settled: the floor.
  state.expiry = expiry && expiries.includes(expiry) ? expiry : "";
  await load();
  const floor = expiry ? new Date().toISOString().slice(0, 10) : state.chain.expiry;
  fillExpiries(expiries, floor < state.chain.expiry ? floor : state.chain.expiry, state.chain.expiry);
}

// --- the basket: legs for the strategy builder -------------------------------------------
function basket() {
  try {
    const legs = JSON.parse(sessionStorage.getItem(BASKET_KEY));
    return Array.isArray(legs) ? legs : [];
  } catch {
    return [];
  }
}

function saveBasket(legs) {
  sessionStorage.setItem(BASKET_KEY, JSON.stringify(legs));
  paintBasket();
}

function addToBasket(instrument, side) {
  const legs = basket();
  const same = legs.find((l) => l.instrument === instrument && l.side === side);
  if (same) same.lots += 1;
  else legs.push({ instrument, side, lots: 1 });
  saveBasket(legs);
}

function strategyLink(legs) {
  const spec = legs.map((l) => `${l.side}:${l.lots}:${l.instrument}`).join(",");
  return `/strategy?legs=${encodeURIComponent(spec)}`;
}

function paintBasket() {
  const legs = basket();
  const body = $("#basket tbody");
  body.replaceChildren();
  if (!legs.length) body.append(h("tr", {}, h("td", { colspan: 4, class: "empty" }, "Buy (B) or sell (S) options in the chain to add legs.")));
  legs.forEach((leg, index) => {
    body.append(h("tr", { dataset: { instrument: leg.instrument } },
      h("td", { class: leg.side === "buy" ? "up" : "down" }, leg.side),
      h("td", { class: "num" }, String(leg.lots)),
      h("th", { scope: "row" }, leg.instrument),
      h("td", {}, h("button", { type: "button", class: "link", "aria-label": `Remove ${leg.side} ${leg.instrument}`,
        onclick: () => saveBasket(basket().filter((_, i) => i !== index)) }, "Remove"))));
  });
  const link = $("#basket-open");
  link.href = legs.length ? strategyLink(legs) : "/strategy";
  link.classList.toggle("disabled", !legs.length);
  link.setAttribute("aria-disabled", legs.length ? "false" : "true");
}

start(async ({ stream }) => {
  streamRef = stream;
  const params = new URLSearchParams(location.search);
  paintBasket();
  $("#basket-clear").addEventListener("click", () => saveBasket([]));

  const form = $("#chain-form");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const wanted = root($("#chain-underlying").value);
    try {
      if (wanted !== state.underlying) await choose(wanted);
      else {
        state.expiry = $("#chain-expiry").value;
        await load();
      }
    } catch (error) {
      fail(error, form);
    }
  });
  $("#chain-expiry").addEventListener("change", () => form.requestSubmit());
  $("#chain-width").addEventListener("change", () => form.requestSubmit());
  const redraw = () => {
    if (!state.chain) return;
    renderTable();
    paintChainQuotes();
    for (const [key, quote] of state.quotes) paintQuote(key, quote);
    paintAnalytics();
  };
  $("#chain-greeks").addEventListener("change", redraw);
  $("#chain-volume").addEventListener("change", redraw);
  $("#chain-live").addEventListener("change", () => {
    state.generation += 1; // a refresh in flight is not shown after a pause
    subscribe();
    if (state.chain) stamp(new Date(state.lastFetch));
  });
  $("#chain-refresh").addEventListener("click", async (event) => {
    event.currentTarget.disabled = true;
    try {
      state.expiry = $("#chain-expiry").value || state.expiry;
      await load();
    } catch (error) {
      fail(error, form);
    } finally {
      $("#chain-refresh").disabled = false;
    }
  });

  await choose(params.get("underlying") || "SIMIDX", params.get("expiry"));
  liveLoop();
});
