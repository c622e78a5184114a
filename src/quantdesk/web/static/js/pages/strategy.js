// Strategy builder: legs from a template (expanded by the server) or from the option chain,
// edited here, analysed by POST /analytics/strategies/analyze (payoff at expiry and today,
// breakevens, max profit/loss, POP, net Greeks) and placed as one multi-leg paper order.
//
// A template is expanded by the API itself (its answer's `legs` say which options at which
// strikes, long or short), then each leg is matched to the listed option of the chain and
// priced there: entry at the option's mark, IV at its own implied volatility.  Every
// analysis is of those legs by instrument key, so what is analysed is what is ordered.

import { api } from "../api.js";
import { start } from "../shell.js";
import { $, clearError, fail, h, money, num, notify } from "../ui.js";

const SVG_NS = "http://www.w3.org/2000/svg";

// The template names the API knows (strategies/schemas.py TEMPLATE_NAMES) and their strike
// parameters (the builders' signatures), with default strikes in steps from the ATM strike.
const TEMPLATES = {
  iron_condor: { label: "Iron condor (short)", strikes: { long_put: -4, short_put: -2, short_call: 2, long_call: 4 } },
  iron_butterfly: { label: "Iron butterfly (short)", strikes: { strike: 0 }, width: 2 },
  long_straddle: { label: "Long straddle", strikes: { strike: 0 } },
  short_straddle: { label: "Short straddle", strikes: { strike: 0 } },
  long_strangle: { label: "Long strangle", strikes: { put_strike: -2, call_strike: 2 } },
  short_strangle: { label: "Short strangle", strikes: { put_strike: -2, call_strike: 2 } },
  bull_call_spread: { label: "Bull call spread", strikes: { lower: 0, upper: 2 } },
  bear_call_spread: { label: "Bear call spread", strikes: { lower: 0, upper: 2 } },
  bull_put_spread: { label: "Bull put spread", strikes: { lower: -2, upper: 0 } },
  bear_put_spread: { label: "Bear put spread", strikes: { lower: -2, upper: 0 } },
  call_butterfly: { label: "Call butterfly", strikes: { lower: -2, middle: 0, upper: 2 } },
  put_butterfly: { label: "Put butterfly", strikes: { lower: -2, middle: 0, upper: 2 } },
  call_calendar: { label: "Call calendar", strikes: { strike: 0 }, calendar: true },
  put_calendar: { label: "Put calendar", strikes: { strike: 0 }, calendar: true },
  covered_call: { label: "Covered call", strikes: { call_strike: 2 } },
  protective_put: { label: "Protective put", strikes: { put_strike: -2 } },
  collar: { label: "Collar", strikes: { put_strike: -2, call_strike: 2 } },
};
const STRIKE_LABELS = {
  long_put: "Long put", short_put: "Short put", short_call: "Short call", long_call: "Long call",
  strike: "Strike", width: "Wing width", put_strike: "Put strike", call_strike: "Call strike",
  lower: "Lower", middle: "Middle", upper: "Upper",
};

const state = {
  underlying: "",
  expiries: [],
  expiry: "",
  chains: new Map(), // expiry -> the chain analytics answer
  currency: "INR",
  spotKey: "",
  legs: [],
  nextId: 1,
  analysis: null,
  analysisSeq: 0,
  accounts: [],
  instruments: new Map(), // key -> instrument (tick sizes)
  limitEdited: false,
  watching: null,
  spotOff: null,
};
let streamRef;

// --- exact decimal strings ---------------------------------------------------------------
const DECIMAL = /^-?\d+(\.\d+)?$/;
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
const gcd = (a, b) => (b ? gcd(b, a % b) : a);
const sameNumber = (a, b) => a !== null && b !== null && Number(a) === Number(b);

// --- chains ------------------------------------------------------------------------------
function root(text) {
  const upper = text.trim().toUpperCase();
  return upper.includes(":") ? upper.slice(upper.indexOf(":") + 1) : upper;
}

async function chainFor(expiry, { fresh = false } = {}) {
  if (!fresh && state.chains.has(expiry)) return state.chains.get(expiry);
  const chain = await api(`/api/v1/analytics/chain/${encodeURIComponent(state.underlying)}`, { query: { expiry } });
  state.chains.set(chain.expiry, chain);
  return chain;
}

async function instrument(key) {
  if (!state.instruments.has(key)) state.instruments.set(key, await api(`/api/v1/instruments/${encodeURIComponent(key)}`));
  return state.instruments.get(key);
}

function stepOf(chain) {
  const s = chain.strikes.map(Number);
  const atm = s.findIndex((x) => x === Number(chain.atm_strike));
  if (s.length < 2) return 1;
  return atm > 0 ? s[atm] - s[atm - 1] : s[1] - s[0];
}

