// Chart: candlesticks and volume from the stored bars at any timeframe, the last candle
// following the live quote, indicators from the server's list (overlays on the price pane,
// oscillators in panes of their own) and a trained model's signals as markers.
//
// Drawn with lightweight-charts v5 (served by quantdesk, never a CDN).  Everything comes from
// the public API: /market/bars, /analytics/indicators/{name}, /signals/models,
// /signals/{model}/{instrument}, and the ticks of the stream.  ?instrument=NSE:INFY&timeframe=5m
// in the URL opens the chart there (the markets page links to it).

import {
  CandlestickSeries,
  HistogramSeries,
  LineSeries,
  createChart,
  createSeriesMarkers,
} from "../../vendor/lightweight-charts.mjs";
import { ApiError, api } from "../api.js";
import { start } from "../shell.js";
import { $, clearError, fail, h, num, onSubmit, sign } from "../ui.js";

const TIMEFRAMES = { "1m": 60, "3m": 180, "5m": 300, "10m": 600, "15m": 900, "30m": 1800, "1h": 3600, "1d": 86400, "1w": 604800 };
const BAR_LIMIT = 5000; // the bars API's default page: the latest 5,000 bars
const PALETTE = ["#2962ff", "#f57c00", "#8e24aa", "#00897b", "#d81b60", "#7cb342", "#6d4c41", "#039be5"];
// UTC offset of each exchange's trading date (a daily bar's time is 00:00 UTC of that local
// date); only the date matters, and US sessions never cross midnight, so DST is irrelevant.
const DATE_OFFSET = { NSE: 19800, BSE: 19800, NFO: 19800, SIM: 19800, NYSE: -18000, NASDAQ: -18000, OPRA: -18000 };

// --- benchmark hooks ------------------------------------------------------------------------
// benchmarks/bench_dashboard.py reads these two (and the tests may): the chart's first paint
// after the bars arrived, in ms from navigation start, and for each live tick applied the delay
// from the quote's timestamp to the frame that shows it (ms, the newest 1,000; body
// [data-live-ticks] counts them, for a test to wait on without evaluating script).  "Drawn" is a
// requestAnimationFrame after the update (lightweight-charts paints in its own, earlier, frame
// callback) followed by a task, i.e. after the frame was rendered.
window.__qdChartTickDelays = [];
const afterFrame = (fn) => requestAnimationFrame(() => setTimeout(fn, 0));

