// Risk: VaR, expected shortfall and the other measures of a portfolio (its daily
// time-weighted returns) or of a paper trading account (its positions over their bars);
// the F&O book's scenario grid (spot x IV, full revaluation and the Greeks approximation);
// a portfolio's optimised weights and the trades that would get there, which can be sent to
// a paper trading account as market orders once the user confirms them.
//
// Return figures and weights arrive as JSON numbers (fractions) and are shown as
// percentages; money (scenario P&L, VaR of a book, trade values) as the API's decimal strings.

import { api, ApiError } from "../api.js";
import { start } from "../shell.js";
import { $, confirmAction, fail, h, money, num, onSubmit, sign, svgImage } from "../ui.js";

const state = {
  source: null,
  currency: "INR",
  scenarios: null,
  accounts: [], // the user's paper trading accounts: where the trades can be sent
  optimised: null, // {id, trades}: the optimisation answer shown
  batches: new Map(), // "answer id|account id" -> the orders of those trades in that account
};
let answers = 0;

const fpct = (x, places = 2) => {
  if (x === null || x === undefined) return "—";
  const text = (x * 100).toFixed(places);
  return `${/^-[0.]+$/.test(text) ? text.slice(1) : text}%`;
};
const ratio = (x) => (x === null || x === undefined ? "—" : x.toFixed(2));
const signedMoney = (value) => h("span", { class: sign(value) }, money(value, state.currency));
const move = (x) => {
  const v = Math.round(x * 1000) / 10;
  return `${v > 0 ? "+" : v < 0 ? "−" : "±"}${Math.abs(v)}%`;
};

function facts(dl, pairs) {
  const grouped = dl.classList.contains("rk-summary");
  dl.replaceChildren(...pairs.filter(Boolean).flatMap(([label, value, field]) => {
    const pair = [h("dt", {}, label), h("dd", { dataset: field ? { field } : undefined }, value ?? "—")];
    return grouped ? [h("div", {}, ...pair)] : pair;
  }));
}

function say(box, text) {
  box.textContent = text;
  box.hidden = !text;
}

const describe = (error) => {
  const text = typeof error?.describe === "function" ? error.describe() : String(error?.message || error);
  return text.charAt(0).toUpperCase() + text.slice(1);
};
// 0.95 -> "95%", 0.975 -> "97.5%"
const level = (x) => `${Math.round(x * 1000) / 10}%`;

// --- sources ----------------------------------------------------------------------------------

async function all(path) {
  const items = [];
  let cursor;
  do {
    const page = await api(path, { query: { limit: path.includes("portfolios") ? 500 : 200, cursor } });
    items.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);
  return items;
}

async function loadSources() {
  const [portfolios, accounts] = await Promise.all([all("/api/v1/portfolios"), all("/api/v1/accounts").catch(() => [])]);
  const select = $("#risk-source");
  const group = (label, kind, items) => (items.length
    ? h("optgroup", { label }, ...items.map((item) => h("option", {
      value: `${kind}:${item.id}`, dataset: { currency: item.currency },
    }, `${item.name} (${item.currency})`)))
    : null);
  select.replaceChildren(...[group("Portfolios", "portfolio", portfolios), group("Paper trading accounts", "account", accounts)].filter(Boolean));
  state.accounts = accounts;
  $("#opt-account").replaceChildren(...accounts.map((a) => h("option", { value: a.id }, `${a.name} (${a.currency})`)));
  const none = !portfolios.length && !accounts.length;
  $("#risk-empty").hidden = !none;
  return !none;
}

function currentSource() {
  const select = $("#risk-source");
  const [kind, id] = select.value.split(":");
  state.currency = select.selectedOptions[0]?.dataset.currency || "INR";
  return { kind, id };
}

function remember() {
  const url = new URL(location.href);
  url.searchParams.set("source", $("#risk-source").value);
  history.replaceState(null, "", url);
}

