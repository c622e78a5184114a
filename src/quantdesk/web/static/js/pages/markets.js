// Markets: a watchlist of live quotes over the stream, and a search of the instrument master.

import { ApiError, api } from "../api.js";
import { start } from "../shell.js";
import { $, fail, fillTable, h, num, onSubmit, sign } from "../ui.js";

const WATCH_KEY = "qd-watchlist";
const DEFAULT_WATCHLIST = ["SIM:ALPHA", "SIM:SIMIDX", "NSE:NIFTY 50", "NSE:RELIANCE", "NSE:INFY", "NASDAQ:AAPL"];

const rows = new Map(); // instrument -> <tr>

function saved() {
  try {
    const list = JSON.parse(localStorage.getItem(WATCH_KEY));
    return Array.isArray(list) ? list : DEFAULT_WATCHLIST;
  } catch {
    return DEFAULT_WATCHLIST;
  }
}

function save() {
  localStorage.setItem(WATCH_KEY, JSON.stringify([...rows.keys()]));
}

function cells(quote) {
  return {
    last: num(quote.last),
    change: num(quote.change),
    bid: num(quote.bid),
    ask: num(quote.ask),
    volume: num(quote.volume),
  };
}

function paint(instrument, quote) {
  const tr = rows.get(instrument);
  if (!tr) return;
  for (const [field, text] of Object.entries(cells(quote))) {
    const td = tr.querySelector(`[data-field=${field}]`);
    if (td.textContent !== text) {
      td.textContent = text;
      td.classList.remove("flash");
      void td.offsetWidth; // restart the highlight
      td.classList.add("flash");
    }
  }
  tr.querySelector("[data-field=change]").className = `num ${sign(quote.change)}`;
  tr.dataset.updated = quote.ts || "";
}

export function watch(stream, instrument) {
  if (rows.has(instrument)) return;
  const remove = h("button", { type: "button", class: "link", "aria-label": `Remove ${instrument}` }, "Remove");
  const tr = h("tr", { dataset: { instrument } },
    h("th", { scope: "row" }, h("a", { href: `/chart?instrument=${encodeURIComponent(instrument)}` }, instrument)),
    ...["last", "change", "bid", "ask", "volume"].map((field) => h("td", { class: "num", dataset: { field } }, "—")),
    h("td", {}, remove));
  $("#watchlist tbody").append(tr);
  rows.set(instrument, tr);
  const off = stream.ticks([instrument], (tick) => paint(instrument, tick), "full");
  remove.addEventListener("click", () => {
    off();
    tr.remove();
    rows.delete(instrument);
    save();
  });
  save();
}

start(async ({ stream }) => {
  const list = saved();
  for (const instrument of list) watch(stream, instrument);
  // The REST snapshot first, so the table is full before the first tick.
  const { quotes } = await api("/api/v1/market/quotes", { query: { keys: list.join(",") } });
  for (const quote of quotes) paint(quote.key, quote);

  onSubmit($("#watch-form"), async ({ instrument }) => {
    const key = instrument.trim().toUpperCase();
    await api(`/api/v1/instruments/${encodeURIComponent(key)}`); // 404 for an unknown key
    watch(stream, key);
    $("#watch-input").value = "";
  });

  for (const exchange of ["NSE", "BSE", "NFO", "BFO", "MCX", "CDS", "BCD", "NYSE", "NASDAQ", "OPRA", "SIM"]) {
    $("#search-exchange").append(h("option", { value: exchange }, exchange));
  }
  const columns = [
    { label: "Instrument", render: (i) => i.key },
    { label: "Name", key: "name" },
    { label: "Kind", render: (i) => i.type + (i.expiry ? ` ${i.expiry}` : "") },
    { label: "", render: (i) => h("button", { type: "button", class: "link", onclick: () => watch(stream, i.key) }, "Watch") },
  ];
  const search = async ({ q, exchange }) => {
    const page = await api("/api/v1/instruments", { query: { q, exchange, limit: 25 } });
    fillTable($("#search-results tbody"), columns, page.items, { empty: "No instrument matches." });
    $("#search-suggestions").replaceChildren(...page.items.map((i) => h("option", { value: i.key }, i.name)));
  };
  onSubmit($("#search-form"), search);
  let timer;
  $("#search-input").addEventListener("input", () => {
    clearTimeout(timer);
    // As the user types: a failure shows as a notice (a fetch cut short by leaving the
    // page is not one), never as an unhandled rejection.
    timer = setTimeout(() => {
      search({ q: $("#search-input").value, exchange: $("#search-exchange").value }).catch((error) => {
        if (error instanceof ApiError) fail(error);
      });
    }, 200);
  });
  await search({});
});