// --- the indicator catalogue ----------------------------------------------------------------
// The server lists its indicators and their parameters' defaults (see serverIndicators) but
// not their labels, sensible steps or where they belong.  This table has those, from
// docs/indicators.md.  Placement
// rule: an indicator in the price's own units (moving averages, bands and channels, SAR,
// SuperTrend, VWAP, pivots) is an overlay on the price pane; everything else (oscillators,
// volume and range measures) gets a pane of its own, as does any indicator the server lists
// that this table does not know (drawn with the server's default parameters).
const MA_TYPES = [["0", "SMA"], ["1", "EMA"], ["2", "WMA"], ["3", "DEMA"], ["4", "TEMA"], ["5", "TRIMA"], ["6", "KAMA"], ["8", "T3"]];
const period = (value, name = "timeperiod") => ({ name, value });
const CATALOGUE = {
  sma: { label: "SMA", overlay: true, params: [period(20)] },
  ema: { label: "EMA", overlay: true, params: [period(20)] },
  wma: { label: "WMA", overlay: true, params: [period(20)] },
  dema: { label: "DEMA", overlay: true, params: [period(20)] },
  tema: { label: "TEMA", overlay: true, params: [period(20)] },
  trima: { label: "TRIMA", overlay: true, params: [period(20)] },
  kama: { label: "KAMA", overlay: true, params: [period(30)] },
  t3: { label: "T3", overlay: true, params: [period(5), { name: "vfactor", value: 0.7, step: 0.05 }] },
  bbands: { label: "Bollinger bands", overlay: true, params: [period(20), { name: "nbdevup", value: 2, step: 0.1 }, { name: "nbdevdn", value: 2, step: 0.1 }, { name: "matype", value: "0", options: MA_TYPES }] },
  keltner: { label: "Keltner channel", overlay: true, params: [period(20), period(10, "atr_period"), { name: "multiplier", value: 2, step: 0.1 }] },
  donchian: { label: "Donchian channel", overlay: true, params: [period(20)] },
  sar: { label: "Parabolic SAR", overlay: true, dots: true, params: [{ name: "acceleration", value: 0.02, step: 0.01 }, { name: "maximum", value: 0.2, step: 0.01 }] },
  supertrend: { label: "SuperTrend", overlay: true, hide: ["direction"], params: [period(10), { name: "multiplier", value: 3, step: 0.1 }] },
  vwap: { label: "VWAP", overlay: true, params: [] },
  pivot_points: { label: "Pivot points", overlay: true, dots: true, params: [{ name: "method", value: "classic", options: [["classic", "classic"], ["fibonacci", "fibonacci"], ["camarilla", "camarilla"], ["woodie", "woodie"]] }] },
  rsi: { label: "RSI", params: [period(14)], levels: [30, 70] },
  macd: { label: "MACD", params: [period(12, "fastperiod"), period(26, "slowperiod"), period(9, "signalperiod")], histogram: ["histogram"] },
  stoch: { label: "Stochastic", params: [period(5, "fastk_period"), period(3, "slowk_period"), period(3, "slowd_period")], levels: [20, 80] },
  stochrsi: { label: "Stochastic RSI", params: [period(14), period(5, "fastk_period"), period(3, "fastd_period")], levels: [20, 80] },
  cci: { label: "CCI", params: [period(14)], levels: [-100, 100] },
  mfi: { label: "MFI", params: [period(14)], levels: [20, 80] },
  willr: { label: "Williams %R", params: [period(14)], levels: [-80, -20] },
  roc: { label: "Rate of change", params: [period(10)] },
  mom: { label: "Momentum", params: [period(10)] },
  trix: { label: "TRIX", params: [period(30)] },
  adx: { label: "ADX", params: [period(14)] },
  plus_di: { label: "+DI", params: [period(14)] },
  minus_di: { label: "−DI", params: [period(14)] },
  atr: { label: "ATR", params: [period(14)] },
  natr: { label: "NATR", params: [period(14)] },
  trange: { label: "True range", params: [] },
  obv: { label: "OBV", params: [] },
  ad: { label: "Accumulation/distribution", params: [] },
  adosc: { label: "Chaikin A/D oscillator", params: [period(3, "fastperiod"), period(10, "slowperiod")] },
};
const PARAM_LABELS = {
  timeperiod: "Period", fastperiod: "Fast", slowperiod: "Slow", signalperiod: "Signal",
  nbdevup: "Dev. up", nbdevdn: "Dev. down", matype: "MA type", atr_period: "ATR period",
  multiplier: "Multiplier", acceleration: "Acceleration", maximum: "Maximum", vfactor: "Volume factor",
  fastk_period: "%K period", slowk_period: "Slow %K", slowd_period: "Slow %D", fastd_period: "%D period",
  method: "Method",
};

// --- state ----------------------------------------------------------------------------------

const state = {
  instrument: "SIM:ALPHA",
  timeframe: "1d",
  rows: [], // [{time, open, high, low, close, volume}] decimal strings, oldest first
  byTime: new Map(), // time -> row
  stored: 0, // how many rows came from the bars API (the rest were started by ticks)
  hovering: false,
  prevVolume: null, // the quote's cumulative volume at the previous tick
  offTicks: null,
  indicators: [], // [{id, name, params, meta, series: [], colour, li}]
  nextId: 1,
  signal: null, // {series, markers, model}
  models: [],
  loadSeq: 0,
  firstPaint: false,
};