// A source asked for by the address that is not the user's: the API says so (another
// user's portfolio or account is a 404, as one that does not exist), and nothing is measured.
async function showMissing(wanted) {
  const [kind, id = ""] = wanted.split(":");
  const url = kind === "account" ? `/api/v1/accounts/${encodeURIComponent(id)}` : `/api/v1/portfolios/${encodeURIComponent(id)}`;
  let text;
  try {
    await api(url);
    return false; // created meanwhile
  } catch (error) {
    if (!(error instanceof ApiError) || ![404, 422].includes(error.status)) throw error;
    const what = kind === "account" ? "Paper trading account" : "Portfolio";
    text = `${what} not found (it does not exist or is not yours): ${error.message}.`;
  }
  const missing = $("#risk-missing");
  missing.textContent = text;
  missing.hidden = false;
  const select = $("#risk-source");
  select.prepend(h("option", { value: "", disabled: true }, "Choose a portfolio or account"));
  select.value = "";
  return true;
}

// --- measures ---------------------------------------------------------------------------------

async function loadMeasures() {
  const { kind, id } = state.source;
  const data = new FormData($("#risk-form"));
  const query = {
    confidence: data.get("confidence"),
    horizon_days: data.get("horizon_days"),
    lookback_days: data.get("lookback_days"),
  };
  const url = kind === "portfolio" ? `/api/v1/portfolios/${id}/risk` : `/api/v1/risk/accounts/${id}/measures`;
  const body = $("#var-table tbody");
  let m;
  try {
    m = await api(url, { query });
  } catch (error) {
    body.replaceChildren(h("tr", {}, h("td", { colspan: 3, class: "empty" }, describe(error))));
    $("#var-basis").textContent = "";
    facts($("#measures"), []);
    $("#components-box").hidden = true;
    say($("#var-skipped"), "");
    return;
  }
  $("#var-basis").textContent = `${level(m.confidence)} over ${m.horizon_days} day${m.horizon_days === 1 ? "" : "s"}, ${m.observations} daily returns`;
  const methods = [
    ["historical", "Historical", m.var_historical, m.cvar_historical],
    ["parametric", "Parametric (normal)", m.var_parametric, m.cvar_parametric],
    ["cornish_fisher", "Cornish-Fisher", m.var_cornish_fisher, null],
    ["monte_carlo", "Monte Carlo", m.var_monte_carlo, m.cvar_monte_carlo],
  ];
  body.replaceChildren(...methods.map(([key, label, v, es]) => h("tr", { dataset: { method: key } },
    h("th", { scope: "row" }, label),
    h("td", { class: "num", dataset: { field: "var" } }, fpct(v)),
    h("td", { class: "num", dataset: { field: "cvar" } }, fpct(es)))));
  facts($("#measures"), [
    ["Volatility (annual)", fpct(m.volatility), "volatility"],
    ["Downside deviation", fpct(m.downside_deviation), "downside_deviation"],
    ["Annual return (CAGR)", h("span", { class: m.annual_return > 0 ? "up" : m.annual_return < 0 ? "down" : "" }, fpct(m.annual_return)), "annual_return"],
    ["Sharpe ratio", ratio(m.sharpe), "sharpe"],
    ["Sortino ratio", ratio(m.sortino), "sortino"],
    ["Calmar ratio", ratio(m.calmar), "calmar"],
    ["Maximum drawdown", fpct(m.max_drawdown), "max_drawdown"],
    ["Longest drawdown", `${m.drawdown_duration} trading days`, "drawdown_duration"],
    m.beta !== null && ["Beta", ratio(m.beta), "beta"],
    m.correlation !== null && ["Correlation", ratio(m.correlation), "correlation"],
    ["Observations", String(m.observations), "observations"],
  ]);
  const components = m.components || [];
  $("#components-box").hidden = !components.length;
  $("#components tbody").replaceChildren(...components.map((c) => h("tr", {},
    h("th", { scope: "row" }, c.asset),
    h("td", { class: "num" }, fpct(c.weight)),
    h("td", { class: "num" }, fpct(c.marginal_var)),
    h("td", { class: "num" }, fpct(c.component_var)),
    h("td", { class: "num" }, fpct(c.percent_of_var)))));
  say($("#var-skipped"), m.skipped?.length ? `Left out: ${m.skipped.join("; ")}` : "");
}

// --- scenarios --------------------------------------------------------------------------------

function scenarioQuery() {
  const data = new FormData($("#scen-form"));
  const days = String(data.get("days") || "0").split(/[\s,;]+/).filter(Boolean).map(Number);
  if (days.some((d) => !Number.isFinite(d) || d < 0)) throw new Error("Days forward: numbers of days, such as 0, 7");
  return {
    underlying_range: Number(data.get("underlying_range")) / 100,
    underlying_points: data.get("underlying_points"),
    iv_range: Number(data.get("iv_range")) / 100,
    iv_points: data.get("iv_points"),
    days: days.length ? days : [0],
  };
}