// The chain's option at (kind, strike): its key, mark and IV.
function listed(chain, kind, strike) {
  const i = chain.strikes.findIndex((s) => sameNumber(s, strike));
  if (i < 0) return null;
  const side = kind === "call" ? chain.calls : chain.puts;
  if (!side.key[i]) return null;
  return { key: side.key[i], mark: side.mark[i], iv: side.iv[i], strike: chain.strikes[i] };
}

async function chooseUnderlying(underlying, expiry) {
  state.underlying = root(underlying);
  $("#st-underlying").value = state.underlying;
  state.chains.clear();
  const { expiries } = await api(`/api/v1/instruments/${encodeURIComponent(state.underlying)}/expiries`);
  if (!expiries.length) throw new Error(`${state.underlying} has no listed options`);
  // Without an expiry the chain answers the nearest one not yet settled: earlier ones are gone.
  const nearest = await chainFor(undefined);
  state.expiries = expiries.filter((e) => e >= nearest.expiry);
  state.expiry = expiry && state.expiries.includes(expiry) ? expiry : nearest.expiry;
  state.spotKey = nearest.spot_key;
  // The spot, live: the stream's last price beside the chain's snapshot.
  state.spotOff?.();
  $("#st-live").textContent = "";
  state.spotOff = streamRef.ticks([nearest.spot_key], (tick) => {
    $("#st-live").textContent = `· live ${num(tick.last)}`;
  }, "ltp");
  try {
    state.currency = (await instrument(nearest.spot_key)).currency;
  } catch {
    state.currency = "INR";
  }
  const options = (select, chosen) => {
    select.replaceChildren(...state.expiries.map((e) => h("option", { value: e }, e)));
    select.value = chosen;
  };
  options($("#st-expiry"), state.expiry);
  options($("#st-far-expiry"), state.expiries[state.expiries.indexOf(state.expiry) + 1] || state.expiry);
  await fillStrikes();
}

// --- the template form -------------------------------------------------------------------
async function fillStrikes() {
  const spec = TEMPLATES[$("#st-template").value];
  const chain = await chainFor(state.expiry);
  $("#st-spot").textContent = `Spot ${num(chain.spot)} · ATM ${num(chain.atm_strike)} · ATM IV ${pct(chain.atm_iv)} · lot ${num(chain.lot_size)}`;
  $("#st-far-label").hidden = !spec.calendar;
  const atm = Math.max(0, chain.strikes.findIndex((s) => sameNumber(s, chain.atm_strike)));
  const box = $("#st-strikes");
  box.replaceChildren();
  for (const [name, offset] of Object.entries(spec.strikes)) {
    const index = Math.min(chain.strikes.length - 1, Math.max(0, atm + offset));
    const select = h("select", { name: `strike_${name}`, dataset: { strike: name } },
      ...chain.strikes.map((s) => h("option", { value: s }, num(s))));
    select.value = chain.strikes[index];
    box.append(h("label", {}, STRIKE_LABELS[name] || name, select));
  }
  if (spec.width) {
    const width = String(stepOf(chain) * spec.width);
    box.append(h("label", {}, "Wing width", h("input", { name: "strike_width", dataset: { strike: "width" }, value: width, inputmode: "decimal", size: 8, required: true })));
  }
}

async function buildFromTemplate() {
  const name = $("#st-template").value;
  const spec = TEMPLATES[name];
  const chain = await chainFor(state.expiry);
  const strikes = {};
  for (const input of $("#st-strikes").querySelectorAll("[data-strike]")) strikes[input.dataset.strike] = input.value;
  const lots = $("#st-lots").value;
  const template = { name, strikes, iv: chain.atm_iv ?? 0.2, lots, lot_size: chain.lot_size };
  let far = null;
  if (spec.calendar) {
    far = $("#st-far-expiry").value;
    if (far <= state.expiry) throw new Error("choose a far expiry after the near one");
    Object.assign(template, { near_expiry: state.expiry, far_expiry: far });
  } else {
    template.expiry = state.expiry;
  }
  // The API expands the template: which options, at which strikes, long or short.
  const answer = await api("/api/v1/analytics/strategies/analyze", {
    method: "POST", body: { spot: chain.spot, r: chain.r, q: chain.q, template },
  });
  const years = answer.legs.filter((l) => l.type === "option").map((l) => l.expiry_years);
  const nearYears = Math.min(...years);
  const farChain = far ? await chainFor(far) : null;
  const legs = [];
  for (const leg of answer.legs) {
    const short = leg.quantity.startsWith("-");
    const lots = (short ? leg.quantity.slice(1) : leg.quantity).replace(/\.0*$/, "");
    const base = { side: short ? "sell" : "buy", lots };
    if (leg.type === "underlying") {
      legs.push(newLeg({ ...base, type: "underlying", entry: chain.spot, lotSize: leg.lot_size, instrument: chain.spot_key }));
      continue;
    }
    const onFar = farChain && leg.expiry_years > nearYears + 1e-9;
    const legChain = onFar ? farChain : chain;
    const match = listed(legChain, leg.kind, leg.strike);
    legs.push(newLeg({
      ...base, type: "option", kind: leg.kind, expiry: legChain.expiry,
      strike: match?.strike ?? leg.strike, instrument: match?.key ?? null, lotSize: leg.lot_size,
      entry: match?.mark ?? leg.entry_price, iv: match?.iv ?? leg.iv,
    }));
  }
  state.legs = legs;
  state.limitEdited = false;
  renderLegs();
  await analyze();
}