let chart;
let candles;
let volume;
let markers;

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

function chartColours() {
  return {
    // The library's own logo injects a <style> the page's CSP refuses: the attribution its
    // licence asks for is a link under the chart instead (chart.html).
    layout: { background: { color: cssVar("--panel") }, textColor: cssVar("--text"), attributionLogo: false, panes: { separatorColor: cssVar("--border") } },
    grid: { vertLines: { color: rgba(cssVar("--border"), 0.5) }, horzLines: { color: rgba(cssVar("--border"), 0.5) } },
    rightPriceScale: { borderColor: cssVar("--border") },
    timeScale: { borderColor: cssVar("--border") },
  };
}

function candleColours() {
  const up = cssVar("--up");
  const down = cssVar("--down");
  return { upColor: up, downColor: down, borderUpColor: up, borderDownColor: down, wickUpColor: up, wickDownColor: down };
}

// An rgba() of a CSS colour (lightweight-charts parses neither color-mix() nor variables).
function rgba(colour, alpha) {
  const ctx = document.createElement("canvas").getContext("2d");
  ctx.fillStyle = colour;
  const hex = ctx.fillStyle; // "#rrggbb"
  const n = parseInt(hex.slice(1), 16);
  return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${alpha})`;
}

function buildChart() {
  const box = $("#chart");
  chart = createChart(box, {
    autoSize: true,
    ...chartColours(),
    crosshair: { mode: 0 },
    timeScale: { ...chartColours().timeScale, timeVisible: true, secondsVisible: false, rightOffset: 4 },
  });
  candles = chart.addSeries(CandlestickSeries, { ...candleColours(), priceLineVisible: true }, 0);
  volume = chart.addSeries(HistogramSeries, {
    priceScaleId: "volume",
    priceFormat: { type: "volume" },
    lastValueVisible: false,
    priceLineVisible: false,
  }, 0);
  chart.priceScale("volume", 0).applyOptions({ scaleMargins: { top: 0.8, bottom: 0 } });
  candles.priceScale().applyOptions({ scaleMargins: { top: 0.08, bottom: 0.22 } });
  markers = createSeriesMarkers(candles, []);

  chart.subscribeCrosshairMove((param) => {
    const row = param.time !== undefined ? state.byTime.get(param.time) : undefined;
    state.hovering = Boolean(row);
    showLegend(row || state.rows[state.rows.length - 1]);
  });

  const recolour = () => {
    chart.applyOptions(chartColours());
    candles.applyOptions(candleColours());
    upVolume = ""; // volumePoint takes the new theme's colours
    volume.setData(state.rows.map(volumePoint));
  };
  new MutationObserver(recolour).observe(document.documentElement, { attributes: true, attributeFilter: ["data-theme"] });
  matchMedia("(prefers-color-scheme: dark)").addEventListener("change", recolour);
}

function sizeChart() {
  // The price pane keeps its height; every further pane adds room for itself.
  const panes = chart.panes();
  $("#chart").style.height = `${Math.max(0, panes.length - 1) * 150 + 480}px`;
  $("#chart").dataset.panes = String(panes.length);
  panes.forEach((pane, i) => pane.setStretchFactor(i === 0 ? 3.2 : 1));
}

// --- bars -----------------------------------------------------------------------------------

const candlePoint = (r) => ({ time: r.time, open: +r.open, high: +r.high, low: +r.low, close: +r.close });
let upVolume = "";
let downVolume = "";
function volumePoint(r) {
  if (!upVolume) {
    upVolume = rgba(cssVar("--up"), 0.45);
    downVolume = rgba(cssVar("--down"), 0.45);
  }
  return { time: r.time, value: +r.volume, color: +r.close >= +r.open ? upVolume : downVolume };
}

function timeText(time) {
  const iso = new Date(time * 1000).toISOString();
  return TIMEFRAMES[state.timeframe] >= 86400 ? iso.slice(0, 10) : `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;
}

