// Paper trading: the account (create, pick, reset, funds and margins), an order ticket for
// every order type and class the API accepts with a charges preview, the order book with
// live status, positions with live P&L, and fills.
//
// Everything comes from the public API: REST for the first load, then the account's private
// stream channels (orders, fills, positions, account) and ticks for the marks.  Amounts are
// decimal strings; the live P&L is computed in exact decimal arithmetic (BigInt), never
// through a float.

import { api } from "../api.js";
import { start } from "../shell.js";
import { $, $$, clearError, fail, h, money, num, onSubmit, sign, time } from "../ui.js";

const ACCOUNT_KEY = "qd-account"; // the paper account last chosen (an id, not a secret)
const OPEN = new Set(["pending_new", "held", "new", "partially_filled", "pending_cancel", "pending_replace"]);
const CANCELABLE = new Set(["pending_new", "held", "new", "partially_filled", "pending_replace"]);
const CONTINGENT = new Set(["bracket", "oco", "oto"]);
const DERIVATIVES = new Set(["future", "option"]);

// --- exact decimals -----------------------------------------------------------------------
// A decimal string as {n: BigInt, s: scale}; null for anything that is not a plain decimal.
function dec(text) {
  if (text === undefined || text === null) return null;
  const m = /^([+-]?)(\d*)(?:\.(\d*))?$/.exec(String(text).trim());
  if (!m || (m[2] === "" && !m[3])) return null;
  const fraction = m[3] || "";
  let n = BigInt((m[2] || "0") + fraction);
  if (m[1] === "-") n = -n;
  return { n, s: fraction.length };
}

function aligned(a, b) {
  const s = Math.max(a.s, b.s);
  return [a.n * 10n ** BigInt(s - a.s), b.n * 10n ** BigInt(s - b.s), s];
}
const add = (a, b) => { const [x, y, s] = aligned(a, b); return { n: x + y, s }; };
const sub = (a, b) => { const [x, y, s] = aligned(a, b); return { n: x - y, s }; };
const mul = (a, b) => ({ n: a.n * b.n, s: a.s + b.s });
const ZERO = { n: 0n, s: 0 };
const positive = (d) => d !== null && d.n > 0n;

function text(d) {
  const negative = d.n < 0n;
  const digits = (negative ? -d.n : d.n).toString().padStart(d.s + 1, "0");
  let out = d.s ? `${digits.slice(0, -d.s)}.${digits.slice(-d.s)}` : digits;
  if (d.s) out = out.replace(/0+$/, "").replace(/\.$/, "");
  return (negative && /[1-9]/.test(out) ? "-" : "") + out;
}

// --- state --------------------------------------------------------------------------------
const state = {
  stream: null,
  accounts: [],
  account: null, // AccountOut of the chosen account
  orders: new Map(), // id -> OrderOut
  fills: new Map(), // execution_id -> FillOut
  positions: new Map(), // "instrument|product" -> {position, mark: {last, mv, upnl, day} | null, live}
  instruments: new Map(), // key -> Promise<instrument | null>
  channelOffs: [],
  markOffs: new Map(), // instrument -> unsubscribe of its ticks
  lastPrice: new Map(), // instrument -> last price seen on the stream
  ticket: { instrument: null, facts: null, off: null },
  generation: 0, // bumps on every account switch: late answers of the old one are dropped
};

const currency = () => state.account?.currency || "INR";
const accountPath = (suffix = "") => `/api/v1/accounts/${state.account.id}${suffix}`;

function instrument(key) {
  if (!state.instruments.has(key)) {
    state.instruments.set(key, api(`/api/v1/instruments/${encodeURIComponent(key)}`).catch(() => null));
  }
  return state.instruments.get(key);
}