async function loadScenarios() {
  const { kind, id } = state.source;
  const query = scenarioQuery();
  const base = kind === "portfolio" ? `/api/v1/portfolios/${id}/scenarios` : `/api/v1/risk/accounts/${id}/scenarios`;
  state.scenarios = null;
  $("#scen-basis").textContent = "";
  try {
    state.scenarios = await api(base, { query });
  } catch (error) {
    $("#scen-result").hidden = true;
    say($("#scen-message"), describe(error));
    return;
  }
  say($("#scen-message"), "");
  $("#scen-result").hidden = false;
  drawScenarios();
  const figure = $("#scen-figure");
  figure.replaceChildren();
  if (kind === "account") {
    try {
      const svg = await api(`${base}.svg`, { query, headers: { Accept: "image/svg+xml" } });
      figure.replaceChildren(svgImage(svg, "The scenario grid as a heat map"));
    } catch (error) {
      figure.replaceChildren(h("p", { class: "hint" }, describe(error)));
    }
  }
}

function heat(value, largest) {
  const size = Math.abs(Number(value));
  if (!largest || !size) return "heat-0";
  const level = Math.min(5, Math.max(1, Math.ceil((size / largest) * 5)));
  return `heat-${sign(value) === "down" ? "down" : "up"}-${level}`;
}

function drawScenarios() {
  const s = state.scenarios;
  if (!s) return;
  const view = $("#scen-view").value;
  const grid = s[view];
  const largest = Math.max(0, ...grid.flat(2).map((v) => Math.abs(Number(v))));
  const worst = s.worst;
  const mc = s.monte_carlo;
  $("#scen-basis").textContent = `${s.underlyings.join(", ")} · ${s.underlying_moves.length} × ${s.iv_changes.length} scenarios${s.days.length > 1 ? ` × ${s.days.length} horizons` : ""}`;
  facts($("#scen-facts"), [
    ["Book value now", money(s.value, state.currency), "value"],
    ["Worst case", h("span", {}, signedMoney(worst.pnl), ` at spot ${move(worst.underlying_move)}, IV ${move(worst.iv_change)}${worst.days ? `, +${worst.days} d` : ""}`), "worst"],
    ["Best case", h("span", {}, signedMoney(s.best.pnl), ` at spot ${move(s.best.underlying_move)}, IV ${move(s.best.iv_change)}${s.best.days ? `, +${s.best.days} d` : ""}`), "best"],
    mc && [`Monte Carlo VaR (${level(mc.confidence)}, ${mc.days} d)`, money(mc.var, state.currency), "mc_var"],
    mc && ["Expected shortfall", money(mc.cvar, state.currency), "mc_cvar"],
    mc && ["Volatilities", Object.entries(mc.volatilities).map(([k, v]) => `${k} ${fpct(v, 1)}`).join(", ")],
  ]);
  say($("#scen-skipped"), s.skipped.length ? `Left out: ${s.skipped.join("; ")}` : "");
  const box = $("#scen-grids");
  box.replaceChildren();
  s.days.forEach((days, d) => {
    const head = h("tr", {}, h("th", { scope: "col", class: "rk-corner" }, "Spot \\ IV"),
      ...s.iv_changes.map((iv) => h("th", { scope: "col", class: "num" }, move(iv))));
    const body = s.underlying_moves.map((m, i) => h("tr", {},
      h("th", { scope: "row", class: "num" }, move(m)),
      ...s.iv_changes.map((iv, j) => {
        const value = grid[d][i][j];
        const classes = ["num", "rk-cell", heat(value, largest)];
        if (Math.abs(m) < 1e-12 && Math.abs(iv) < 1e-12 && !days) classes.push("rk-now");
        if (view === "pnl" && worst.days === days && worst.underlying_move === m && worst.iv_change === iv) classes.push("rk-worst");
        return h("td", { class: classes.join(" "), title: `spot ${move(m)}, IV ${move(iv)}: ${num(value)}` },
          num(value, { indian: state.currency === "INR", places: 0 }));
      })));
    const caption = `${view === "pnl" ? "Full revaluation" : "Greeks approximation"} P&L, ${days ? `${days} day${days === 1 ? "" : "s"} forward` : "today"}`;
    box.append(h("div", { class: "scroll rk-grid-box" },
      h("table", { class: "data rk-grid", dataset: { days: String(days) } },
        h("caption", {}, caption), h("thead", {}, head), h("tbody", {}, ...body))));
  });
}