function showLegend(row) {
  const legend = $("#legend");
  $("#legend-instrument").textContent = `${state.instrument} · ${state.timeframe}`;
  if (!row) {
    for (const b of legend.querySelectorAll("[data-field]")) b.textContent = "—";
    $("#legend-time").textContent = "no bars";
    delete legend.dataset.time;
    return;
  }
  legend.dataset.time = String(row.time);
  $("#legend-time").textContent = timeText(row.time);
  for (const field of ["open", "high", "low", "close"]) legend.querySelector(`[data-field=${field}]`).textContent = num(row[field]);
  legend.querySelector("[data-field=volume]").textContent = num(row.volume);
  legend.querySelector("[data-field=close]").className = +row.close >= +row.open ? "up" : "down";
}

function precisionOf(tick) {
  const fraction = String(tick || "0.01").split(".")[1] || "";
  return { type: "price", precision: Math.max(fraction.replace(/0+$/, "").length, 2), minMove: Number(tick) || 0.01 };
}

const fetchBars = () => api(`/api/v1/market/bars/${encodeURIComponent(state.instrument)}`, { query: { timeframe: state.timeframe, limit: BAR_LIMIT } });

async function loadBars(pending) {
  const seq = ++state.loadSeq;
  const { timeframe } = state;
  const bars = await (pending || fetchBars());
  if (seq !== state.loadSeq) return false; // a newer choice won
  performance.mark("qd-chart-bars");
  const rows = bars.t.map((time, i) => ({ time, open: bars.o[i], high: bars.h[i], low: bars.l[i], close: bars.c[i], volume: bars.v[i] }));
  state.rows = rows;
  state.byTime = new Map(rows.map((r) => [r.time, r]));
  state.stored = rows.length;
  state.prevVolume = null;
  candles.setData(rows.map(candlePoint));
  volume.setData(rows.map(volumePoint));
  performance.mark("qd-chart-set");
  const shown = ["1m", "3m", "5m"].includes(timeframe) ? 240 : 160;
  chart.timeScale().setVisibleLogicalRange({ from: rows.length - shown, to: rows.length + 4 });
  $("#bar-count").textContent = `${num(String(rows.length))} bars`;
  $("#bar-count").dataset.count = String(rows.length);
  showLegend(rows[rows.length - 1]);
  if (!state.firstPaint) {
    state.firstPaint = true;
    afterFrame(() => { document.body.dataset.firstPaintMs = performance.now().toFixed(1); });
  }
  return true;
}

// --- live ticks -----------------------------------------------------------------------------

// The open time of the bar a tick at `t` (Unix seconds) belongs to.  Intraday bars are anchored
// to the session's open, so the next bucket is counted from the last bar's open; daily bars
// are 00:00 UTC of the exchange's trading date; weekly ones the first trading day of the week.
function bucketOf(t, last) {
  const step = TIMEFRAMES[state.timeframe];
  if (step < 86400) return t < last ? Math.floor(t / step) * step : last + Math.floor((t - last) / step) * step;
  const offset = DATE_OFFSET[state.instrument.split(":")[0]] ?? 0;
  const day = Math.floor((t + offset) / 86400) * 86400;
  if (step === 86400) return day;
  const monday = day - ((Math.floor(day / 86400) + 3) % 7) * 86400; // 1970-01-01 was a Thursday
  return monday <= last ? last : day;
}

function showQuote(tick) {
  const last = $("#last-price");
  if (tick.last !== undefined && tick.last !== null) {
    last.textContent = num(tick.last);
    last.dataset.ts = tick.ts || "";
  }
  const change = $("#last-change");
  if (tick.change !== undefined && tick.change !== null) {
    change.textContent = `${sign(tick.change) === "up" ? "+" : ""}${num(tick.change)}`;
    change.className = sign(tick.change);
  }
  $("#last-time").textContent = tick.ts ? `quote at ${new Date(tick.ts).toLocaleTimeString()}` : "";
}