// --- legs --------------------------------------------------------------------------------
function newLeg(fields) {
  return { id: state.nextId++, type: "option", side: "buy", lots: "1", kind: "call", strike: null, expiry: state.expiry,
    entry: "", iv: null, instrument: null, lotSize: "1", ...fields };
}

// Re-read a leg's instrument, mark and IV from the chain after its kind, strike or expiry changed.
async function reprice(leg) {
  const chain = await chainFor(leg.expiry || state.expiry);
  if (leg.type === "underlying") {
    Object.assign(leg, { instrument: chain.spot_key, entry: chain.spot, iv: null, lotSize: chain.lot_size });
    return;
  }
  if (!chain.strikes.some((s) => sameNumber(s, leg.strike))) leg.strike = chain.atm_strike ?? chain.strikes[0];
  const match = listed(chain, leg.kind, leg.strike);
  leg.strike = match?.strike ?? leg.strike;
  leg.instrument = match?.key ?? null;
  leg.lotSize = chain.lot_size;
  leg.entry = match?.mark ?? "";
  leg.iv = match?.iv ?? chain.atm_iv;
}

function labelled(text, control) {
  return h("label", { class: "cell" }, h("span", { class: "sr-only" }, text), control);
}

function legRow(leg, index) {
  const n = index + 1;
  const chain = state.chains.get(leg.expiry);
  const changed = async (mutate, { price = false } = {}) => {
    try {
      mutate();
      if (price) await reprice(leg);
      state.limitEdited = false;
      renderLegs();
      scheduleAnalyze();
    } catch (error) {
      fail(error);
    }
  };
  const side = h("select", { onchange: (e) => changed(() => { leg.side = e.target.value; }) },
    h("option", { value: "buy" }, "Buy"), h("option", { value: "sell" }, "Sell"));
  side.value = leg.side;
  const lots = h("input", { type: "number", min: "1", step: "1", value: leg.lots, size: 4, class: "lots",
    onchange: (e) => changed(() => {
      if (!/^[1-9]\d*$/.test(e.target.value)) throw new Error(`leg ${n}: lots must be a whole number, 1 or more`);
      leg.lots = e.target.value;
    }) });
  const type = h("select", { onchange: (e) => changed(() => {
    const value = e.target.value;
    if (value === "underlying") leg.type = "underlying";
    else Object.assign(leg, { type: "option", kind: value, expiry: leg.expiry || state.expiry });
  }, { price: true }) },
  h("option", { value: "call" }, "Call"), h("option", { value: "put" }, "Put"), h("option", { value: "underlying" }, "Underlying"));
  type.value = leg.type === "underlying" ? "underlying" : leg.kind;
  const option = leg.type === "option";
  const strike = h("select", { disabled: !option, onchange: (e) => changed(() => { leg.strike = e.target.value; }, { price: true }) },
    ...(option && chain ? chain.strikes : []).map((s) => h("option", { value: s }, num(s))));
  if (option) strike.value = chain?.strikes.find((s) => sameNumber(s, leg.strike)) ?? "";
  const expiry = h("select", { disabled: !option, onchange: (e) => changed(() => { leg.expiry = e.target.value; }, { price: true }) },
    ...state.expiries.map((x) => h("option", { value: x }, x)));
  if (option) expiry.value = leg.expiry;
  const entry = h("input", { value: leg.entry ?? "", inputmode: "decimal", size: 9, class: "num",
    onchange: (e) => changed(() => { leg.entry = e.target.value.trim(); }) });
  const iv = h("input", { value: leg.iv == null ? "" : (leg.iv * 100).toFixed(2), inputmode: "decimal", size: 6, class: "num", disabled: !option,
    onchange: (e) => changed(() => {
      const value = Number(e.target.value);
      if (!(value > 0 && value <= 1000)) throw new Error(`leg ${n}: IV is a percentage above 0`);
      leg.iv = value / 100;
    }) });
  const remove = h("button", { type: "button", class: "link", "aria-label": `Remove leg ${n}`,
    onclick: () => { state.legs = state.legs.filter((l) => l !== leg); state.limitEdited = false; renderLegs(); scheduleAnalyze(); } }, "Remove");
  return h("tr", { dataset: { leg: String(n), instrument: leg.instrument || "", side: leg.side, kind: option ? leg.kind : "underlying" } },
    h("th", { scope: "row" }, String(n)),
    h("td", {}, labelled(`Leg ${n} side`, side)),
    h("td", {}, labelled(`Leg ${n} lots`, lots)),
    h("td", {}, labelled(`Leg ${n} type`, type)),
    h("td", {}, labelled(`Leg ${n} strike`, strike)),
    h("td", {}, labelled(`Leg ${n} expiry`, expiry)),
    h("td", { class: "num" }, labelled(`Leg ${n} entry price`, entry)),
    h("td", { class: "num" }, labelled(`Leg ${n} IV %`, iv)),
    h("td", { class: "instrument" }, leg.instrument || h("span", { class: "down" }, "not listed")),
    h("td", {}, remove));
}