// --- optimisation -----------------------------------------------------------------------------

async function loadOptimisation() {
  const card = $("#opt-card");
  const { kind, id } = state.source;
  card.hidden = kind !== "portfolio";
  if (kind !== "portfolio") return;
  const data = new FormData($("#opt-form"));
  const query = {
    objective: data.get("objective"),
    max_weight: Number(data.get("max_weight")) / 100,
    risk_free_rate: Number(data.get("risk_free_rate")) / 100,
    expected_returns: data.get("expected_returns"),
    covariance: data.get("covariance"),
    lookback_days: $("#risk-lookback").value,
  };
  let o;
  state.optimised = null;
  try {
    o = await api(`/api/v1/portfolios/${id}/optimize`, { query });
  } catch (error) {
    $("#opt-result").hidden = true;
    say($("#opt-message"), describe(error));
    return;
  }
  answers += 1;
  state.optimised = { id: answers, trades: o.trades };
  say($("#opt-message"), "");
  $("#opt-result").hidden = false;
  facts($("#opt-facts"), [
    ["Expected return (annual)", fpct(o.expected_return), "expected_return"],
    ["Volatility (annual)", fpct(o.volatility), "volatility"],
    ["Sharpe ratio", ratio(o.sharpe), "sharpe"],
    ["Value optimised", money(o.value, o.currency), "value"],
  ]);
  say($("#opt-skipped"), o.skipped.length ? `Left out: ${o.skipped.join("; ")}` : "");
  const assets = [...new Set([...Object.keys(o.current_weights), ...Object.keys(o.weights)])];
  const bar = (weight, kindClass) => {
    const el = h("span", { class: `rk-bar ${kindClass}` });
    el.style.width = `${Math.max(0, Math.min(100, weight * 100))}%`;
    return el;
  };
  $("#opt-weights tbody").replaceChildren(...assets.map((asset) => h("tr", { dataset: { asset } },
    h("th", { scope: "row" }, asset),
    h("td", { class: "num" }, fpct(o.current_weights[asset] ?? 0)),
    h("td", { class: "num", dataset: { field: "weight" } }, fpct(o.weights[asset] ?? 0)),
    h("td", { class: "num" }, fpct(o.risk_contributions[asset] ?? null)),
    h("td", { class: "rk-bars" }, bar(o.current_weights[asset] ?? 0, "now"), bar(o.weights[asset] ?? 0, "target")))));
  const trades = o.trades;
  $("#opt-trades tbody").replaceChildren(...(trades.length ? trades.map((t) => h("tr", {},
    h("th", { scope: "row" }, t.instrument),
    h("td", { class: t.side === "buy" ? "up" : "down" }, t.side),
    h("td", { class: "num" }, num(t.quantity)),
    h("td", { class: "num" }, money(t.estimated_value, o.currency))))
    : [h("tr", {}, h("td", { colspan: 4, class: "empty" }, "Nothing to trade: the holdings are at the suggested weights."))]));
  $("#opt-leftover").textContent = `Left over after whole lots: ${money(o.leftover, o.currency)}`;
  $("#opt-send").hidden = !trades.length || !state.accounts.length;
  $("#opt-no-account").hidden = !trades.length || Boolean(state.accounts.length);
}

// --- the trades as paper orders ---------------------------------------------------------------
// The orders of one optimisation answer in one account keep their Idempotency-Keys: sending
// them again (a second click, a retry after an answer was lost) replays what the server did
// instead of placing anything twice.  An accepted order is never sent again; a refused one (a
// 4xx answer: nothing was placed) gets a new key, so it can be sent again once its reason is
// gone.  To place the same trades once more, optimise again.

const DERIVATIVES = new Set(["future", "option"]);

// Delivery for cash instruments, NRML for F&O, as the Trading page's ticket defaults.  An
// instrument the master does not know gets cnc: the order API then says what is wrong.
async function productOf(key) {
  try {
    const facts = await api(`/api/v1/instruments/${encodeURIComponent(key)}`);
    return DERIVATIVES.has(facts.type) ? "nrml" : "cnc";
  } catch (error) {
    if (error instanceof ApiError && error.status === 404) return "cnc";
    throw error;
  }
}