function onTick(tick) {
  if (tick.instrument !== state.instrument) return;
  showQuote(tick);
  const price = tick.last;
  if (!state.rows.length || price === undefined || price === null || !tick.ts) return;
  const sentAt = Date.parse(tick.ts);
  const last = state.rows[state.rows.length - 1];
  const bucket = bucketOf(Math.floor(sentAt / 1000), last.time);
  if (bucket < last.time) return; // older than the chart's last bar
  let row = last;
  if (bucket > last.time) {
    row = { time: bucket, open: price, high: price, low: price, close: price, volume: "0" };
    state.rows.push(row);
    state.byTime.set(bucket, row);
  } else {
    if (+price > +row.high) row.high = price;
    if (+price < +row.low) row.low = price;
    row.close = price;
  }
  // The quote's volume is the day's running total: the bar gains what it grew by.
  const total = tick.volume !== undefined && tick.volume !== null ? Number(tick.volume) : null;
  if (total !== null && state.prevVolume !== null && total > state.prevVolume) {
    row.volume = String(Number(row.volume) + (total - state.prevVolume));
  }
  if (total !== null) state.prevVolume = total;
  candles.update(candlePoint(row));
  volume.update(volumePoint(row));
  if (!state.hovering) showLegend(row);
  if (!tick.snapshot) {
    afterFrame(() => {
      const delays = window.__qdChartTickDelays;
      delays.push(Date.now() - sentAt);
      if (delays.length > 1000) delays.shift();
      document.body.dataset.liveTicks = String(Number(document.body.dataset.liveTicks || 0) + 1);
    });
  }
}

function subscribe(stream) {
  state.offTicks?.();
  state.offTicks = stream.ticks([state.instrument], onTick, "full");
}

// --- indicators -----------------------------------------------------------------------------

// The server's list (GET /api/v1/analytics/indicators) is the truth for which indicators
// exist; an entry the catalogue does not know is offered with the server's own parameters
// and defaults, in a pane of its own.
const serverMeta = {};

async function serverIndicators() {
  const listing = await api("/api/v1/analytics/indicators");
  for (const entry of listing) {
    serverMeta[entry.name] = {
      label: entry.name.toUpperCase(),
      unknown: true,
      params: entry.parameters
        .filter((p) => typeof p.default === "number")
        .map((p) => ({ name: p.name, value: p.default, step: Number.isInteger(p.default) ? 1 : 0.01 })),
    };
  }
  return listing.map((entry) => entry.name);
}

const metaOf = (name) => CATALOGUE[name] || serverMeta[name] || { label: name.toUpperCase(), params: [], unknown: true };

function fillIndicatorPicker(names) {
  const select = $("#indicator-name");
  const known = names.filter((n) => CATALOGUE[n]);
  const overlays = known.filter((n) => CATALOGUE[n].overlay);
  const panes = known.filter((n) => !CATALOGUE[n].overlay);
  const other = names.filter((n) => !CATALOGUE[n]);
  const group = (label, list) => list.length && h("optgroup", { label }, ...list.map((n) => h("option", { value: n }, `${metaOf(n).label} (${n})`)));
  select.replaceChildren(...[group("On the price", overlays), group("In a pane", panes), group("Other", other)].filter(Boolean));
  select.value = names.includes("sma") ? "sma" : names[0];
  showParams();
}