function renderLegs() {
  const body = $("#legs tbody");
  body.replaceChildren(...state.legs.map(legRow));
  if (!state.legs.length) body.append(h("tr", {}, h("td", { colspan: 10, class: "empty" }, "No legs yet: build from a template, add a leg, or pick legs in the option chain.")));
}

// --- analysis ----------------------------------------------------------------------------
function legIn(leg, n) {
  const quantity = (leg.side === "sell" ? "-" : "") + leg.lots;
  if (!DECIMAL.test(leg.entry || "") || leg.entry.startsWith("-")) throw new Error(`leg ${n}: give an entry price (per unit)`);
  if (leg.type === "underlying") return { type: "underlying", quantity, lot_size: leg.lotSize, entry_price: leg.entry };
  if (!(leg.iv > 0)) throw new Error(`leg ${n}: give an IV`);
  if (leg.instrument) return { instrument: leg.instrument, quantity, entry_price: leg.entry, iv: leg.iv };
  return { type: "option", kind: leg.kind, strike: leg.strike, expiry: leg.expiry, iv: leg.iv, quantity, lot_size: leg.lotSize, entry_price: leg.entry };
}

let timer;
function scheduleAnalyze() {
  clearTimeout(timer);
  timer = setTimeout(() => analyze().catch((error) => fail(error)), 250);
}

function status(text, kind = "hint") {
  const box = $("#analysis-status");
  box.replaceChildren(text ? h("p", { class: kind, role: kind === "form-error" ? "alert" : undefined }, text) : "");
}

async function analyze() {
  const seq = ++state.analysisSeq;
  if (!state.legs.length) {
    state.analysis = null;
    paintAnalysis(null);
    await updateOrder();
    return;
  }
  let body;
  try {
    const chain = await chainFor(state.legs.find((l) => l.type === "option")?.expiry || state.expiry);
    // A fine grid: the picture shows only the part around the strikes (focusRange).
    body = { spot: chain.spot, r: chain.r, q: chain.q, grid_points: 1001, legs: state.legs.map((leg, i) => legIn(leg, i + 1)) };
  } catch (error) {
    status(error.message, "form-error");
    return;
  }
  status("Analysing…");
  try {
    const answer = await api("/api/v1/analytics/strategies/analyze", { method: "POST", body });
    if (seq !== state.analysisSeq) return; // a later change has its own analysis
    state.analysis = answer;
    status("");
    paintAnalysis(answer);
    await updateOrder();
  } catch (error) {
    if (seq !== state.analysisSeq) return;
    state.analysis = null;
    paintAnalysis(null);
    status(typeof error.describe === "function" ? error.describe() : error.message, "form-error");
  }
}

const pct = (x) => (x === null || x === undefined ? "—" : `${(x * 100).toFixed(2)}%`);

function fact(id, text, value, cls = "") {
  const dd = $(`#${id}`);
  dd.textContent = text;
  dd.className = cls;
  if (value === undefined || value === null) delete dd.dataset.value;
  else dd.dataset.value = String(value);
}