async function batchFor(optimised, accountId) {
  const id = `${optimised.id}|${accountId}`;
  if (!state.batches.has(id)) {
    const products = await Promise.all(optimised.trades.map((t) => productOf(t.instrument)));
    state.batches.set(id, optimised.trades.map((trade, i) => ({
      trade, product: products[i], key: null, body: null, outcome: null,
    })));
  }
  return state.batches.get(id);
}

// 4xx: the server refused and placed nothing.  Anything else (no answer, a 5xx, a 429 after
// waiting) leaves it unknown whether the order exists: only the same key may ask again.
const refusal = (error) => error instanceof ApiError && error.status >= 400 && error.status < 500 && error.status !== 429;
const pause = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

async function placeOne(accountId, entry) {
  // The orders rate limit is 10 a second per user: a larger rebalance waits its turn.
  for (let attempt = 0; ; attempt += 1) {
    try {
      const order = await api(`/api/v1/accounts/${accountId}/orders`, {
        method: "POST", body: entry.body, headers: { "Idempotency-Key": entry.key },
      });
      return { kind: "accepted", order };
    } catch (error) {
      if (error instanceof ApiError && error.status === 429 && attempt < 3) {
        await pause(1100);
        continue;
      }
      return { kind: refusal(error) ? "refused" : "unknown", error };
    }
  }
}

const words = (text) => String(text).replaceAll("_", " ");

// The problem's title and detail as the server wrote them (the detail names the numbers).
function problemText(error) {
  const p = error.problem;
  return p.title && p.detail ? `${p.title}: ${error.describe()}` : error.describe();
}

function outcomeCell(outcome) {
  if (!outcome) return h("td", { dataset: { field: "result" } }, "Sending…");
  if (outcome.kind === "accepted") {
    const o = outcome.order;
    return h("td", { dataset: { field: "result" } },
      h("span", { class: "up" }, `Accepted, ${words(o.status)}`), " · order ",
      h("code", { dataset: { field: "order_id" } }, o.id));
  }
  if (outcome.kind === "refused") {
    return h("td", { dataset: { field: "result" }, class: "down" }, `Refused — ${problemText(outcome.error)}`);
  }
  return h("td", { dataset: { field: "result" }, class: "down" },
    `No answer (${describe(outcome.error)}): send again to retry; it keeps its key, so it is never placed twice`);
}

function showBatch(account, batch, when) {
  $("#opt-orders-caption").textContent = `Orders sent to ${account.name} (${account.currency})${when ? ` at ${when}` : ""}`;
  $("#opt-orders tbody").replaceChildren(...batch.map((e) => h("tr", {
    dataset: { instrument: e.trade.instrument, side: e.trade.side, outcome: e.outcome?.kind || "sending" },
  },
  h("th", { scope: "row" }, e.trade.instrument),
  h("td", { class: e.trade.side === "buy" ? "up" : "down" }, e.trade.side),
  h("td", { class: "num", dataset: { field: "quantity" } }, num(e.trade.quantity)),
  h("td", { dataset: { field: "product" } }, e.product.toUpperCase()),
  outcomeCell(e.outcome))));
  $("#opt-sent").hidden = false;
  const count = (kind) => batch.filter((e) => e.outcome?.kind === kind).length;
  const [accepted, refused, unknown] = ["accepted", "refused", "unknown"].map(count);
  const parts = [`${accepted} accepted`];
  if (refused) parts.push(`${refused} refused`);
  if (unknown) parts.push(`${unknown} without an answer`);
  const done = accepted + refused + unknown === batch.length;
  say($("#opt-send-status"), done ? `${batch.length} order${batch.length === 1 ? "" : "s"}: ${parts.join(", ")}.` : "Sending…");
}