function showParams() {
  const name = $("#indicator-name").value;
  const meta = metaOf(name);
  const box = $("#indicator-params");
  box.replaceChildren(...meta.params.map((p) => {
    const label = PARAM_LABELS[p.name] || p.name;
    const input = p.options
      ? h("select", { name: p.name }, ...p.options.map(([value, text]) => h("option", { value, selected: value === String(p.value) }, text)))
      : h("input", { name: p.name, type: "number", value: String(p.value), step: String(p.step ?? 1), min: p.step ? "0" : "1", required: true, inputmode: p.step ? "decimal" : "numeric" });
    return h("label", {}, label, input);
  }));
  if (!meta.params.length) box.append(h("span", { class: "hint" }, meta.unknown ? "Server defaults." : "No parameters."));
  $("#indicator-where").textContent = meta.overlay ? "Drawn on the price." : "Drawn in its own pane.";
}

function describe(ind) {
  // A choice reads as its option's text (matype 0 is "SMA").
  const values = Object.entries(ind.params).map(([name, value]) => {
    const option = ind.meta.params.find((p) => p.name === name)?.options?.find(([v]) => v === value);
    return option ? option[1] : value;
  });
  return `${ind.meta.label}${values.length ? ` ${values.join(", ")}` : ""}`;
}

const lastValue = (values) => {
  for (let i = values.length - 1; i >= 0; i -= 1) if (values[i] !== null) return values[i];
  return null;
};
const fixed = (v) => (v === null || v === undefined ? "—" : Math.abs(v) >= 1e6 ? Math.round(v).toLocaleString("en-US") : v.toFixed(2));

async function fetchIndicator(ind) {
  return api(`/api/v1/analytics/indicators/${encodeURIComponent(ind.name)}`, {
    query: { instrument: state.instrument, timeframe: state.timeframe, limit: BAR_LIMIT, ...ind.params },
  });
}

function drawIndicator(ind, answer) {
  for (const s of ind.series) chart.removeSeries(s);
  ind.series = [];
  const meta = ind.meta;
  const pane = meta.overlay ? 0 : chart.panes().length;
  const outputs = Object.keys(answer.values).filter((k) => !(meta.hide || []).includes(k));
  outputs.forEach((output, i) => {
    const colour = PALETTE[(ind.colourIndex + i) % PALETTE.length];
    const histogram = (meta.histogram || []).includes(output);
    const options = {
      color: histogram ? rgba(colour, 0.6) : colour,
      lineWidth: meta.dots ? 1 : 2,
      priceLineVisible: false,
      lastValueVisible: !meta.overlay || i === 0,
      title: outputs.length > 1 ? output : "",
      crosshairMarkerVisible: false,
    };
    if (meta.dots) Object.assign(options, { lineVisible: false, pointMarkersVisible: true, pointMarkersRadius: 1.5 });
    const series = chart.addSeries(histogram ? HistogramSeries : LineSeries, options, pane);
    const values = answer.values[output];
    const data = [];
    answer.t.forEach((time, j) => { if (values[j] !== null) data.push({ time, value: values[j] }); });
    series.setData(data);
    if (i === 0) for (const level of meta.levels || []) series.createPriceLine({ price: level, color: cssVar("--muted"), lineWidth: 1, lineStyle: 2, axisLabelVisible: false });
    ind.series.push(series);
  });
  sizeChart();
  ind.values.replaceChildren(...outputs.map((output, i) => h("span", { class: "value", dataset: { output } },
    h("span", { class: "swatch", "aria-hidden": "true" }), `${output} `, h("b", {}, fixed(lastValue(answer.values[output]))))));
  ind.values.querySelectorAll(".swatch").forEach((swatch, i) => { swatch.style.background = PALETTE[(ind.colourIndex + i) % PALETTE.length]; });
}

function removeIndicator(ind) {
  for (const s of ind.series) chart.removeSeries(s); // an emptied pane goes with its series
  ind.li.remove();
  state.indicators = state.indicators.filter((i) => i !== ind);
  sizeChart();
}

