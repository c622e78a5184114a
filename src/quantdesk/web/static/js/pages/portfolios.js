// Portfolios: holdings, allocation and accounts; performance against a benchmark with the
// returns of every named period; transactions (list, add); imports previewed by a dry run
// (every bad line shown, nothing written until the file is clean); realised gains.
//
// Amounts and return figures are the API's decimal strings, shown in string arithmetic
// (`money`, `pct`).  Only the chart turns them into floats, to draw them.

import { api, ApiError } from "../api.js";
import { start } from "../shell.js";
import { $, $$, clearError, confirmAction, fail, h, money, notify, num, onSubmit, sign, svgImage } from "../ui.js";
import { createChart, LineSeries } from "../../vendor/lightweight-charts.mjs";

const BASE = "/api/v1/portfolios";
const TYPES = [
  "buy", "sell", "short_sell", "buy_to_cover", "dividend", "interest", "fee", "tax", "deposit",
  "withdrawal", "transfer_in", "transfer_out", "split", "bonus", "merger", "option_exercise",
  "option_assignment", "option_expiry", "futures_settlement",
];
const TRADE = ["instrument", "quantity", "price", "fees"];
// Which inputs each type takes (docs/portfolios.md, "Transactions").
const FIELDS = {
  buy: TRADE, sell: TRADE, short_sell: TRADE, buy_to_cover: TRADE,
  dividend: ["instrument", "amount", "price", "quantity", "tax", "fees"],
  interest: ["amount", "tax", "fees"],
  fee: ["amount"], tax: ["amount"], deposit: ["amount"], withdrawal: ["amount"],
  transfer_in: ["instrument", "quantity", "price"],
  transfer_out: ["instrument", "quantity", "to_account_id", "price"],
  split: ["instrument", "ratio"], bonus: ["instrument", "ratio"],
  merger: ["instrument", "new_instrument", "ratio"],
  option_exercise: ["instrument", "price", "quantity"],
  option_assignment: ["instrument", "price", "quantity"],
  option_expiry: ["instrument", "price", "quantity"],
  futures_settlement: ["instrument", "price"],
};
const PRICE_LABEL = {
  dividend: "Per share (instead of an amount)", transfer_in: "Cost per unit",
  transfer_out: "Price (leaving the portfolio)", option_exercise: "Close price (default 0)",
  option_assignment: "Close price (default 0)", option_expiry: "Close price (default 0)",
  futures_settlement: "Settlement price",
};
const HELP = {
  buy: "Opens a long lot; its cost includes the fees.",
  sell: "Closes long lots by the lot method.",
  short_sell: "Opens a short lot.",
  buy_to_cover: "Closes short lots.",
  dividend: "Income: a gross amount, or a price per share (quantity: default the quantity held).",
  interest: "Income in the portfolio's currency.",
  fee: "An expense.", tax: "An expense.",
  deposit: "Account cash (not measured by the returns).",
  withdrawal: "Account cash (not measured by the returns).",
  transfer_in: "Securities from outside, at their cost per unit.",
  transfer_out: "To another account (the lots move), or out of the portfolio at a price.",
  split: "New shares per old share: 2 for 2:1, 0.5 for 1:2.",
  bonus: "Extra shares per share held: 1 for 1:1.",
  merger: "The lots move to the new instrument, ratio new shares per old.",
  option_exercise: "Closes the option position; the delivery is its own buy or sell.",
  option_assignment: "Closes the option position; the delivery is its own buy or sell.",
  option_expiry: "Closes the option position at its price (default 0).",
  futures_settlement: "Closes the futures position at the settlement price.",
};
const PERIODS = {
  today: "Today", wtd: "Week to date", mtd: "Month to date", ytd: "Year to date",
  "1y": "1 year", "3y": "3 years", "5y": "5 years", max: "Since the start",
};
const TABS = ["overview", "performance", "transactions", "import", "gains"];

const state = {
  portfolios: [],
  current: null, // the portfolio shown
  tab: "overview",
  loaded: new Set(), // tabs loaded for the current portfolio and version
  txnCursor: null,
  txnFilter: {},
  preview: null, // what the last clean dry run checked
  chart: null,
};

// --- formatting ---------------------------------------------------------------------------

// A fraction as a decimal string ("0.0523") as a percentage ("5.23%"), in string arithmetic.
function pct(value, places = 2) {
  if (value === undefined || value === null || value === "") return "—";
  let text = String(value);
  if (/e/i.test(text)) return `${(Number(value) * 100).toFixed(places)}%`;
  const negative = text.startsWith("-");
  if (negative || text.startsWith("+")) text = text.slice(1);
  const [whole, fraction = ""] = text.split(".");
  const padded = fraction.padEnd(2, "0");
  const shifted = (whole + padded.slice(0, 2)).replace(/^0+(?=\d)/, "");
  const rest = padded.slice(2);
  return `${num((negative ? "-" : "") + shifted + (rest ? `.${rest}` : ""), { places })}%`;
}