function paintAnalysis(a) {
  if (!a) {
    for (const dd of document.querySelectorAll("#analysis dd, #greeks dd")) { dd.textContent = "—"; delete dd.dataset.value; }
    $("#payoff").replaceChildren(h("p", { class: "hint" }, "Build or add legs to see the payoff."));
    $("#payoff-readout").textContent = "";
    return;
  }
  const c = state.currency;
  const premium = a.net_premium;
  const credit = premium.startsWith("-");
  fact("an-premium", `${money(credit ? premium.slice(1) : premium, c)} ${credit ? "credit" : "debit"}`, premium, credit ? "up" : "");
  fact("an-max-profit", a.max_profit === null ? "unlimited" : money(a.max_profit, c), a.max_profit, "up");
  fact("an-max-loss", a.max_loss === null ? "unlimited" : money(a.max_loss, c), a.max_loss, "down");
  fact("an-breakevens", a.breakevens.length ? a.breakevens.map((b) => num(b)).join(", ") : "none", a.breakevens.join(","));
  fact("an-pop", a.probability_of_profit === null ? "—" : `${pct(a.probability_of_profit)} (at ${pct(a.pop_vol)} vol)`, a.probability_of_profit);
  fact("an-spot", num(a.spot), a.spot);
  fact("an-valuation", a.valuation_date, a.valuation_date);
  fact("an-expiry", `${(a.expiry_years * 365).toFixed(2)} days`, a.expiry_years);
  const g = a.net_greeks;
  fact("gk-delta", g.delta.toFixed(2), g.delta);
  fact("gk-gamma", g.gamma.toFixed(4), g.gamma);
  fact("gk-vega", (g.vega / 100).toFixed(2), g.vega / 100);
  fact("gk-theta", g.theta_per_day.toFixed(2), g.theta_per_day);
  fact("gk-rho", (g.rho / 100).toFixed(2), g.rho / 100);
  drawPayoff(a);
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function niceTicks(lo, hi, count = 6) {
  const raw = (hi - lo) / Math.max(count - 1, 1) || 1;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(t);
  return out;
}

// The payoff drawn from the analysis' curves (numbers for the drawing only; every figure
// shown in text is the API's decimal string).
// The API's grid spans a wide range of prices; the picture shows the part where the payoff
// bends (strikes, breakevens and spot, with room either side), where readers look.
function focusRange(a) {
  const marks = [Number(a.spot), ...a.breakevens.map(Number), ...a.legs.filter((l) => l.strike !== null).map((l) => Number(l.strike))];
  const lo = Math.min(...marks), hi = Math.max(...marks);
  const room = Math.max((hi - lo) * 0.75, Number(a.spot) * 0.02);
  const keep = a.grid.map((g) => Number(g) >= lo - room && Number(g) <= hi + room);
  return keep.filter(Boolean).length >= 10 ? keep : a.grid.map(() => true);
}

function drawPayoff(a) {
  const keep = focusRange(a);
  const pick = (values) => values.filter((_, i) => keep[i]);
  a = { ...a, grid: pick(a.grid), expiry_pnl: pick(a.expiry_pnl), today_pnl: pick(a.today_pnl) };
  const xs = a.grid.map(Number), ex = a.expiry_pnl.map(Number), td = a.today_pnl.map(Number);
  const W = 760, H = 380, L = 80, R = 18, T = 18, B = 42;
  const x0 = Math.min(...xs), x1 = Math.max(...xs);
  let y0 = Math.min(0, ...ex, ...td), y1 = Math.max(0, ...ex, ...td);
  const pad = (y1 - y0) * 0.08 || 1;
  y0 -= pad; y1 += pad;
  const fx = (x) => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - R);
  const fy = (y) => H - B - ((y - y0) / (y1 - y0 || 1)) * (H - T - B);
  const zero = fy(0);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "payoff-chart", role: "img", tabindex: "0",
    "aria-label": `Payoff at expiry and today; breakevens ${a.breakevens.join(", ") || "none"}. Use the arrow keys to read the curve.` });
  chart.append(svg("title", {}, "Payoff at expiry and today"));
  const defs = svg("defs", {},
    svg("clipPath", { id: "payoff-above" }, svg("rect", { x: L, y: T, width: W - L - R, height: Math.max(0, zero - T) })),
    svg("clipPath", { id: "payoff-below" }, svg("rect", { x: L, y: zero, width: W - L - R, height: Math.max(0, H - B - zero) })));
  chart.append(defs);
  for (const t of niceTicks(y0, y1, 8)) {
    chart.append(svg("line", { x1: L, x2: W - R, y1: fy(t), y2: fy(t), class: "grid-line" }));
    chart.append(svg("text", { x: L - 6, y: fy(t) + 4, "text-anchor": "end", class: "axis" }, (Math.round(t) || 0).toLocaleString()));
  }
  for (const t of niceTicks(x0, x1, 7)) {
    chart.append(svg("text", { x: fx(t), y: H - B + 18, "text-anchor": "middle", class: "axis" }, t.toLocaleString()));
  }
  const path = (ys) => xs.map((x, i) => `${fx(x).toFixed(1)},${fy(ys[i]).toFixed(1)}`).join(" ");
  const area = `${fx(x0).toFixed(1)},${zero.toFixed(1)} ${path(ex)} ${fx(x1).toFixed(1)},${zero.toFixed(1)}`;
  chart.append(svg("polygon", { points: area, class: "profit-area", "clip-path": "url(#payoff-above)" }));
  chart.append(svg("polygon", { points: area, class: "loss-area", "clip-path": "url(#payoff-below)" }));
  chart.append(svg("line", { x1: L, x2: W - R, y1: zero, y2: zero, class: "zero-line" }));
  const spot = Number(a.spot);
  chart.append(svg("line", { x1: fx(spot), x2: fx(spot), y1: T, y2: H - B, class: "spot-line" }));
  chart.append(svg("text", { x: fx(spot) + 4, y: T + 10, class: "axis" }, `spot ${num(a.spot)}`));
  chart.append(svg("polyline", { points: path(td), class: "today-line" }));
  chart.append(svg("polyline", { points: path(ex), class: "expiry-line" }));
  let lastLabel = -Infinity, row = 0;
  for (const b of a.breakevens) {
    const x = fx(Number(b));
    row = x - lastLabel < 70 ? row + 1 : 0; // labels closer than their width stack
    lastLabel = x;
    chart.append(svg("circle", { cx: x, cy: zero, r: 4, class: "breakeven" }, svg("title", {}, `breakeven ${num(b)}`)));
    chart.append(svg("text", { x, y: zero + 16 + row * 14, "text-anchor": "middle", class: "axis breakeven-label" }, num(b)));
  }
  chart.append(svg("g", { transform: `translate(${L + 10},${T + 6})` },
    svg("line", { x1: 0, x2: 20, y1: 0, y2: 0, class: "expiry-line" }), svg("text", { x: 26, y: 4, class: "axis" }, "at expiry"),
    svg("line", { x1: 100, x2: 120, y1: 0, y2: 0, class: "today-line" }), svg("text", { x: 126, y: 4, class: "axis" }, "today (T+0)")));
  const cross = svg("line", { y1: T, y2: H - B, class: "cross", visibility: "hidden" });
  const dot = svg("circle", { r: 4, class: "cross-dot", visibility: "hidden" });
  chart.append(cross, dot);
  let at = xs.findIndex((x) => x >= spot);
  const show = (i) => {
    at = Math.max(0, Math.min(xs.length - 1, i));
    cross.setAttribute("x1", fx(xs[at])); cross.setAttribute("x2", fx(xs[at]));
    dot.setAttribute("cx", fx(xs[at])); dot.setAttribute("cy", fy(ex[at]));
    cross.setAttribute("visibility", "visible"); dot.setAttribute("visibility", "visible");
    $("#payoff-readout").textContent = `At ${num(a.grid[at])}: ${money(a.expiry_pnl[at], state.currency)} at expiry, ${money(a.today_pnl[at], state.currency)} today`;
  };
  chart.addEventListener("mousemove", (event) => {
    const box = chart.getBoundingClientRect();
    const x = x0 + ((((event.clientX - box.left) / box.width) * W - L) / (W - L - R)) * (x1 - x0);
    let best = 0;
    for (let i = 1; i < xs.length; i += 1) if (Math.abs(xs[i] - x) < Math.abs(xs[best] - x)) best = i;
    show(best);
  });
  chart.addEventListener("keydown", (event) => {
    if (event.key === "ArrowRight" || event.key === "ArrowLeft") {
      event.preventDefault();
      show(at + (event.key === "ArrowRight" ? 1 : -1));
    }
  });
  $("#payoff").replaceChildren(chart);
  $("#payoff-readout").textContent = "Point at the chart (or focus it and use the arrow keys) to read the P/L.";
}