async function addIndicator(name, params) {
  const meta = metaOf(name);
  const ind = { id: state.nextId++, name, params, meta, series: [], colourIndex: 0 };
  ind.colourIndex = ((ind.id - 1) * 3) % PALETTE.length;
  const answer = await fetchIndicator(ind); // a bad parameter fails here, before anything is listed
  const remove = h("button", { type: "button", class: "link", "aria-label": `Remove ${describe(ind)}` }, "Remove");
  ind.values = h("span", { class: "values" });
  ind.li = h("li", { dataset: { indicator: name, id: String(ind.id) } },
    h("span", { class: "name" }, describe(ind), h("span", { class: "muted" }, meta.overlay ? " · price" : " · pane")), ind.values, remove);
  remove.addEventListener("click", () => removeIndicator(ind));
  $("#indicator-list").append(ind.li);
  state.indicators.push(ind);
  drawIndicator(ind, answer);
}

async function reloadIndicators() {
  // Oscillator panes are re-created in order, so remove them all first.
  for (const ind of state.indicators) {
    for (const s of ind.series) chart.removeSeries(s);
    ind.series = [];
  }
  const answers = await Promise.all(state.indicators.map((ind) => fetchIndicator(ind).catch((error) => error)));
  state.indicators.forEach((ind, i) => {
    if (answers[i] instanceof Error) fail(answers[i]);
    else drawIndicator(ind, answers[i]);
  });
}

// --- ML signals -----------------------------------------------------------------------------

async function loadModels() {
  const page = await api("/api/v1/signals/models", { query: { limit: 200 } });
  state.models = page.items;
  const select = $("#signal-model");
  select.replaceChildren(h("option", { value: "" }, "none"),
    ...page.items.map((m) => h("option", { value: m.id }, `${m.name} v${m.version} · ${m.instrument} ${m.timeframe} (${m.kind})`)));
  $("#signal-hint").hidden = page.items.length > 0;
  select.disabled = page.items.length === 0;
}

function clearSignal() {
  if (state.signal?.series) chart.removeSeries(state.signal.series);
  state.signal = null;
  markers.setMarkers([]);
  $("#signal-summary").textContent = "";
  sizeChart();
}

async function loadSignal() {
  const id = $("#signal-model").value;
  clearSignal();
  if (!id) return;
  const model = state.models.find((m) => m.id === id);
  const answer = await api(`/api/v1/signals/${encodeURIComponent(id)}/${encodeURIComponent(state.instrument)}`, {
    query: { timeframe: state.timeframe, limit: BAR_LIMIT },
  });
  if ($("#signal-model").value !== id) return;
  // A marker where the model's position changes: up is a buy, down a sell.
  const list = [];
  const { signal, probability } = answer.values;
  let previous = 0;
  let buys = 0;
  let sells = 0;
  answer.t.forEach((time, i) => {
    const now = signal[i];
    if (now === null || now === undefined) return;
    if (now > previous) {
      buys += 1;
      list.push({ time, position: "belowBar", shape: "arrowUp", color: cssVar("--up"), text: "Buy" });
    } else if (now < previous) {
      sells += 1;
      list.push({ time, position: "aboveBar", shape: "arrowDown", color: cssVar("--down"), text: "Sell" });
    }
    previous = now;
  });
  markers.setMarkers(list);
  const series = chart.addSeries(LineSeries, { color: cssVar("--accent"), lineWidth: 2, priceLineVisible: false, title: "P(up)", priceFormat: { type: "price", precision: 2, minMove: 0.01 } }, chart.panes().length);
  const points = [];
  answer.t.forEach((time, i) => { if (probability[i] !== null) points.push({ time, value: probability[i] }); });
  series.setData(points);
  series.createPriceLine({ price: model?.spec?.threshold ?? 0.5, color: cssVar("--muted"), lineWidth: 1, lineStyle: 2, axisLabelVisible: true, title: "threshold" });
  state.signal = { series, model: id };
  sizeChart();
  const latest = lastValue(probability);
  const summary = $("#signal-summary");
  summary.textContent = `${buys} buy · ${sells} sell signals on ${answer.timeframe} bars · latest P(up) ${latest === null ? "—" : latest.toFixed(2)}`;
  summary.dataset.buys = String(buys);
  summary.dataset.sells = String(sells);
}