function orderTable(plan) {
  return h("table", { class: "data", id: "confirm-orders" },
    h("caption", { class: "sr-only" }, "The orders to place"),
    h("thead", {}, h("tr", {}, ...["Side", "Instrument", "Quantity", "Type", "Product"].map((label) => h("th", {
      scope: "col", class: label === "Quantity" ? "num" : undefined,
    }, label)))),
    h("tbody", {}, ...plan.map(({ body }) => h("tr", { dataset: { instrument: body.instrument } },
      h("td", { class: body.side === "buy" ? "up" : "down", dataset: { field: "side" } }, body.side),
      h("th", { scope: "row", dataset: { field: "instrument" } }, body.instrument),
      h("td", { class: "num", dataset: { field: "quantity" } }, num(body.quantity)),
      h("td", { dataset: { field: "type" } }, body.type),
      h("td", { dataset: { field: "product" } }, `${body.product.toUpperCase()}${body.product === "cnc" ? " (delivery)" : ""}`)))));
}

async function sendAsOrders() {
  const optimised = state.optimised;
  const account = state.accounts.find((a) => a.id === $("#opt-account").value);
  if (!optimised) throw new Error("Optimise first: there are no trades to send.");
  if (!account) throw new Error("Choose a paper trading account.");
  say($("#opt-send-status"), "");
  const batch = await batchFor(optimised, account.id);
  const afterMarket = $("#opt-after-market").checked;
  // An order without an answer goes again exactly as it went: the same key needs the same body.
  const plan = batch.filter((e) => e.outcome?.kind !== "accepted").map((entry) => ({
    entry,
    body: entry.outcome?.kind === "unknown" ? entry.body : {
      instrument: entry.trade.instrument, side: entry.trade.side, quantity: entry.trade.quantity,
      type: "market", product: entry.product, time_in_force: "day", ...(afterMarket ? { after_market: true } : {}),
    },
  }));
  if (!plan.length) {
    showBatch(account, batch, null);
    say($("#opt-send-status"), `These ${batch.length} orders are already in ${account.name}: nothing sent again. Optimise again for a new set.`);
    return;
  }
  const placed = batch.length - plan.length;
  const n = plan.length;
  const question = `Place ${n} market order${n === 1 ? "" : "s"} in the paper trading account ${account.name} (${account.currency})?`
    + (placed ? ` ${placed} already accepted ${placed === 1 ? "is" : "are"} not sent again.` : "")
    + (plan.some((p) => p.body.after_market) ? " When the exchange is closed they wait for its next open." : "");
  if (!(await confirmAction(question, `Place ${n} order${n === 1 ? "" : "s"}`, orderTable(plan)))) {
    say($("#opt-send-status"), "Canceled: nothing was sent.");
    return;
  }
  for (const { entry, body } of plan) {
    if (entry.outcome?.kind !== "unknown") entry.key = crypto.randomUUID();
    entry.body = body;
    entry.outcome = null;
  }
  const when = new Date().toLocaleTimeString();
  showBatch(account, batch, when);
  // One after another, in the answer's order: the rows fill in as the answers come.
  for (const { entry } of plan) {
    entry.outcome = await placeOne(account.id, entry);
    showBatch(account, batch, when);
  }
}

// --- the page ---------------------------------------------------------------------------------

const known = (value) => [...$("#risk-source").options].some((o) => o.value === value);
const results = () => document.querySelectorAll("main > section.card:not(:first-of-type), main > .grid");

function hideResults() {
  for (const part of results()) part.hidden = true;
}

async function measureAll() {
  if (!$("#risk-source").value) return;
  $("#risk-missing").hidden = true;
  $("#risk-source option[value='']")?.remove();
  for (const part of results()) part.hidden = false;
  state.source = currentSource();
  remember();
  await Promise.all([loadMeasures(), loadScenarios(), loadOptimisation()]);
}

start(async () => {
  const wanted = new URLSearchParams(location.search).get("source");
  let any = await loadSources();
  let missing = false;
  if (wanted && !known(wanted)) {
    missing = await showMissing(wanted);
    if (!missing) any = await loadSources();
  }
  if (!any) {
    $("#risk-form").hidden = true;
    hideResults();
    return;
  }
  if (wanted && known(wanted)) $("#risk-source").value = wanted;
  onSubmit($("#risk-form"), measureAll);
  $("#risk-source").addEventListener("change", () => measureAll().catch((e) => fail(e)));
  onSubmit($("#scen-form"), loadScenarios);
  $("#scen-view").addEventListener("change", drawScenarios);
  onSubmit($("#opt-form"), loadOptimisation);
  onSubmit($("#opt-send"), sendAsOrders);
  if (missing) {
    hideResults();
    return;
  }
  await measureAll();
});