// --- the order ---------------------------------------------------------------------------
// The legs as one mleg order: quantity = combinations in units, each leg its ratio.
function combination() {
  if (state.legs.length < 2) return { problem: "A multi-leg order needs 2 to 4 legs." };
  const merged = new Map();
  for (const [i, leg] of state.legs.entries()) {
    if (leg.type !== "option") return { problem: `Leg ${i + 1} is the underlying (${leg.instrument}), which is not traded here: an mleg order takes listed options.` };
    if (!leg.instrument) return { problem: `Leg ${i + 1}: no listed option at that strike.` };
    const signed = BigInt(leg.lots) * (leg.side === "sell" ? -1n : 1n);
    const before = merged.get(leg.instrument);
    merged.set(leg.instrument, { leg, lots: (before?.lots ?? 0n) + signed });
  }
  const parts = [...merged.values()].filter((p) => p.lots !== 0n);
  if (parts.length < 2 || parts.length > 4) return { problem: `An mleg order takes 2 to 4 different instruments, these legs net to ${parts.length}.` };
  const lotSizes = new Set(parts.map((p) => p.leg.lotSize));
  if (lotSizes.size > 1) return { problem: "The legs have different lot sizes: place them separately." };
  const abs = parts.map((p) => (p.lots < 0n ? -p.lots : p.lots));
  const g = abs.reduce((a, b) => gcd(a, b));
  const lotSize = parts[0].leg.lotSize;
  const quantity = unscaled(scaled(lotSize, places(lotSize)) * g, places(lotSize));
  const legs = parts.map((p, i) => ({ instrument: p.leg.instrument, side: p.lots < 0n ? "sell" : "buy", ratio: Number(abs[i] / g), entry: p.leg.entry }));
  return { quantity, legs, combos: g };
}