// Calls coalesced: many stream events in a burst cause one reload.
function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// The time of day (the full date and time in the title): rows of today stay narrow.
function stamp(node, iso) {
  const at = new Date(iso);
  setText(node, at.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" }));
  node.title = time(iso);
}

function setText(node, value) {
  if (node.textContent !== value) node.textContent = value;
}

// Rows of a <tbody> kept by key: existing rows are updated in place (so a button that is
// focused, or about to be clicked, survives a live update) and moved only when the order changes.
function syncRows(tbody, items, { key, create, update, empty, colspan }) {
  const rows = tbody._rows || (tbody._rows = new Map());
  const wanted = new Set();
  let index = 0;
  const placeholder = tbody.querySelector("tr.placeholder");
  if (items.length && placeholder) placeholder.remove();
  for (const item of items) {
    const id = key(item);
    wanted.add(id);
    let tr = rows.get(id);
    if (!tr) {
      tr = create(item);
      rows.set(id, tr);
    }
    update(tr, item);
    if (tbody.children[index] !== tr) tbody.insertBefore(tr, tbody.children[index] || null);
    index += 1;
  }
  for (const [id, tr] of rows) {
    if (!wanted.has(id)) {
      tr.remove();
      rows.delete(id);
    }
  }
  if (!items.length) {
    const row = tbody.querySelector("tr.placeholder");
    if (row) setText(row.firstChild, empty);
    else tbody.append(h("tr", { class: "placeholder" }, h("td", { colspan, class: "empty" }, empty)));
  }
}

// --- accounts -----------------------------------------------------------------------------
async function loadAccounts() {
  const items = [];
  let cursor;
  do {
    const page = await api("/api/v1/accounts", { query: { limit: 100, cursor } });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor && items.length < 1000);
  state.accounts = items;
  const select = $("#account-select");
  select.replaceChildren(...items.map((a) => h("option", { value: a.id }, `${a.name} · ${a.currency}`)));
  select.disabled = !items.length;
  return items;
}

function showAccountForm(show) {
  $("#account-form").hidden = !show;
  $("#account-new-toggle").setAttribute("aria-expanded", String(show));
  if (show) $("#account-name").focus();
}

function chooseInitial(items) {
  const params = new URLSearchParams(location.search);
  const asked = params.get("account");
  if (asked && !items.some((a) => a.id === asked)) {
    fail(new Error("That account is not one of yours (or does not exist): showing your own."));
  }
  const saved = localStorage.getItem(ACCOUNT_KEY);
  return [asked, saved].find((id) => id && items.some((a) => a.id === id)) || items[0]?.id || null;
}

async function selectAccount(id) {
  for (const off of state.channelOffs) off();
  for (const off of state.markOffs.values()) off();
  state.channelOffs = [];
  state.markOffs.clear();
  state.orders.clear();
  state.fills.clear();
  state.positions.clear();
  state.generation += 1;
  state.account = state.accounts.find((a) => a.id === id) || null;
  $("#account-reset").disabled = !state.account;
  $("#ticket-submit").disabled = !state.account;
  document.body.dataset.account = id || "";
  if (!state.account) {
    $("#account-summary").textContent = "No paper account yet: create one to trade.";
    renderAll();
    return;
  }
  $("#account-select").value = id;
  localStorage.setItem(ACCOUNT_KEY, id);
  const url = new URL(location.href);
  url.searchParams.set("account", id);
  history.replaceState(null, "", url);
  // Subscribe first, then load by REST: nothing that happens in between is missed (the
  // merge keeps whichever copy of an order is newer).
  const { stream } = state;
  state.channelOffs.push(
    stream.private("orders", id, onOrderFrame),
    stream.private("fills", id, onFillFrame),
    stream.private("positions", id, onPositionFrame),
    stream.private("account", id, onAccountFrame),
  );
  renderAll();
  await Promise.all([refreshAccount(), loadOrders(), loadFills(), refreshPositions()]);
}

async function refreshAccount() {
  if (!state.account) return;
  const generation = state.generation;
  const [account, margins] = await Promise.all([api(accountPath()), api(accountPath("/margins"))]);
  if (generation !== state.generation) return;
  state.account = account;
  const i = state.accounts.findIndex((a) => a.id === account.id);
  if (i >= 0) state.accounts[i] = account;
  renderFunds(account);
  renderMargins(margins);
}
const refreshAccountSoon = debounce(() => refreshAccount().catch((e) => fail(e)), 150);

// The funds' equity and unrealised P&L are the server's marks: while the positions' marks
// move, the account is read again at most every MARKS_REFRESH_MS, so the two panels agree
// within that (a closed market sends no ticks, hence no requests).
const MARKS_REFRESH_MS = 2000;
let marksTimer = null;
function refreshAccountForMarks() {
  if (marksTimer || document.hidden) return;
  marksTimer = setTimeout(() => {
    marksTimer = null;
    refreshAccount().catch((e) => fail(e));
  }, MARKS_REFRESH_MS);
}

function renderFunds(a) {
  const c = a.currency;
  const rows = [
    ["Starting cash", money(a.starting_cash, c), "starting_cash"],
    ["Cash (free)", money(a.cash, c), "cash"],
    ["Reserved for orders", money(a.reserved, c), "reserved"],
    ["Margin used", money(a.margin_used, c), "margin_used"],
    ["Buying power", money(a.buying_power, c), "buying_power"],
    ["Positions value", money(a.positions_value, c), "positions_value"],
    ["Equity", money(a.equity, c), "equity"],
    ["Unrealised P&L", money(a.unrealised_pnl, c), "unrealised_pnl", sign(a.unrealised_pnl)],
    ["Realised P&L", money(a.realised_pnl, c), "realised_pnl", sign(a.realised_pnl)],
    ["Day P&L", money(a.day_pnl, c), "day_pnl", sign(a.day_pnl)],
    ["Charges paid", money(a.fees, c), "fees"],
    ["Net deposits", money(a.deposits, c), "deposits"],
    ["Fill model", a.fill_model.replaceAll("_", " "), "fill_model"],
  ];
  $("#funds").replaceChildren(...rows.flatMap(([label, value, field, cls]) => [
    h("dt", {}, label), h("dd", { dataset: { field }, class: cls || undefined }, value)]));
  $("#account-summary").textContent = `${a.currency} · equity ${money(a.equity, c)} · buying power ${money(a.buying_power, c)}`;
}

function renderMargins(m) {
  const c = m.currency;
  $("#margins").replaceChildren(
    h("dt", {}, "Used (blocked)"), h("dd", { dataset: { field: "used" } }, money(m.used, c)),
    h("dt", {}, "Required (F&O, hedged)"), h("dd", { dataset: { field: "required" } }, money(m.required, c)),
    h("dt", {}, "Available"), h("dd", { dataset: { field: "available" } }, money(m.available, c)),
  );
  const detail = $("#margin-detail");
  detail.replaceChildren();
  if (m.positions.length) {
    detail.append(h("table", { class: "data margin-table" },
      h("caption", { class: "sr-only" }, "Margin per position"),
      h("thead", {}, h("tr", {}, ...["Instrument", "Qty", "Naked", "Required", "Blocked"].map((t, i) =>
        h("th", { scope: "col", class: i ? "num" : undefined }, t)))),
      h("tbody", {}, ...m.positions.map((p) => h("tr", {},
        h("th", { scope: "row" }, p.instrument),
        h("td", { class: "num" }, num(p.quantity)),
        h("td", { class: "num" }, money(p.naked, c)),
        h("td", { class: "num" }, money(p.required, c)),
        h("td", { class: "num" }, money(p.blocked, c)))))));
  }
  for (const g of m.groups) {
    detail.append(h("p", { class: "hint" },
      `${g.underlying}${g.expiry ? ` ${g.expiry}` : ""}: naked ${money(g.naked, c)}, worst payout `
      + `${g.worst_payout === null ? "unbounded" : money(g.worst_payout, c)}, required ${money(g.required, c)}`
      + (g.hedged ? " (hedged)" : "")));
  }
  if (!m.positions.length && !m.groups.length) detail.append(h("p", { class: "hint" }, "No F&O position blocks margin."));
}

function onAccountFrame(frame) {
  if (frame.type === "account" && frame.event === "reset") {
    reloadAccount();
    return;
  }
  refreshAccountSoon();
}

async function reloadAccount() {
  if (state.account) await selectAccount(state.account.id).catch((e) => fail(e));
}

// --- orders -------------------------------------------------------------------------------
function newer(incoming, existing) {
  if (!existing) return true;
  if (incoming.updated_at > existing.updated_at) return true;
  if (incoming.updated_at < existing.updated_at) return false;
  return !(OPEN.has(incoming.status) && !OPEN.has(existing.status)); // a terminal copy wins a tie
}

// A child's place among its parent's legs as the API lists them (a bracket's take-profit
// first, an mleg's legs as placed): one transaction makes them all, so times tie.
const legPlace = new Map();

function upsertOrder(order) {
  if (!state.account || order.account_id !== state.account.id) return;
  (order.legs || []).forEach((leg, i) => {
    legPlace.set(leg.id, i); // stream frames carry no legs: remember the API's order of them
    upsertOrder(leg);
  });
  if (newer(order, state.orders.get(order.id))) {
    const { legs, ...flat } = order;
    state.orders.set(order.id, flat);
  }
  renderOrdersSoon();
}

async function loadOrders() {
  const generation = state.generation;
  const page = await api(accountPath("/orders"), { query: { status: "all", limit: 200 } });
  if (generation !== state.generation) return;
  for (const order of page.items) upsertOrder(order);
  renderOrders();
}

function onOrderFrame(frame) {
  if (frame.type === "resync_required") {
    loadOrders().catch((e) => fail(e));
    return;
  }
  upsertOrder(frame.order);
  refreshAccountSoon(); // a placement, a fill or a cancel moves reserved cash
}

// Parents newest first, each followed by the orders hanging from it.
function orderedOrders() {
  const all = [...state.orders.values()];
  const children = new Map();
  for (const o of all) {
    if (o.parent_id && state.orders.has(o.parent_id)) {
      if (!children.has(o.parent_id)) children.set(o.parent_id, []);
      children.get(o.parent_id).push(o);
    }
  }
  const byTime = (a, b) => (a.created_at < b.created_at ? 1 : a.created_at > b.created_at ? -1 : a.id < b.id ? 1 : -1);
  const out = [];
  const visit = (o, depth) => {
    out.push({ order: o, depth });
    const place = (c) => legPlace.get(c.id) ?? Number.MAX_SAFE_INTEGER;
    const byPlace = (a, b) => place(a) - place(b) || -byTime(a, b);
    for (const c of (children.get(o.id) || []).sort(byPlace)) visit(c, depth + 1);
  };
  for (const o of all.filter((x) => !x.parent_id || !state.orders.has(x.parent_id)).sort(byTime)) visit(o, 0);
  if ($("#orders-open-only").checked) {
    // A group stays together while any of its members is open.
    const openRoots = new Set();
    const rootOf = (o) => (o.parent_id && state.orders.has(o.parent_id) ? rootOf(state.orders.get(o.parent_id)) : o.id);
    for (const { order } of out) if (OPEN.has(order.status)) openRoots.add(rootOf(order));
    return out.filter(({ order }) => openRoots.has(rootOf(order)));
  }
  return out;
}

function roleOf(order) {
  if (!order.parent_id) return order.order_class;
  const parent = state.orders.get(order.parent_id);
  const cls = parent?.order_class || "";
  if (cls === "mleg") return `leg${order.ratio ? ` ×${order.ratio}` : ""}`;
  if (cls === "sliced") return "slice";
  if (order.type === "limit") return "take-profit";
  if (order.type === "stop" || order.type === "stop_limit") return "stop-loss";
  return "exit";
}

function typeText(o) {
  const type = o.type.replaceAll("_", " ");
  if (o.type !== "trailing_stop") return type;
  const trail = o.trail_percent ? `${num(o.trail_percent)}%` : num(o.trail_price);
  return `${type} ${trail}${o.hwm ? ` (hwm ${num(o.hwm)})` : ""}`;
}

function modifiable(o) {
  if (!CANCELABLE.has(o.status) || o.status === "pending_new" || o.status === "pending_replace") return false;
  if (o.order_class === "mleg" || o.order_class === "sliced") return false;
  const parent = o.parent_id ? state.orders.get(o.parent_id) : null;
  if (parent && (parent.order_class === "mleg" || parent.order_class === "sliced")) return false;
  return modifyFields(o).length > 0;
}

function modifyFields(o) {
  const fields = [];
  if (!o.parent_id) fields.push("quantity");
  if (o.type === "limit" || o.type === "stop_limit") fields.push("limit_price");
  if (o.type === "stop" || o.type === "stop_limit") fields.push("stop_price");
  return fields;
}

const ORDER_CELLS = ["placed", "instrument", "side", "type", "class", "quantity", "filled", "limit", "stop", "average", "tif", "product", "status", "actions"];
const NUMERIC = new Set(["quantity", "filled", "limit", "stop", "average"]);

function createOrderRow(order) {
  const cells = ORDER_CELLS.map((field) => (field === "instrument"
    ? h("th", { scope: "row", dataset: { field } })
    : h("td", { dataset: { field }, class: NUMERIC.has(field) ? "num" : undefined })));
  const cancel = h("button", { type: "button", class: "link", dataset: { action: "cancel" }, onclick: () => cancelOrder(order.id) }, "Cancel");
  const modify = h("button", { type: "button", class: "link", dataset: { action: "modify" }, onclick: () => openModify(order.id) }, "Modify");
  cells.at(-1).append(modify, " ", cancel);
  return h("tr", { dataset: { orderId: order.id } }, ...cells);
}

function updateOrderRow(tr, { order: o, depth }) {
  const cell = (field) => tr.querySelector(`[data-field=${field}]`);
  tr.dataset.status = o.status;
  tr.dataset.class = o.order_class;
  if (o.parent_id) tr.dataset.parentId = o.parent_id;
  tr.classList.toggle("child", depth > 0);
  tr.classList.toggle("closed", !OPEN.has(o.status));
  stamp(cell("placed"), o.created_at);
  setText(cell("instrument"), (depth ? "↳ " : "") + o.instrument);
  setText(cell("side"), o.side);
  cell("side").className = o.side === "buy" ? "up" : "down";
  setText(cell("type"), typeText(o));
  setText(cell("class"), roleOf(o));
  setText(cell("quantity"), num(o.quantity));
  setText(cell("filled"), num(o.filled_quantity));
  setText(cell("limit"), num(o.limit_price));
  setText(cell("stop"), num(o.stop_price));
  setText(cell("average"), num(o.average_fill_price));
  setText(cell("tif"), o.time_in_force.toUpperCase() + (o.after_market ? " AMO" : ""));
  setText(cell("product"), o.product.toUpperCase());
  const status = cell("status");
  let badge = status.querySelector(".badge");
  if (!badge) {
    badge = h("span", { class: "badge status" });
    status.append(badge, h("span", { class: "reason hint" }));
  }
  setText(badge, o.status.replaceAll("_", " "));
  badge.dataset.status = o.status;
  badge.title = o.kite_status;
  const reason = status.querySelector(".reason");
  setText(reason, o.reason ? ` ${o.reason}` : "");
  reason.title = o.reason || "";
  tr.querySelector("[data-action=cancel]").hidden = !CANCELABLE.has(o.status);
  tr.querySelector("[data-action=cancel]").setAttribute("aria-label", `Cancel ${o.side} ${o.quantity} ${o.instrument}`);
  tr.querySelector("[data-action=modify]").hidden = !modifiable(o);
  tr.querySelector("[data-action=modify]").setAttribute("aria-label", `Modify ${o.side} ${o.quantity} ${o.instrument}`);
}

function renderOrders() {
  syncRows($("#orders tbody"), orderedOrders(), {
    key: ({ order }) => order.id,
    create: ({ order }) => createOrderRow(order),
    update: updateOrderRow,
    empty: state.account ? "No orders yet." : "Choose or create an account.",
    colspan: ORDER_CELLS.length,
  });
  const form = $("#modify-form");
  if (!form.hidden) {
    const o = state.orders.get(form.dataset.orderId);
    if (!o || !modifiable(o)) closeModify();
  }
}
let ordersFrame = 0;
function renderOrdersSoon() {
  if (!ordersFrame) ordersFrame = requestAnimationFrame(() => { ordersFrame = 0; renderOrders(); });
}

async function cancelOrder(id) {
  const section = $("#orders").closest("section");
  clearError(section);
  try {
    upsertOrder(await api(accountPath(`/orders/${id}`), { method: "DELETE" }));
    refreshAccountSoon();
  } catch (error) {
    fail(error, section);
  }
}

async function cancelAll() {
  const section = $("#orders").closest("section");
  clearError(section);
  try {
    const { canceled } = await api(accountPath("/orders"), { method: "DELETE" });
    for (const order of canceled) upsertOrder(order);
  } catch (error) {
    fail(error, section);
  }
}

function openModify(id) {
  const o = state.orders.get(id);
  const form = $("#modify-form");
  if (!o) return;
  clearError(form);
  form.dataset.orderId = id;
  const fields = modifyFields(o);
  for (const label of $$("[data-modify]", form)) {
    const field = label.dataset.modify;
    label.hidden = !fields.includes(field);
    const input = label.querySelector("input");
    input.value = field === "quantity" ? o.quantity : (o[field] ?? "");
  }
  $("#modify-title").textContent = `Modify ${o.side} ${num(o.quantity)} ${o.instrument} (${typeText(o)})`;
  form.hidden = false;
  form.querySelector("label:not([hidden]) input")?.focus();
}

function closeModify() {
  $("#modify-form").hidden = true;
}

async function submitModify(_data, form) {
  const o = state.orders.get(form.dataset.orderId);
  if (!o) return;
  const body = {};
  for (const field of modifyFields(o)) {
    const value = form.elements[field].value.trim();
    const before = field === "quantity" ? o.quantity : o[field];
    if (value !== "" && value !== before) body[field] = value;
  }
  if (!Object.keys(body).length) throw new Error("Change the quantity or a price first.");
  upsertOrder(await api(accountPath(`/orders/${o.id}`), { method: "PATCH", body }));
  refreshAccountSoon();
  closeModify();
}

// --- fills --------------------------------------------------------------------------------
async function loadFills() {
  const generation = state.generation;
  const page = await api(accountPath("/fills"), { query: { limit: 200 } });
  if (generation !== state.generation) return;
  for (const fill of page.items) state.fills.set(fill.execution_id, fill);
  renderFills();
}

function onFillFrame(frame) {
  if (frame.type === "resync_required") {
    loadFills().catch((e) => fail(e));
    return;
  }
  state.fills.set(frame.fill.execution_id, frame.fill);
  renderFills();
  refreshAccountSoon();
  refreshPositionsSoon();
}

const FILL_CELLS = ["ts", "instrument", "side", "product", "quantity", "price", "fee", "realised", "liquidity"];

function renderFills() {
  const fills = [...state.fills.values()].sort((a, b) => (a.ts < b.ts ? 1 : a.ts > b.ts ? -1 : 0));
  const c = currency();
  syncRows($("#fills tbody"), fills, {
    key: (f) => f.execution_id,
    create: (f) => h("tr", { dataset: { executionId: f.execution_id, orderId: f.order_id } },
      ...FILL_CELLS.map((field) => (field === "instrument"
        ? h("th", { scope: "row", dataset: { field } })
        : h("td", { dataset: { field }, class: ["quantity", "price", "fee", "realised"].includes(field) ? "num" : undefined })))),
    update: (tr, f) => {
      const cell = (field) => tr.querySelector(`[data-field=${field}]`);
      stamp(cell("ts"), f.ts);
      setText(cell("instrument"), f.instrument);
      setText(cell("side"), f.side);
      cell("side").className = f.side === "buy" ? "up" : "down";
      setText(cell("product"), f.product.toUpperCase());
      setText(cell("quantity"), num(f.quantity));
      setText(cell("price"), num(f.price));
      setText(cell("fee"), money(f.fee, c));
      cell("fee").title = Object.entries(f.charges).map(([k, v]) => `${k.replaceAll("_", " ")} ${v}`).join(", ");
      setText(cell("realised"), money(f.realised_pnl, c));
      cell("realised").className = `num ${sign(f.realised_pnl)}`;
      setText(cell("liquidity"), f.liquidity);
    },
    empty: state.account ? "No fills yet." : "Choose or create an account.",
    colspan: FILL_CELLS.length,
  });
}

// --- positions ----------------------------------------------------------------------------
const positionKey = (p) => `${p.instrument}|${p.product}`;

// The marks of a REST snapshot: what the live P&L moves from as new last prices arrive.
function markOf(p) {
  if (p.last_price === null || p.market_value === null || p.unrealised_pnl === null) return null;
  return { last: dec(p.last_price), mv: dec(p.market_value), upnl: dec(p.unrealised_pnl), day: p.day_pnl === null ? null : dec(p.day_pnl) };
}

async function refreshPositions() {
  if (!state.account) return;
  const generation = state.generation;
  const { items } = await api(accountPath("/positions"));
  if (generation !== state.generation) return;
  const keep = new Set();
  for (const p of items) {
    const key = positionKey(p);
    keep.add(key);
    state.positions.set(key, { position: p, mark: markOf(p), live: null });
  }
  for (const key of [...state.positions.keys()]) if (!keep.has(key)) state.positions.delete(key);
  await followMarks();
  for (const entry of state.positions.values()) relive(entry);
  renderPositions();
}
const refreshPositionsSoon = debounce(() => refreshPositions().catch((e) => fail(e)), 120);

function onPositionFrame(frame) {
  if (frame.type === "resync_required" || !frame.position) {
    refreshPositionsSoon();
    return;
  }
  // The frame carries quantity, average and realised P&L (marks come with the REST reload).
  const p = frame.position;
  const key = positionKey(p);
  const before = state.positions.get(key);
  const sameQuantity = before && before.position.quantity === p.quantity;
  state.positions.set(key, { position: { ...before?.position, ...p }, mark: sameQuantity ? before.mark : markOf(p), live: null });
  relive(state.positions.get(key));
  renderPositions();
  followMarks().catch(() => {});
  refreshPositionsSoon();
}

// Subscribe to ticks of every instrument held (and drop the ones no longer held).
async function followMarks() {
  const held = new Set([...state.positions.values()].map((e) => e.position.instrument));
  for (const [key, off] of state.markOffs) {
    if (!held.has(key)) {
      off();
      state.markOffs.delete(key);
    }
  }
  for (const key of held) {
    if (state.markOffs.has(key)) continue;
    state.markOffs.set(key, state.stream.ticks([key], (tick) => onMark(key, tick), "quote"));
    rememberMultiplier(key);
  }
}

const multipliers = new Map(); // key -> dec, once the instrument is known
const asked = new Set();
function rememberMultiplier(key) {
  if (asked.has(key)) return;
  asked.add(key);
  instrument(key).then((facts) => {
    if (facts) multipliers.set(key, dec(facts.multiplier) || { n: 1n, s: 0 });
    for (const entry of state.positions.values()) if (entry.position.instrument === key) relive(entry);
    renderPositions();
  });
}

// A position known without marks (a fill just changed it) is reloaded, at most every 2 s.
let markedAt = 0;
function wantMarks() {
  if (Date.now() - markedAt < 2000) return;
  markedAt = Date.now();
  refreshPositionsSoon();
}

// Live P&L of one position at the last price seen: the snapshot's figures moved by
// quantity x multiplier x (last - the snapshot's last), exactly.
function relive(entry) {
  const p = entry.position;
  const last = state.lastPrice.get(p.instrument);
  const mult = multipliers.get(p.instrument);
  if (!multipliers.has(p.instrument)) rememberMultiplier(p.instrument);
  if (!entry.mark || !last || !mult) {
    entry.live = entry.mark ? { last: entry.mark.last, mv: entry.mark.mv, upnl: entry.mark.upnl, day: entry.mark.day } : null;
    if (!entry.mark && last && dec(p.quantity)?.n) wantMarks();
    return;
  }
  const delta = mul(mul(dec(p.quantity), mult), sub(last, entry.mark.last));
  entry.live = {
    last,
    mv: add(entry.mark.mv, delta),
    upnl: add(entry.mark.upnl, delta),
    day: entry.mark.day ? add(entry.mark.day, delta) : null,
  };
}

function onMark(key, tick) {
  const last = dec(tick.last);
  if (!last) return;
  state.lastPrice.set(key, last);
  let changed = false;
  for (const entry of state.positions.values()) {
    if (entry.position.instrument !== key) continue;
    relive(entry);
    entry.ts = tick.ts;
    changed = true;
  }
  if (changed) {
    renderPositions();
    refreshAccountForMarks();
  }
}

const POSITION_CELLS = ["instrument", "product", "quantity", "average", "last", "value", "unrealised", "day", "realised", "margin", "actions"];

function renderPositions() {
  const c = currency();
  const entries = [...state.positions.values()].sort((a, b) => positionKey(a.position).localeCompare(positionKey(b.position)));
  let total = ZERO;
  let complete = entries.length > 0;
  syncRows($("#positions tbody"), entries, {
    key: (e) => positionKey(e.position),
    create: (e) => {
      const tr = h("tr", { dataset: { instrument: e.position.instrument, product: e.position.product } },
        ...POSITION_CELLS.map((field) => (field === "instrument"
          ? h("th", { scope: "row", dataset: { field } })
          : h("td", { dataset: { field }, class: ["product", "actions"].includes(field) ? undefined : "num" }))));
      tr.querySelector("[data-field=actions]").append(h("button", {
        type: "button", class: "link", dataset: { action: "close" },
        "aria-label": `Close ${e.position.instrument} ${e.position.product}`,
        onclick: () => closePosition(e.position.instrument, e.position.product),
      }, "Close"));
      return tr;
    },
    update: (tr, e) => {
      const p = e.position;
      const live = e.live;
      const cell = (field) => tr.querySelector(`[data-field=${field}]`);
      setText(cell("instrument"), p.instrument);
      setText(cell("product"), p.product.toUpperCase());
      setText(cell("quantity"), num(p.quantity));
      cell("quantity").className = `num ${sign(p.quantity) === "down" ? "down" : ""}`;
      setText(cell("average"), num(p.average_price));
      setText(cell("last"), live ? num(text(live.last)) : num(p.last_price));
      setText(cell("value"), live ? money(text(live.mv), c) : "—");
      const upnl = live ? text(live.upnl) : null;
      setText(cell("unrealised"), upnl === null ? "—" : money(upnl, c));
      cell("unrealised").className = `num ${sign(upnl)}`;
      const day = live?.day ? text(live.day) : null;
      setText(cell("day"), day === null ? "—" : money(day, c));
      cell("day").className = `num ${sign(day)}`;
      setText(cell("realised"), money(p.realised_pnl, c));
      cell("realised").className = `num ${sign(p.realised_pnl)}`;
      setText(cell("margin"), money(p.margin, c));
      tr.querySelector("[data-action=close]").hidden = !dec(p.quantity)?.n;
      if (e.ts) tr.dataset.updated = e.ts;
      tr.classList.toggle("closed", !dec(p.quantity)?.n);
      if (live) total = add(total, live.upnl);
      else if (dec(p.quantity)?.n) complete = false;
    },
    empty: state.account ? "No positions." : "Choose or create an account.",
    colspan: POSITION_CELLS.length,
  });
  const cell = $("#positions-total");
  const value = complete ? text(total) : null;
  setText(cell, value === null ? "—" : money(value, c));
  cell.className = `num ${sign(value)}`;
}

async function closePosition(instrumentKey, product) {
  const section = $("#positions").closest("section");
  clearError(section);
  try {
    const order = await api(accountPath(`/positions/${encodeURIComponent(instrumentKey)}/close`), {
      method: "POST", query: { product },
    });
    upsertOrder(order);
  } catch (error) {
    fail(error, section);
  }
}

// --- the order ticket ---------------------------------------------------------------------
const ticket = () => $("#ticket");
const field = (name) => ticket().elements[name];
const value = (name) => (field(name)?.value ?? "").trim();

function ticketShape() {
  const cls = value("order_class");
  let type = value("type");
  if (cls === "oco") type = "limit";
  return {
    cls,
    type,
    single: cls !== "mleg",
    limit: cls === "oco" ? false : type === "limit" || type === "stop_limit",
    stop: cls !== "mleg" && (type === "stop" || type === "stop_limit"),
    trail: cls === "simple" && type === "trailing_stop",
    exits: CONTINGENT.has(cls),
  };
}

// Show only the fields that apply to the chosen class and type.
function applyShape() {
  const cls = value("order_class");
  const typeSelect = field("type");
  const allowed = cls === "mleg" ? ["market", "limit"]
    : cls === "oco" ? ["limit"]
      : CONTINGENT.has(cls) ? ["market", "limit", "stop", "stop_limit"]
        : ["market", "limit", "stop", "stop_limit", "trailing_stop"];
  for (const option of typeSelect.options) {
    option.disabled = !allowed.includes(option.value);
    option.hidden = option.disabled;
  }
  if (!allowed.includes(typeSelect.value)) typeSelect.value = allowed.includes("limit") && cls === "oco" ? "limit" : allowed[0];
  typeSelect.disabled = allowed.length === 1;
  const tif = field("time_in_force");
  for (const option of tif.options) option.disabled = CONTINGENT.has(cls) && (option.value === "ioc" || option.value === "fok");
  if (tif.selectedOptions[0]?.disabled) tif.value = "day";

  const shape = ticketShape();
  const visible = {
    single: shape.single,
    mleg: !shape.single,
    limit: shape.limit,
    stop: shape.stop,
    trail: shape.trail,
    take_profit: shape.exits,
    stop_loss: shape.exits,
    oto: cls === "oto",
    amo: shape.single,
  };
  for (const node of $$("[data-for]", ticket())) node.hidden = !visible[node.dataset.for];
  $("#limit-label").textContent = shape.single ? "Limit price" : "Net limit price (debit +, credit −)";
  $("#quantity-label").textContent = shape.single ? "Quantity" : "Combinations";
  updateSubmitLabel();
  previewSoon();
}

function updateSubmitLabel() {
  const { single, cls } = ticketShape();
  const side = ticket().querySelector("input[name=side]:checked").value;
  const button = $("#ticket-submit");
  button.textContent = single ? `Place ${side} order${cls === "simple" ? "" : ` (${cls})`}` : "Place multi-leg order";
  button.dataset.side = single ? side : "";
}

function legsOf() {
  const legs = [];
  for (let n = 1; n <= 4; n += 1) {
    const key = value(`leg${n}.instrument`).toUpperCase();
    if (!key) continue;
    const ratio = value(`leg${n}.ratio`);
    legs.push({ instrument: key, side: value(`leg${n}.side`), ratio: /^\d+$/.test(ratio) ? Number(ratio) : ratio });
  }
  return legs;
}

// The request body: only the fields that apply, decimals as the strings typed.  Nothing is
// checked here that the API checks: its answer is what the ticket shows.
function orderBody() {
  const shape = ticketShape();
  const body = { order_class: shape.cls, type: shape.type, time_in_force: value("time_in_force"), product: value("product") };
  const put = (key, name) => { const v = value(name); if (v !== "") body[key] = v; };
  put("quantity", "quantity");
  if (shape.single) {
    body.instrument = value("instrument").toUpperCase();
    body.side = ticket().querySelector("input[name=side]:checked").value;
    if (field("after_market").checked) body.after_market = true;
  } else {
    body.legs = legsOf();
  }
  if (shape.limit) put("limit_price", "limit_price");
  if (shape.stop) put("stop_price", "stop_price");
  if (shape.trail) put(value("trail_kind"), "trail");
  if (shape.exits) {
    const tp = value("take_profit.limit_price");
    if (tp !== "") body.take_profit = { limit_price: tp };
    const sl = value("stop_loss.stop_price");
    const slLimit = value("stop_loss.limit_price");
    if (sl !== "" || slLimit !== "") {
      body.stop_loss = {};
      if (sl !== "") body.stop_loss.stop_price = sl;
      if (slLimit !== "") body.stop_loss.limit_price = slLimit;
    }
  }
  put("client_order_id", "client_order_id");
  return body;
}

// The API names the wrong fields (loc): mark those inputs.
function markInvalid(error) {
  const names = [];
  for (const e of error?.problem?.errors || []) {
    const loc = (e.loc || []).filter((part) => part !== "body");
    if (loc[0] === "legs" && typeof loc[1] === "number") names.push(`leg${loc[1] + 1}.${loc[2] || "instrument"}`);
    else if (loc.length) names.push(loc.join("."));
    else if (e.field) names.push(e.field);
  }
  if (error?.problem?.field) names.push(error.problem.field);
  for (const name of names) {
    const input = field(name);
    if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
  }
}

async function placeOrder() {
  for (const input of $$("[aria-invalid]", ticket())) input.removeAttribute("aria-invalid");
  $("#ticket-result").textContent = "";
  if (!state.account) throw new Error("Create or choose a paper account first.");
  const body = orderBody();
  try {
    const order = await api(accountPath("/orders"), { method: "POST", body, idempotent: true });
    upsertOrder(order);
    refreshAccountSoon();
    $("#ticket-result").textContent = `Placed: ${order.side} ${num(order.quantity)} ${order.instrument}, ${order.type.replaceAll("_", " ")} — ${order.status.replaceAll("_", " ")}`;
    field("client_order_id").value = "";
  } catch (error) {
    markInvalid(error);
    throw error;
  }
}

// --- ticket instrument: facts, live quote, suggestions -------------------------------------
async function setTicketInstrument(key) {
  key = key.trim().toUpperCase();
  if (key === state.ticket.instrument) return;
  state.ticket.off?.();
  state.ticket.off = null;
  state.ticket.instrument = key;
  state.ticket.facts = null;
  for (const id of ["#quote-bid", "#quote-ask"]) $(id).textContent = `${id.endsWith("bid") ? "bid" : "ask"} —`;
  $("#quote-last").textContent = "last —";
  $("#ticket-facts").textContent = "";
  if (!key) return;
  const facts = await instrument(key);
  if (state.ticket.instrument !== key) return;
  if (!facts) {
    $("#ticket-facts").textContent = "· not in the instrument master";
    return;
  }
  state.ticket.facts = facts;
  $("#ticket-facts").textContent = `· ${facts.type}, lot ${num(facts.lot_size)}, tick ${facts.tick_size}, ${facts.currency}`;
  // Products: delivery and intraday for cash instruments, NRML and intraday for F&O.
  const derivative = DERIVATIVES.has(facts.type);
  const product = field("product");
  for (const option of product.options) option.disabled = derivative ? option.value === "cnc" : option.value === "nrml";
  if (product.selectedOptions[0]?.disabled) product.value = derivative ? "nrml" : "cnc";
  const quantity = field("quantity");
  if (derivative && (quantity.value === "" || quantity.value === "1")) quantity.value = facts.lot_size;
  state.ticket.off = state.stream.ticks([key], (tick) => {
    if (state.ticket.instrument !== key) return;
    $("#quote-bid").textContent = `bid ${num(tick.bid)}`;
    $("#quote-bid").dataset.price = tick.bid || "";
    $("#quote-ask").textContent = `ask ${num(tick.ask)}`;
    $("#quote-ask").dataset.price = tick.ask || "";
    $("#quote-last").textContent = `last ${num(tick.last)}`;
    $("#ticket-quote").dataset.updated = tick.ts || "";
  }, "quote");
  previewSoon();
}

function usePrice(button) {
  const price = button.dataset.price;
  if (!price) return;
  if (!ticketShape().limit) field("type").value = "limit";
  applyShape();
  field("limit_price").value = price;
  previewSoon();
}

const suggest = debounce(async (q) => {
  if (q.length < 2) return;
  try {
    const page = await api("/api/v1/instruments", { query: { q, limit: 12 } });
    $("#ticket-suggestions").replaceChildren(...page.items.map((i) => h("option", { value: i.key }, i.name)));
  } catch {
    // suggestions are a convenience: the order itself reports any problem
  }
}, 250);

// --- charges preview ----------------------------------------------------------------------
let previewRun = 0;

function previewRequests() {
  const shape = ticketShape();
  const product = value("product");
  const quantity = value("quantity");
  if (!positive(dec(quantity))) return { hint: "Enter a positive quantity to preview the charges." };
  if (!shape.single) {
    const legs = legsOf();
    if (legs.length < 2) return { hint: "Enter at least two legs to preview the charges." };
    const combos = dec(quantity);
    return {
      requests: legs.map((leg) => ({
        instrument: leg.instrument, side: leg.side, product,
        quantity: text(mul(combos, dec(String(leg.ratio)) || { n: 1n, s: 0 })),
      })),
    };
  }
  const instrumentKey = value("instrument").toUpperCase();
  if (!instrumentKey) return { hint: "Enter an instrument to preview the charges." };
  const side = ticket().querySelector("input[name=side]:checked").value;
  const price = shape.cls === "oco" ? value("take_profit.limit_price")
    : shape.limit ? value("limit_price") : shape.stop ? value("stop_price") : "";
  const request = { instrument: instrumentKey, side, quantity, product };
  if (positive(dec(price))) request.price = price;
  return { requests: [request] };
}

async function preview() {
  const run = ++previewRun;
  const box = $("#charges-body");
  const { hint, requests } = previewRequests();
  if (hint) {
    box.replaceChildren(hint);
    box.className = "hint";
    return;
  }
  try {
    const answers = await Promise.all(requests.map((body) => api("/api/v1/trading/charges", { method: "POST", body })));
    if (run !== previewRun) return;
    const lines = new Map();
    let total = ZERO;
    let worth = ZERO;
    for (const a of answers) {
      for (const [name, amount] of Object.entries(a.charges)) lines.set(name, add(lines.get(name) || ZERO, dec(amount)));
      total = add(total, dec(a.total));
      worth = add(worth, dec(a.value));
    }
    const c = state.ticket.facts?.currency || currency();
    const priced = answers.length === 1 ? ` at ${num(answers[0].price)}` : "";
    box.className = "";
    box.replaceChildren(h("dl", { class: "facts" },
      h("dt", {}, "Order value"), h("dd", { dataset: { field: "value" } }, `${money(text(worth), c)}${priced}`),
      ...[...lines].flatMap(([name, amount]) => [h("dt", {}, name.replaceAll("_", " ")), h("dd", {}, money(text(amount), c))]),
      h("dt", {}, "Total charges"), h("dd", { dataset: { field: "total" }, class: "total" }, money(text(total), c)),
      h("dt", {}, "Rates of"), h("dd", {}, answers[0].day)));
  } catch (error) {
    if (run !== previewRun) return;
    box.className = "form-error";
    box.replaceChildren(`No preview: ${typeof error.describe === "function" ? error.describe() : error.message}`);
  }
}
const previewSoon = debounce(preview, 300);

// --- start --------------------------------------------------------------------------------
// --- trading halts (the kill switch), from the stream's status channel ----------------------
const halts = new Map(); // halt_id -> halt

const HALT_WHERE = { all: () => "for the whole system", exchange: (t) => `on exchange ${t}`, instrument: (t) => `for ${t}` };

function onHalts(frame) {
  if (frame.type === "trading_status") {
    halts.clear();
    for (const halt of frame.halts) halts.set(halt.halt_id, halt);
  } else if (frame.event === "halted") {
    halts.set(frame.halt_id, frame);
  } else {
    halts.delete(frame.halt_id);
  }
  const box = $("#trading-halts");
  box.replaceChildren(...[...halts.values()].map((halt) => h("p", { dataset: { haltId: halt.halt_id } },
    h("strong", {}, `New orders are halted ${HALT_WHERE[halt.scope](halt.target)}`),
    `: ${halt.reason} (since ${time(halt.at)}).`)));
  box.hidden = halts.size === 0;
}

start(async ({ stream }) => {
  state.stream = stream;
  stream.halts(onHalts);

  // Account bar.
  $("#account-select").addEventListener("change", (event) => selectAccount(event.target.value).catch((e) => fail(e)));
  $("#account-new-toggle").addEventListener("click", () => showAccountForm($("#account-form").hidden));
  $("#account-currency").addEventListener("change", (event) => {
    $("#account-cash").placeholder = event.target.value === "USD" ? "100,000" : "1,00,00,000";
  });
  onSubmit($("#account-form"), async (data) => {
    const body = { name: data.name || "Paper account", currency: data.currency, fill_model: data.fill_model };
    if (data.starting_cash) body.starting_cash = data.starting_cash.replaceAll(",", "").trim();
    const account = await api("/api/v1/accounts", { method: "POST", body, idempotent: true });
    await loadAccounts();
    showAccountForm(false);
    await selectAccount(account.id);
    $("#account-select").focus();
  });
  const reset = $("#account-reset");
  let disarm = null;
  reset.addEventListener("click", async () => {
    if (!state.account) return;
    if (reset.dataset.armed !== "true") {
      reset.dataset.armed = "true";
      reset.textContent = "Confirm reset: everything goes";
      disarm = setTimeout(() => { reset.dataset.armed = "false"; reset.textContent = "Reset account"; }, 5000);
      return;
    }
    clearTimeout(disarm);
    reset.dataset.armed = "false";
    reset.textContent = "Reset account";
    try {
      await api(accountPath("/reset"), { method: "POST" });
      await reloadAccount();
    } catch (error) {
      fail(error, reset.closest("section"));
    }
  });

  // Order book.
  $("#orders-open-only").addEventListener("change", renderOrders);
  $("#orders-cancel-all").addEventListener("click", cancelAll);
  onSubmit($("#modify-form"), submitModify);
  $("#modify-close").addEventListener("click", closeModify);

  // Ticket.
  const form = ticket();
  form.append(h("p", { id: "ticket-result", class: "hint", role: "status" }));
  onSubmit(form, placeOrder);
  form.addEventListener("input", (event) => {
    if (event.target.name === "instrument") {
      suggest(event.target.value.trim());
      debouncedInstrument(event.target.value);
    }
    if (event.target.name?.startsWith("leg") && event.target.name.endsWith(".instrument")) suggest(event.target.value.trim());
    previewSoon();
  });
  form.addEventListener("change", (event) => {
    if (event.target.name === "instrument") setTicketInstrument(event.target.value);
    if (["order_class", "type"].includes(event.target.name)) applyShape();
    if (event.target.name === "side") updateSubmitLabel();
    previewSoon();
  });
  $("#quote-bid").addEventListener("click", (event) => usePrice(event.currentTarget));
  $("#quote-ask").addEventListener("click", (event) => usePrice(event.currentTarget));
  const params = new URLSearchParams(location.search);
  if (params.get("instrument")) field("instrument").value = params.get("instrument");
  const debouncedInstrument = debounce((key) => setTicketInstrument(key), 400);
  applyShape();
  setTicketInstrument(value("instrument"));

  // Accounts last: the tables fill from REST, then follow the stream.
  const items = await loadAccounts();
  if (!items.length) showAccountForm(true);
  await selectAccount(chooseInitial(items));
});

function renderAll() {
  renderOrders();
  renderFills();
  renderPositions();
  if (!state.account) {
    $("#funds").replaceChildren();
    $("#margins").replaceChildren();
    $("#margin-detail").replaceChildren();
  }
}