const cur = () => state.current?.currency;
const amount = (value) => money(value, cur());
const signedAmount = (value) => h("span", { class: sign(value) }, amount(value));
const signedPct = (value) => h("span", { class: sign(value) }, pct(value));
const qty = (value) => num(value);
const today = () => new Date().toLocaleDateString("en-CA"); // YYYY-MM-DD, the local day
const accountName = (id) => state.current?.accounts.find((a) => a.id === id)?.name ?? "—";
const path = (suffix = "") => `${BASE}/${state.current.id}${suffix}`;

// Rows into a <tbody>: columns [{label, field, num, render(row)}]; cells carry data-field.
function rows(tbody, columns, items, { empty = "Nothing yet.", append = false, rowProps } = {}) {
  if (!append) tbody.replaceChildren();
  if (!items.length && !append) {
    tbody.append(h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, empty)));
    return;
  }
  for (const item of items) {
    const tr = h("tr", rowProps ? rowProps(item) : {});
    columns.forEach((column, i) => {
      const content = column.render ? column.render(item) : item[column.field];
      const props = { class: column.num ? "num" : column.class, dataset: column.field ? { field: column.field } : undefined };
      tr.append(i === 0 && column.head !== false ? h("th", { scope: "row", ...props }, content ?? "—") : h("td", props, content ?? "—"));
    });
    tbody.append(tr);
  }
}

// A <dl> of [label, value, field] pairs; `grouped` wraps each pair in a <div> (a row of figures).
function facts(dl, pairs, grouped = dl.classList.contains("pf-summary")) {
  dl.replaceChildren(...pairs.filter(Boolean).flatMap(([label, value, field]) => {
    const pair = [h("dt", {}, label), h("dd", { dataset: field ? { field } : undefined }, value ?? "—")];
    return grouped ? [h("div", {}, ...pair)] : pair;
  }));
}

function message(where, text) {
  where.replaceChildren(h("p", { class: "hint" }, text));
}

// --- portfolios -----------------------------------------------------------------------------