// The net of the legs' entry prices per unit (debit positive), up to the tick grid.
async function netLimit(combo) {
  const tick = (await instrument(combo.legs[0].instrument)).tick_size;
  const p = Math.max(places(tick), ...combo.legs.map((l) => places(l.entry)));
  let net = 0n;
  for (const leg of combo.legs) net += (leg.side === "buy" ? 1n : -1n) * BigInt(leg.ratio) * scaled(leg.entry, p);
  const step = scaled(tick, p);
  let q = net / step; // toward zero
  if (net > 0n && net % step !== 0n) q += 1n; // a debit rounds up, a credit toward zero: both pay up to fill
  return unscaled(q * step, p);
}

async function updateOrder() {
  const preview = $("#order-preview");
  const combo = combination();
  $("#place-order").disabled = Boolean(combo.problem) || !state.accounts.length;
  if (combo.problem) {
    preview.textContent = state.legs.length ? combo.problem : "";
    preview.className = "order-preview hint";
    return;
  }
  preview.className = "order-preview";
  preview.textContent = `${num(combo.quantity)} units × (${combo.legs.map((l) => `${l.side} ${l.ratio} ${l.instrument}`).join(", ")})`;
  if (!state.limitEdited) {
    try {
      $("#order-limit").value = await netLimit(combo);
    } catch (error) {
      fail(error);
    }
  }
}

async function loadAccounts(select) {
  const page = await api("/api/v1/accounts");
  state.accounts = page.items;
  const box = $("#order-account");
  box.replaceChildren(...state.accounts.map((a) => h("option", { value: a.id }, `${a.name} (${a.currency}) · cash ${money(a.cash, a.currency)}`)));
  if (select) box.value = select;
  $("#no-account").hidden = state.accounts.length > 0;
  $("#order-form").hidden = state.accounts.length === 0;
  await updateOrder();
}

function showOrder(order, accountId) {
  const box = $("#order-result");
  box.hidden = false;
  const statusBadge = h("span", { class: "badge", id: "order-status", dataset: { status: order.status } }, order.status);
  const legList = h("ul", { class: "order-legs" }, ...(order.legs || []).map((leg) =>
    h("li", { dataset: { order: leg.id } }, `${leg.side} ${num(leg.quantity)} ${leg.instrument}: `, h("span", { class: "leg-status" }, leg.status))));
  box.replaceChildren(
    h("p", {}, "Order ", h("code", { id: "order-id" }, order.id), " ", statusBadge),
    h("p", { class: "hint", id: "order-reason" }, order.reason || ""),
    legList,
    h("p", {}, h("a", { href: `/trading?account=${encodeURIComponent(accountId)}` }, "See it in Paper trading")));
  const seen = new Map(); // order id -> updated_at painted (an older answer never wins)
  const paint = (o) => {
    if (o.updated_at && seen.get(o.id) && o.updated_at < seen.get(o.id)) return;
    if (o.updated_at) seen.set(o.id, o.updated_at);
    if (o.id === order.id) {
      statusBadge.textContent = o.status;
      statusBadge.dataset.status = o.status;
      $("#order-reason").textContent = o.reason || "";
    } else if (o.parent_id === order.id) {
      const li = legList.querySelector(`[data-order="${o.id}"] .leg-status`);
      if (li) li.textContent = o.status;
    }
  };
  state.watching?.();
  state.watching = streamRef.private("orders", accountId, (frame) => {
    if (frame.order) paint(frame.order);
  });
  return paint;
}

async function placeOrder() {
  const combo = combination();
  if (combo.problem) throw new Error(combo.problem);
  const accountId = $("#order-account").value;
  const type = $("#order-type").value;
  const body = {
    order_class: "mleg", quantity: combo.quantity, type, time_in_force: $("#order-tif").value, product: "nrml",
    legs: combo.legs.map(({ instrument: key, side, ratio }) => ({ instrument: key, side, ratio })),
  };
  if (type === "limit") {
    const limit = $("#order-limit").value.trim();
    if (!DECIMAL.test(limit)) throw new Error("give the net limit price (debit positive, credit negative)");
    body.limit_price = limit;
  }
  const order = await api(`/api/v1/accounts/${accountId}/orders`, { method: "POST", body, idempotent: true });
  notify(`Multi-leg order placed: ${order.status}`);
  const paint = showOrder(order, accountId);
  // The stream carries every later transition; what happened before it was subscribed is
  // read back once.
  const now = await api(`/api/v1/accounts/${accountId}/orders/${order.id}`);
  paint(now);
  for (const leg of now.legs || []) paint(leg);
}