// --- the page -------------------------------------------------------------------------------

function fromUrl() {
  const params = new URLSearchParams(location.search);
  const instrument = (params.get("instrument") || "").trim().toUpperCase();
  const timeframe = params.get("timeframe");
  if (instrument) state.instrument = instrument;
  if (timeframe && TIMEFRAMES[timeframe]) state.timeframe = timeframe;
  $("#chart-instrument").value = state.instrument;
  $("#chart-timeframe").value = state.timeframe;
}

function toUrl() {
  const params = new URLSearchParams({ instrument: state.instrument, timeframe: state.timeframe });
  history.replaceState(null, "", `${location.pathname}?${params}`);
}

async function instrumentInfo(key) {
  return api(`/api/v1/instruments/${encodeURIComponent(key)}`); // 404 for an unknown key
}

// Show (instrument, timeframe): bars first, then the indicators and the signal over them.
async function show(stream) {
  const ok = await loadBars();
  if (!ok) return;
  toUrl();
  document.title = `${state.instrument} · Chart · quantdesk`;
  await Promise.all([reloadIndicators(), loadSignal().catch((error) => fail(error, $("#signal-form")))]);
}

// The first bars are asked for at once, while the shell checks the session (a signed-out
// visitor is sent to the sign-in page by whichever answer comes first).
fromUrl();
const firstBars = fetchBars();
firstBars.catch(() => {}); // handled below; never an unhandled rejection

start(async ({ me, stream }) => {
  $("#signal-cli").textContent = `quantdesk ml train --user ${me.email} --name momentum --instrument ${state.instrument}`;
  buildChart();
  sizeChart();
  const [info, names] = await Promise.all([
    instrumentInfo(state.instrument).catch((error) => { fail(error, $("#chart-form")); return null; }),
    serverIndicators().catch((error) => { fail(error, $("#chart-form")); return Object.keys(CATALOGUE); }),
    loadBars(firstBars).catch((error) => fail(error, $("#chart-form"))),
    loadModels().catch((error) => fail(error, $("#signal-form"))),
  ]);
  if (info) candles.applyOptions({ priceFormat: precisionOf(info.tick_size) });
  fillIndicatorPicker(names);
  toUrl();
  subscribe(stream);

  onSubmit($("#chart-form"), async ({ instrument, timeframe }) => {
    const key = (instrument || "").trim().toUpperCase();
    const changed = key !== state.instrument;
    const found = await instrumentInfo(key);
    state.instrument = found.key || key;
    state.timeframe = timeframe;
    $("#chart-instrument").value = state.instrument;
    candles.applyOptions({ priceFormat: precisionOf(found.tick_size) });
    if (changed) {
      $("#last-price").textContent = "—";
      $("#last-change").textContent = "";
      subscribe(stream);
    }
    await show(stream);
  });
  $("#chart-timeframe").addEventListener("change", () => $("#chart-form").requestSubmit());

  let timer;
  $("#chart-instrument").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      try {
        const page = await api("/api/v1/instruments", { query: { q: $("#chart-instrument").value, limit: 20 } });
        $("#chart-suggestions").replaceChildren(...page.items.map((i) => h("option", { value: i.key }, i.name)));
      } catch (error) {
        if (error instanceof ApiError) fail(error);
      }
    }, 200);
  });

  $("#indicator-name").addEventListener("change", showParams);
  onSubmit($("#indicator-form"), async (values) => {
    const { name, ...params } = values;
    await addIndicator(name, params);
  });
  $("#signal-model").addEventListener("change", () => {
    clearError($("#signal-form"));
    loadSignal().catch((error) => fail(error, $("#signal-form")));
  });
});