async function loadPortfolios() {
  const all = [];
  let cursor;
  do {
    const page = await api(BASE, { query: { limit: 500, cursor } });
    all.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  state.portfolios = all;
  const select = $("#pf-select");
  select.replaceChildren(...all.map((p) => h("option", { value: p.id }, `${p.name} (${p.currency})`)));
  const none = all.length === 0;
  $("#pf-empty").hidden = !none;
  $("#pf-body").hidden = none;
  $("#pf-pick").hidden = none;
  $(".pf-actions").hidden = none;
  if (none) $("#pf-create-box").open = true;
}

// A portfolio asked for by the address that is not in the user's list: the API says why
// (another user's portfolio is a 404, as one that does not exist) and nothing else is shown.
async function showMissing(id) {
  let text;
  try {
    await api(`${BASE}/${encodeURIComponent(id)}`);
    return false; // created meanwhile: it is the user's after all
  } catch (error) {
    if (!(error instanceof ApiError) || ![404, 422].includes(error.status)) throw error;
    text = `Portfolio not found (it does not exist or is not yours): ${error.message}.`;
  }
  state.current = null;
  const missing = $("#pf-missing");
  missing.textContent = text;
  missing.hidden = false;
  $("#pf-body").hidden = true;
  $(".pf-actions").hidden = true;
  const select = $("#pf-select");
  if (state.portfolios.length) {
    select.prepend(h("option", { value: "", disabled: true }, "Choose a portfolio"));
    select.value = "";
  }
  return true;
}

async function selectPortfolio(id, tab = state.tab) {
  const known = state.portfolios.find((p) => p.id === id) || state.portfolios[0];
  if (!known) {
    state.current = null;
    return;
  }
  $("#pf-missing").hidden = true;
  $("#pf-body").hidden = false;
  $(".pf-actions").hidden = false;
  $("#pf-select option[value='']")?.remove();
  state.current = await api(`${BASE}/${known.id}`);
  state.loaded.clear();
  state.preview = null;
  state.txnFilter = {};
  $("#pf-select").value = known.id;
  const p = state.current;
  $("#pf-meta").textContent = `${p.currency} · lot method ${p.method.toUpperCase()} · gains as ${p.jurisdiction}`;
  $("#pf-export").href = `${BASE}/${p.id}/export?format=csv`;
  const accountOptions = () => p.accounts.map((a) => h("option", { value: a.id }, a.name));
  $("#txn-account").replaceChildren(...accountOptions());
  $("#txn-to-account").replaceChildren(h("option", { value: "" }, "(out of the portfolio)"), ...accountOptions());
  $("#import-account").replaceChildren(h("option", { value: "" }, "as the file names (default: the first)"), ...accountOptions());
  $("#perf-benchmark").value ||= p.currency === "USD" ? "NASDAQ:AAPL" : "NSE:NIFTY 50";
  resetPreview();
  await showTab(TABS.includes(tab) ? tab : "overview");
}

function remember() {
  const url = new URL(location.href);
  if (state.current) url.searchParams.set("id", state.current.id);
  url.searchParams.set("tab", state.tab);
  history.replaceState(null, "", url);
}

// The data changed: every tab reloads when next shown (the current one now).
async function changed() {
  state.current = await api(`${BASE}/${state.current.id}`);
  state.loaded.clear();
  await loadTab(state.tab);
}

// --- tabs -------------------------------------------------------------------------------------

async function showTab(tab, focus = false) {
  state.tab = tab;
  for (const button of $$("[role=tab]")) {
    const selected = button.dataset.tab === tab;
    button.setAttribute("aria-selected", String(selected));
    button.tabIndex = selected ? 0 : -1;
    if (selected && focus) button.focus();
  }
  for (const panel of $$("[role=tabpanel]")) panel.hidden = panel.dataset.panel !== tab;
  remember();
  await loadTab(tab);
}

async function loadTab(tab) {
  if (!state.current || state.loaded.has(tab)) return;
  state.loaded.add(tab);
  const loaders = { overview: loadOverview, performance: loadPerformance, transactions: loadTransactions, import: async () => {}, gains: loadGains };
  try {
    await loaders[tab]();
  } catch (error) {
    state.loaded.delete(tab);
    fail(error);
  }
}

function wireTabs() {
  const tabs = $$("[role=tab]");
  tabs.forEach((button, i) => {
    button.addEventListener("click", () => showTab(button.dataset.tab));
    button.addEventListener("keydown", (event) => {
      const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
      if (event.key === "Home" || event.key === "End" || step) {
        event.preventDefault();
        const next = event.key === "Home" ? 0 : event.key === "End" ? tabs.length - 1 : (i + step + tabs.length) % tabs.length;
        showTab(tabs[next].dataset.tab, true);
      }
    });
  });
}

// --- overview: holdings, allocation, accounts -------------------------------------------------

const HOLDING_COLUMNS = [
  { label: "Instrument", field: "instrument" },
  { field: "quantity", num: true, render: (r) => qty(r.quantity) },
  { field: "average_cost", num: true, render: (r) => amount(r.average_cost) },
  { field: "cost_basis", num: true, render: (r) => amount(r.cost_basis) },
  { field: "price", num: true, render: (r) => (r.price === null ? "—" : `${num(r.price)}${r.currency !== cur() ? ` ${r.currency}` : ""}`) },
  { field: "market_value", num: true, render: (r) => amount(r.market_value) },
  { field: "unrealized_pnl", num: true, render: (r) => signedAmount(r.unrealized_pnl) },
  { field: "day_change", num: true, render: (r) => signedAmount(r.day_change) },
  { field: "weight", num: true, render: (r) => pct(r.weight) },
  { field: "realized_pnl", num: true, render: (r) => signedAmount(r.realized_pnl) },
  { field: "income", num: true, render: (r) => amount(r.income) },
];

async function loadOverview() {
  const [held, allocation] = await Promise.all([api(path("/holdings")), api(path("/allocation"))]);
  $("#holdings-asof").textContent = `as of ${held.as_of}, in ${held.currency}`;
  facts($("#holdings-summary"), [
    ["Market value", amount(held.market_value), "market_value"],
    ["Cost basis", amount(held.cost_basis), "cost_basis"],
    ["Unrealised P&L", signedAmount(held.unrealized_pnl), "unrealized_pnl"],
    /[1-9]/.test(held.fx_effect) && ["of which currency", signedAmount(held.fx_effect), "fx_effect"],
    ["Realised P&L", signedAmount(held.realized_pnl), "realized_pnl"],
    ["Income", amount(held.income), "income"],
    ["Fees", amount(held.fees), "fees"],
    ["Taxes", amount(held.taxes), "taxes"],
  ]);
  const open = held.items.filter((item) => /[1-9]/.test(item.quantity));
  rows($("#holdings tbody"), HOLDING_COLUMNS, open, {
    empty: "No holding yet: add a transaction or import a file.",
    rowProps: (r) => ({ dataset: { instrument: r.instrument } }),
  });
  const cash = new Map(held.cash.map((c) => [c.account_id, c.amount]));
  $("#cash-line").textContent = held.cash.length
    ? `Cash from every transaction (deposits included): ${held.cash.map((c) => `${accountName(c.account_id)} ${amount(c.amount)}`).join(" · ")}`
    : "";
  rows($("#accounts tbody"), [
    { field: "name" },
    { field: "kind", render: (a) => (a.trading_account_id ? `${a.kind} (trading account ${a.trading_account_id.slice(0, 8)})` : a.kind) },
    { field: "method", render: (a) => (a.method ? a.method.toUpperCase() : "the portfolio's") },
    { field: "cash", num: true, render: (a) => amount(cash.get(a.id) ?? "0") },
  ], state.current.accounts);
  state.allocation = allocation;
  await drawAllocation();
  const instruments = held.items.map((item) => item.instrument);
  $("#txn-instruments").replaceChildren(...instruments.map((key) => h("option", { value: key })));
}

async function drawAllocation() {
  const by = $("#allocation-by").value;
  const slices = state.allocation?.[by] ?? [];
  rows($("#allocation tbody"), [
    { field: "key" },
    { field: "market_value", num: true, render: (s) => amount(s.market_value) },
    { field: "weight", num: true, render: (s) => pct(s.weight) },
    {
      class: "pf-bar-cell",
      render: (s) => {
        const bar = h("span", { class: "pf-bar" });
        bar.style.width = `${Math.max(0, Math.min(100, Number(s.weight) * 100))}%`;
        return bar;
      },
    },
  ], slices, { empty: "Nothing held." });
  const box = $("#allocation-figure");
  if (!slices.length) {
    box.replaceChildren();
    return;
  }
  try {
    const svg = await api(path("/allocation.svg"), { query: { by }, headers: { Accept: "image/svg+xml" } });
    box.replaceChildren(svgImage(svg, `Allocation by ${by.replace("_", " ")}`));
  } catch (error) {
    message(box, error.describe?.() ?? String(error));
  }
}

async function loadPaperAccounts() {
  const select = $("#account-paper");
  if (select.options.length) return;
  const page = await api("/api/v1/accounts", { query: { limit: 200 } });
  select.replaceChildren(...page.items.map((a) => h("option", { value: a.id }, `${a.name} (${a.currency})`)));
  if (!page.items.length) select.append(h("option", { value: "" }, "no paper trading account"));
}

// --- performance ------------------------------------------------------------------------------

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function chartColours() {
  return {
    layout: { background: { color: cssVar("--panel") }, textColor: cssVar("--text"), attributionLogo: false },
    grid: { vertLines: { color: cssVar("--border") }, horzLines: { color: cssVar("--border") } },
  };
}

function ensureChart() {
  if (state.chart) return state.chart;
  const box = $("#perf-chart");
  const chart = createChart(box, {
    autoSize: true,
    ...chartColours(),
    rightPriceScale: { borderVisible: false },
    timeScale: { borderVisible: false },
  });
  const percent = { type: "custom", formatter: (p) => `${p.toFixed(2)}%`, minMove: 0.01 };
  const grouping = state.current?.currency === "INR" ? "en-IN" : "en-US";
  const whole = { type: "custom", minMove: 1, formatter: (p) => Math.round(p).toLocaleString(grouping) };
  const portfolio = chart.addSeries(LineSeries, { color: cssVar("--accent"), lineWidth: 2, priceFormat: percent, priceLineVisible: false, title: "Portfolio" }, 0);
  const benchmark = chart.addSeries(LineSeries, { color: cssVar("--muted"), lineWidth: 2, priceFormat: percent, priceLineVisible: false, title: "Benchmark" }, 0);
  const value = chart.addSeries(LineSeries, { color: cssVar("--up"), lineWidth: 2, priceFormat: whole, priceLineVisible: false, title: "Value" }, 1);
  const invested = chart.addSeries(LineSeries, { color: cssVar("--muted"), lineWidth: 1, lineStyle: 2, priceFormat: whole, priceLineVisible: false, title: "Invested" }, 1);
  chart.panes()[0].setStretchFactor(0.62);
  chart.panes()[1]?.setStretchFactor(0.38);
  const recolour = () => {
    chart.applyOptions(chartColours());
    portfolio.applyOptions({ color: cssVar("--accent") });
    benchmark.applyOptions({ color: cssVar("--muted") });
    value.applyOptions({ color: cssVar("--up") });
    invested.applyOptions({ color: cssVar("--muted") });
  };
  new MutationObserver(recolour).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", recolour);
  state.chart = { chart, portfolio, benchmark, value, invested };
  return state.chart;
}

const isoDay = (seconds) => new Date(seconds * 1000).toISOString().slice(0, 10);

function addDays(day, days) {
  const d = new Date(`${day}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + days);
  return d.toISOString().slice(0, 10);
}

// The benchmark's price return from its last close before the range (else its first).
async function benchmarkLine(instrument, from, to) {
  const bars = await api(`/api/v1/market/bars/${encodeURIComponent(instrument)}`, {
    query: { timeframe: "1d", from: addDays(from, -10), to, limit: 100000 },
  });
  const days = bars.t.map(isoDay);
  let base = days.findLastIndex((d) => d < from);
  if (base < 0) base = 0;
  const first = Number(bars.c[base]);
  const out = [];
  days.forEach((day, i) => {
    if (day >= from) out.push({ time: day, value: (Number(bars.c[i]) / first - 1) * 100 });
  });
  return out;
}

async function loadPerformance() {
  const [periods] = await Promise.all([api(path("/performance/periods")), drawPerformance()]);
  rows($("#periods tbody"), [
    { field: "period", render: (p) => PERIODS[p.period] ?? p.period },
    { field: "from" },
    { field: "to" },
    { field: "start_value", num: true, render: (p) => amount(p.start_value) },
    { field: "end_value", num: true, render: (p) => amount(p.end_value) },
    { field: "net_flows", num: true, render: (p) => amount(p.net_flows) },
    { field: "net_performance", num: true, render: (p) => signedAmount(p.net_performance) },
    { field: "twr", num: true, render: (p) => signedPct(p.twr) },
    { field: "twr_annualized", num: true, render: (p) => (p.annualized ? signedPct(p.twr_annualized) : "—") },
    { field: "xirr", num: true, render: (p) => signedPct(p.xirr) },
    { field: "modified_dietz", num: true, render: (p) => signedPct(p.modified_dietz) },
    { field: "roai", num: true, render: (p) => signedPct(p.roai) },
  ], periods.periods, { rowProps: (p) => ({ dataset: { period: p.period } }) });
}

async function drawPerformance() {
  const period = $("#perf-period").value;
  const instrument = $("#perf-benchmark").value.trim().toUpperCase();
  const perf = await api(path("/performance"), { query: { period } });
  const range = { from: perf.from, to: perf.to };
  $("#perf-range").textContent = `${perf.from} to ${perf.to} (${perf.days} days)`;
  const [series, bench, line] = await Promise.allSettled([
    api(path("/series"), { query: range }),
    api(path("/benchmark"), { query: { instrument, period } }),
    benchmarkLine(instrument, perf.from, perf.to),
  ]);
  facts($("#perf-facts"), [
    ["Start value", amount(perf.start_value)],
    ["End value", amount(perf.end_value), "end_value"],
    ["Net flows", amount(perf.net_flows)],
    ["Net performance", signedAmount(perf.net_performance)],
    ["TWR", signedPct(perf.twr), "twr"],
    perf.annualized && ["TWR p.a.", signedPct(perf.twr_annualized)],
    ["XIRR (money-weighted, p.a.)", signedPct(perf.xirr), "xirr"],
    ["Modified Dietz", signedPct(perf.modified_dietz)],
    ["ROAI", signedPct(perf.roai)],
  ]);
  if (bench.status === "fulfilled") {
    const b = bench.value;
    facts($("#bench-facts"), [
      ["Benchmark", b.benchmark],
      ["Benchmark return", signedPct(b.benchmark_twr), "benchmark_twr"],
      ["Excess return", signedPct(b.excess_return), "excess_return"],
      ["Same flows in the benchmark", amount(b.benchmark_value), "benchmark_value"],
      ["Benchmark XIRR", signedPct(b.benchmark_xirr)],
      ["Beta", b.beta === null ? "—" : num(b.beta, { places: 2 }), "beta"],
      ["Tracking error (p.a.)", pct(b.tracking_error)],
      ["Sessions compared", String(b.observations)],
    ]);
  } else {
    facts($("#bench-facts"), [["Benchmark", bench.reason?.describe?.() ?? String(bench.reason)]]);
  }
  const chart = ensureChart();
  const box = $("#perf-chart");
  if (series.status !== "fulfilled") {
    box.dataset.points = "0";
    throw series.reason;
  }
  const s = series.value;
  const points = (values, scale = 1) => s.dates
    .map((time, i) => (values[i] === null ? null : { time, value: Number(values[i]) * scale }))
    .filter(Boolean);
  const twr = points(s.cumulative_twr, 100);
  chart.portfolio.setData(twr);
  chart.value.setData(points(s.market_value));
  chart.invested.setData(points(s.net_contributions));
  const benchmarkPoints = line.status === "fulfilled" ? line.value : [];
  chart.benchmark.setData(benchmarkPoints);
  chart.benchmark.applyOptions({ title: instrument });
  chart.chart.timeScale().fitContent();
  box.dataset.points = String(twr.length);
  box.dataset.benchmarkPoints = String(benchmarkPoints.length);
  rows($("#contributions tbody"), [
    { field: "instrument" },
    { field: "contribution", num: true, render: (c) => signedPct(c.contribution) },
  ], perf.contributions, { empty: "Nothing held in the period." });
}

// --- transactions -----------------------------------------------------------------------------

const TXN_COLUMNS = [
  { field: "date", head: false },
  { field: "type", render: (t) => t.type.replaceAll("_", " ") },
  { field: "instrument", render: (t) => t.instrument ?? "—" },
  { field: "quantity", num: true, render: (t) => (/[1-9]/.test(t.quantity) ? qty(t.quantity) : "—") },
  { field: "price", num: true, render: (t) => (/[1-9]/.test(t.price) ? num(t.price) : "—") },
  { field: "fees", num: true, render: (t) => (/[1-9]/.test(t.fees) ? num(t.fees) : "—") },
  { field: "amount", num: true, render: (t) => (t.amount === null ? (t.ratio ? `ratio ${num(t.ratio)}` : "—") : num(t.amount)) },
  { field: "currency" },
  { field: "account", render: (t) => accountName(t.account_id) },
  { field: "source" },
  {
    render: (t) => h("button", {
      type: "button", class: "link danger", "aria-label": `Delete the ${t.type} of ${t.date}${t.instrument ? ` ${t.instrument}` : ""}`,
      onclick: () => deleteTransaction(t),
    }, "Delete"),
  },
];

async function loadTransactions(append = false) {
  const page = await api(path("/transactions"), {
    query: { limit: 100, cursor: append ? state.txnCursor : undefined, ...state.txnFilter },
  });
  state.txnCursor = page.next_cursor;
  rows($("#transactions tbody"), TXN_COLUMNS, page.items, {
    append, empty: "No transaction yet.", rowProps: (t) => ({ dataset: { id: t.id } }),
  });
  $("#txn-more").hidden = !page.next_cursor;
}

async function deleteTransaction(t) {
  if (!(await confirmAction(`Delete the ${t.type} of ${t.date}${t.instrument ? ` (${t.instrument})` : ""}?`, "Delete"))) return;
  try {
    await api(path(`/transactions/${t.id}`), { method: "DELETE", query: { version: t.version } });
    notify("Transaction deleted.");
    await changed();
  } catch (error) {
    fail(error);
  }
}

function showFields() {
  const type = $("#txn-type").value;
  const wanted = new Set(FIELDS[type]);
  for (const label of $$("#txn-form label[data-field]")) {
    const on = wanted.has(label.dataset.field);
    label.hidden = !on;
    for (const input of label.querySelectorAll("input, select")) input.disabled = !on;
  }
  $("#txn-form [data-price-label]").textContent = PRICE_LABEL[type] ?? "Price";
  $("#txn-instrument").required = ["buy", "sell", "short_sell", "buy_to_cover"].includes(type);
  $("#txn-help").textContent = HELP[type] ?? "";
}

function wireTransactionForm() {
  $("#txn-type").replaceChildren(...TYPES.map((t) => h("option", { value: t }, t.replaceAll("_", " "))));
  $("#txn-filter-type").append(...TYPES.map((t) => h("option", { value: t }, t.replaceAll("_", " "))));
  $("#txn-date").value = today();
  $("#txn-type").addEventListener("change", showFields);
  showFields();
  onSubmit($("#txn-form"), async (data, form) => {
    const body = { ...data };
    for (const key of ["instrument", "new_instrument"]) if (body[key]) body[key] = body[key].trim().toUpperCase();
    const made = await api(path("/transactions"), { method: "POST", body, idempotent: true });
    notify(`Recorded: ${made.type.replaceAll("_", " ")} ${made.instrument ?? ""} ${/[1-9]/.test(made.quantity) ? qty(made.quantity) : ""}`.trim());
    for (const name of ["quantity", "price", "fees", "amount", "tax", "ratio", "note", "external_id", "fx_rate"]) {
      if (form.elements[name]) form.elements[name].value = "";
    }
    await changed();
  });
  let timer;
  $("#txn-instrument").addEventListener("input", () => {
    clearTimeout(timer);
    const q = $("#txn-instrument").value.trim();
    if (q.length < 2) return;
    timer = setTimeout(async () => {
      try {
        const page = await api("/api/v1/instruments", { query: { q, limit: 15 } });
        $("#txn-instruments").replaceChildren(...page.items.map((i) => h("option", { value: i.key }, i.name)));
      } catch { /* suggestions only */ }
    }, 200);
  });
  onSubmit($("#txn-filter"), async ({ type, instrument }) => {
    state.txnFilter = { type, instrument: instrument?.trim().toUpperCase() };
    await loadTransactions();
  });
  $("#txn-more").addEventListener("click", () => loadTransactions(true).catch((e) => fail(e)));
}

// --- import: a dry run first, the real import only of what it checked -----------------------

function importRequest(dryRun) {
  const text = $("#import-text").value;
  const format = $("#import-format").value;
  const account = $("#import-account").value;
  const body = new FormData();
  const type = format === "ghostfolio" ? "application/json" : "text/csv";
  body.append("file", new Blob([text], { type }), format === "ghostfolio" ? "import.json" : "import.csv");
  return {
    key: JSON.stringify([text, format, account]),
    options: { method: "POST", body, query: { format, dry_run: dryRun ? "true" : undefined, account_id: account || undefined } },
  };
}

function resetPreview(status = "") {
  state.preview = null;
  $("#import-commit").disabled = true;
  $("#import-commit").textContent = "Import";
  $("#import-status").textContent = status;
  for (const id of ["#preview-errors", "#preview-skipped", "#preview-rows"]) $(id).hidden = true;
  $("#preview-empty").hidden = false;
}

function showProblems(error) {
  const problems = error instanceof ApiError && Array.isArray(error.problem.errors) ? error.problem.errors : null;
  if (!problems || !problems.some((p) => "line" in p)) return false;
  $("#preview-empty").hidden = true;
  $("#preview-errors").hidden = false;
  rows($("#import-errors tbody"), [
    { field: "line", num: true, render: (p) => String(p.line ?? "—") },
    { field: "field", render: (p) => p.field ?? "—" },
    { field: "message", render: (p) => p.message ?? p.msg ?? "" },
  ], problems, { rowProps: (p) => ({ dataset: { line: String(p.line) }, class: "pf-bad" }) });
  const total = error.problem.detail?.match(/^(\d+) line/)?.[1];
  $("#import-status").textContent = `${total ?? problems.length} line(s) cannot be imported: fix them and preview again. Nothing was written.`;
  return true;
}

function wireImport() {
  $("#import-file").addEventListener("change", async () => {
    const file = $("#import-file").files[0];
    if (!file) return;
    if (file.name.toLowerCase().endsWith(".json")) $("#import-format").value = "ghostfolio";
    $("#import-text").value = await file.text();
    resetPreview("Loaded: preview it to check every line.");
  });
  for (const id of ["#import-text", "#import-format", "#import-account"]) {
    $(id).addEventListener("input", () => {
      if (state.preview) resetPreview("Changed since the preview: preview again.");
    });
  }
  const form = $("#import-form");
  onSubmit(form, async () => {
    resetPreview("Checking…");
    if (!$("#import-text").value.trim()) {
      resetPreview("Choose a file or paste its contents first.");
      return;
    }
    const { key, options } = importRequest(true);
    let result;
    try {
      result = await api(path("/imports"), options);
    } catch (error) {
      $("#import-status").textContent = "";
      if (!showProblems(error)) throw error;
      return;
    }
    $("#preview-empty").hidden = true;
    $("#preview-rows").hidden = false;
    rows($("#import-rows tbody"), [
      { field: "date", head: false },
      { field: "type", render: (t) => t.type.replaceAll("_", " ") },
      { field: "instrument", render: (t) => t.instrument ?? "—" },
      { field: "quantity", num: true, render: (t) => qty(t.quantity) },
      { field: "price", num: true, render: (t) => num(t.price) },
      { field: "fees", num: true, render: (t) => num(t.fees) },
      { field: "amount", num: true, render: (t) => num(t.amount) },
    ], result.transactions, { empty: "Nothing new to create." });
    $("#preview-skipped").hidden = !result.skipped.length;
    rows($("#import-skipped tbody"), [
      { field: "line", num: true, render: (s) => String(s.line) },
      { field: "reason" },
    ], result.skipped);
    const skipped = result.skipped.length ? `, ${result.skipped.length} already there (skipped)` : "";
    if (result.created > 0) {
      state.preview = key;
      $("#import-commit").disabled = false;
      $("#import-commit").textContent = `Import ${result.created} transaction${result.created === 1 ? "" : "s"}`;
      $("#import-status").textContent = `All ${result.rows} line(s) are valid: ${result.created} to create${skipped}.`;
    } else {
      $("#import-status").textContent = `Nothing to import: ${result.rows} line(s)${skipped}.`;
    }
  });
  $("#import-commit").addEventListener("click", async () => {
    const { key, options } = importRequest(false);
    if (state.preview !== key) {
      resetPreview("Changed since the preview: preview again.");
      return;
    }
    const button = $("#import-commit");
    button.disabled = true;
    clearError(form);
    try {
      const result = await api(path("/imports"), options);
      resetPreview(`Imported ${result.created} transaction(s)${result.skipped.length ? `, skipped ${result.skipped.length}` : ""}.`);
      notify(`Imported ${result.created} transaction(s).`);
      $("#import-text").value = "";
      $("#import-file").value = "";
      await changed();
    } catch (error) {
      if (!showProblems(error)) fail(error, form);
      button.disabled = true;
      state.preview = null;
    }
  });
}

// --- realised gains ---------------------------------------------------------------------------

async function loadGains() {
  const data = new FormData($("#gains-form"));
  const query = { from: data.get("from") || undefined, to: data.get("to") || undefined };
  const gains = await api(path("/gains"), { query });
  const csv = new URLSearchParams({ format: "csv" });
  if (query.from) csv.set("from", query.from);
  if (query.to) csv.set("to", query.to);
  $("#gains-csv").href = `${path("/gains")}?${csv}`;
  facts($("#gains-facts"), [
    ["Realised P&L", signedAmount(gains.realized_pnl), "realized_pnl"],
    ["Short term", signedAmount(gains.short_term), "short_term"],
    ["Long term", signedAmount(gains.long_term), "long_term"],
    ["Long term after", `${gains.long_term_after_months} months (${gains.jurisdiction})`],
  ]);
  rows($("#gains-years tbody"), [
    { field: "financial_year" },
    { field: "short_term", num: true, render: (y) => signedAmount(y.short_term) },
    { field: "long_term", num: true, render: (y) => signedAmount(y.long_term) },
    { field: "total", num: true, render: (y) => signedAmount(y.total) },
  ], gains.by_financial_year, { empty: "No sale in the range." });
  const lots = gains.sales.flatMap((sale) => sale.lots.map((lot) => ({ ...lot, sale })));
  rows($("#gains-sales tbody"), [
    { field: "date", head: false, render: (l) => l.sale.date },
    { field: "type", render: (l) => l.sale.type.replaceAll("_", " ") },
    { field: "instrument", render: (l) => l.sale.instrument },
    { field: "opened" },
    { field: "quantity", num: true, render: (l) => qty(l.quantity) },
    { field: "proceeds", num: true, render: (l) => amount(l.proceeds) },
    { field: "cost", num: true, render: (l) => amount(l.cost) },
    { field: "realized_pnl", num: true, render: (l) => signedAmount(l.realized_pnl) },
    { field: "holding_days", num: true, render: (l) => String(l.holding_days) },
    { field: "term", render: (l) => h("span", { class: `badge term-${l.term}` }, l.term) },
    { field: "financial_year" },
  ], lots, { empty: "No sale in the range." });
}

// --- the page ---------------------------------------------------------------------------------

start(async () => {
  wireTabs();
  wireTransactionForm();
  wireImport();
  const params = new URLSearchParams(location.search);
  state.tab = TABS.includes(params.get("tab")) ? params.get("tab") : "overview";

  $("#pf-select").addEventListener("change", () => selectPortfolio($("#pf-select").value).catch((e) => fail(e)));
  onSubmit($("#pf-create"), async (data, form) => {
    const made = await api(BASE, { method: "POST", body: data, idempotent: true });
    form.reset();
    $("#pf-create-box").open = false;
    await loadPortfolios();
    await selectPortfolio(made.id, "overview");
    notify(`Portfolio “${made.name}” created.`);
  });
  $("#pf-delete").addEventListener("click", async () => {
    const p = state.current;
    if (!p || !(await confirmAction(`Delete the portfolio “${p.name}” and all its transactions?`, "Delete"))) return;
    try {
      await api(`${BASE}/${p.id}`, { method: "DELETE" });
      notify(`Portfolio “${p.name}” deleted.`);
      await loadPortfolios();
      await selectPortfolio(state.portfolios[0]?.id);
    } catch (error) {
      fail(error);
    }
  });
  $("#allocation-by").addEventListener("change", () => drawAllocation().catch((e) => fail(e)));
  $("#account-kind").addEventListener("change", async () => {
    const paper = $("#account-kind").value === "paper";
    $("#account-paper-label").hidden = !paper;
    $("#account-paper").disabled = !paper;
    if (paper) await loadPaperAccounts().catch((e) => fail(e, $("#account-form")));
  });
  onSubmit($("#account-form"), async (data, form) => {
    await api(path("/accounts"), { method: "POST", body: data });
    form.reset();
    $("#account-paper-label").hidden = true;
    $("#account-paper").disabled = true;
    await selectPortfolio(state.current.id, state.tab);
  });
  onSubmit($("#perf-form"), async () => {
    await drawPerformance();
  });
  onSubmit($("#gains-form"), loadGains);

  const instruments = await api("/api/v1/instruments", { query: { type: "index", limit: 50 } }).catch(() => ({ items: [] }));
  $("#benchmark-list").replaceChildren(...instruments.items.map((i) => h("option", { value: i.key }, i.name)));

  await loadPortfolios();
  const wanted = params.get("id");
  if (wanted && !state.portfolios.some((p) => p.id === wanted)) {
    if (await showMissing(wanted)) return;
    await loadPortfolios();
  }
  if (state.portfolios.length) await selectPortfolio(wanted, state.tab);
});