// --- legs from the chain: ?legs=buy:1:SIM:SIMIDX26D1020900CE,sell:1:... ------------------
function parseLegs(spec) {
  return spec.split(",").filter(Boolean).map((part) => {
    const [side, lots, ...rest] = part.split(":");
    if (!["buy", "sell"].includes(side) || !/^[1-9]\d*$/.test(lots) || rest.length < 2) throw new Error(`not a leg: ${part}`);
    return { side, lots, key: rest.join(":") };
  });
}

async function legsFromKeys(wanted) {
  const found = [];
  for (const w of wanted) found.push({ ...w, info: await instrument(w.key) });
  const options = found.filter((f) => f.info.type === "option");
  if (options.length !== found.length) notify("Only options can be taken from the chain; other legs were left out.", "error");
  if (!options.length) return;
  const first = options[0].info;
  await chooseUnderlying(first.underlying, first.expiry);
  const legs = [];
  for (const f of options) {
    if (f.info.underlying !== first.underlying) {
      notify(`${f.key} is on ${f.info.underlying}, not ${first.underlying}: left out.`, "error");
      continue;
    }
    const leg = newLeg({ side: f.side, lots: f.lots, kind: f.info.option_type, strike: f.info.strike, expiry: f.info.expiry });
    await reprice(leg);
    legs.push(leg);
  }
  state.legs = legs;
  renderLegs();
  await analyze();
}

start(async ({ stream }) => {
  streamRef = stream;
  const params = new URLSearchParams(location.search);
  $("#st-template").replaceChildren(...Object.entries(TEMPLATES).map(([name, t]) => h("option", { value: name }, t.label)));
  if (params.get("template") && TEMPLATES[params.get("template")]) $("#st-template").value = params.get("template");

  const form = $("#template-form");
  const guarded = (work) => async (event) => {
    event?.preventDefault?.();
    clearError(form);
    try {
      await work();
    } catch (error) {
      fail(error, form);
    }
  };
  form.addEventListener("submit", guarded(async () => {
    const wanted = root($("#st-underlying").value);
    if (wanted !== state.underlying) {
      await chooseUnderlying(wanted);
      state.legs = [];
      renderLegs();
    }
    await buildFromTemplate();
  }));
  $("#st-underlying").addEventListener("change", guarded(async () => {
    const wanted = root($("#st-underlying").value);
    if (wanted === state.underlying) return;
    await chooseUnderlying(wanted);
    state.legs = [];
    renderLegs();
    await analyze();
  }));
  $("#st-expiry").addEventListener("change", guarded(async () => {
    state.expiry = $("#st-expiry").value;
    await fillStrikes();
  }));
  $("#st-template").addEventListener("change", guarded(fillStrikes));
  $("#add-leg").addEventListener("click", guarded(async () => {
    const chain = await chainFor(state.expiry);
    const leg = newLeg({ strike: chain.atm_strike, expiry: chain.expiry });
    await reprice(leg);
    state.legs.push(leg);
    state.limitEdited = false;
    renderLegs();
    scheduleAnalyze();
  }));
  $("#reprice").addEventListener("click", guarded(async () => {
    const expiries = new Set(state.legs.map((l) => l.expiry).filter(Boolean));
    for (const e of expiries) await chainFor(e, { fresh: true });
    await chainFor(state.expiry, { fresh: true });
    for (const leg of state.legs) await reprice(leg);
    state.limitEdited = false;
    renderLegs();
    await analyze();
  }));
  $("#clear-legs").addEventListener("click", guarded(async () => {
    state.legs = [];
    renderLegs();
    await analyze();
  }));

  $("#order-type").addEventListener("change", () => {
    $("#order-limit-label").hidden = $("#order-type").value !== "limit";
  });
  $("#order-limit").addEventListener("input", () => { state.limitEdited = true; });
  const orderForm = $("#order-form");
  orderForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    clearError(orderForm);
    const button = $("#place-order");
    button.disabled = true;
    try {
      await placeOrder();
      await loadAccounts($("#order-account").value);
    } catch (error) {
      fail(error, orderForm);
    } finally {
      button.disabled = Boolean(combination().problem) || !state.accounts.length;
    }
  });
  $("#create-account").addEventListener("click", async (event) => {
    const button = event.currentTarget;
    button.disabled = true;
    try {
      const account = await api("/api/v1/accounts", { method: "POST", body: { name: "Paper account" }, idempotent: true });
      notify(`Created ${account.name} with ${money(account.cash, account.currency)}`);
      await loadAccounts(account.id);
    } catch (error) {
      fail(error, $("#no-account"));
    } finally {
      button.disabled = false;
    }
  });

  renderLegs();
  await loadAccounts();
  if (params.get("legs")) {
    await legsFromKeys(parseLegs(params.get("legs")));
  } else {
    await chooseUnderlying(params.get("underlying") || "SIMIDX", params.get("expiry"));
    if (params.get("template")) await buildFromTemplate();
  }
  $("#to-chain").href = `/chain?underlying=${encodeURIComponent(state.underlying)}`;
});
