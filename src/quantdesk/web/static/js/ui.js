// Small DOM and formatting helpers shared by every page.  Amounts arrive from the API as
// exact decimal strings and are shown as they are (grouped, never through a float).

export function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else if (key in node && typeof value !== "string") node[key] = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

// "1234567.5" -> "1,234,567.5"; "-0.25" stays; null -> "—".  Indian grouping (12,34,567)
// for INR amounts when `indian` is set.
export function num(value, { indian = false, places } = {}) {
  if (value === undefined || value === null || value === "") return "—";
  let text = String(value);
  if (places !== undefined) text = roundDecimal(text, places);
  const negative = text.startsWith("-");
  const [whole, fraction] = (negative ? text.slice(1) : text).split(".");
  let grouped;
  if (indian && whole.length > 3) {
    const head = whole.slice(0, -3);
    grouped = head.replace(/\B(?=(\d{2})+(?!\d))/g, ",") + "," + whole.slice(-3);
  } else {
    grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  }
  return (negative ? "-" : "") + grouped + (fraction !== undefined ? "." + fraction : "");
}

// Round a decimal string half away from zero to `places`, in string arithmetic.
export function roundDecimal(text, places) {
  const negative = text.startsWith("-");
  const [whole, fraction = ""] = (negative ? text.slice(1) : text).split(".");
  if (fraction.length <= places) {
    const padded = places ? whole + "." + fraction.padEnd(places, "0") : whole;
    return (negative ? "-" : "") + padded;
  }
  const digits = (whole + fraction.slice(0, places)).split("").map(Number);
  if (Number(fraction[places]) >= 5) {
    let i = digits.length - 1;
    while (i >= 0) {
      if (digits[i] === 9) { digits[i] = 0; i -= 1; } else { digits[i] += 1; break; }
    }
    if (i < 0) digits.unshift(1);
  }
  const all = digits.join("");
  const cut = all.length - places;
  const out = places ? `${all.slice(0, cut) || "0"}.${all.slice(cut)}` : all;
  const zero = /^[0.]*$/.test(out);
  return (negative && !zero ? "-" : "") + out;
}

export const money = (value, currency) => num(value, { indian: currency === "INR", places: 2 });

// "up" / "down" / "" for a signed decimal string: colour classes, never a float compare.
export function sign(value) {
  if (value === undefined || value === null) return "";
  const text = String(value);
  if (text.startsWith("-")) return /[1-9]/.test(text) ? "down" : "";
  return /[1-9]/.test(text) ? "up" : "";
}

export function time(iso) {
  if (!iso) return "—";
  return new Date(iso).toLocaleString(undefined, { dateStyle: "short", timeStyle: "medium" });
}

export function notify(message, kind = "info") {
  const box = document.getElementById("notices");
  const note = h("div", { class: `notice ${kind}`, role: kind === "error" ? "alert" : undefined }, message,
    h("button", { type: "button", class: "icon", "aria-label": "Dismiss", onclick: () => note.remove() }, "×"));
  box.append(note);
  if (kind !== "error") setTimeout(() => note.remove(), 6000);
}

// Show an API failure where the user acted (a form) or as a notice.
export function fail(error, where) {
  const text = typeof error?.describe === "function" ? error.describe() : String(error?.message || error);
  if (where) {
    let box = where.querySelector(":scope > .form-error");
    if (!box) {
      box = h("p", { class: "form-error", role: "alert" });
      where.append(box);
    }
    box.textContent = text;
  } else {
    notify(text, "error");
  }
}

export function clearError(where) {
  where?.querySelector(":scope > .form-error")?.remove();
}

// Rows into a <tbody>: columns are [{key, label, num, render(row)}].
export function fillTable(tbody, columns, rows, { empty = "Nothing yet.", rowProps } = {}) {
  tbody.replaceChildren();
  if (!rows.length) {
    tbody.append(h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, empty)));
    return;
  }
  for (const row of rows) {
    const tr = h("tr", rowProps ? rowProps(row) : {});
    for (const column of columns) {
      const content = column.render ? column.render(row) : row[column.key];
      tr.append(h("td", { class: column.num ? "num" : column.class }, content ?? "—"));
    }
    tbody.append(tr);
  }
}

export function formData(form) {
  const out = {};
  for (const [key, value] of new FormData(form)) if (value !== "") out[key] = value;
  return out;
}

// Handle a form's submit with its button disabled while the request runs.
export function onSubmit(form, handler) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const buttons = form.querySelectorAll("button[type=submit]");
    buttons.forEach((b) => { b.disabled = true; });
    clearError(form);
    try {
      await handler(formData(form), form);
    } catch (error) {
      fail(error, form);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
  });
}

// An SVG answer of the API shown as an image (the page's policy allows data: images).
export function svgImage(svgText, alt) {
  const url = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svgText)}`;
  return h("img", { src: url, alt, class: "figure" });
}

// A yes/no question in a modal <dialog> (keyboard: Esc cancels, focus stays inside).
// `details`, a node shown under the question (such as the orders a click would place), goes
// when the dialog closes.
export function confirmAction(text, label = "Confirm", details = null) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = text;
  $("#confirm-ok").textContent = label;
  $("#confirm-details")?.remove();
  if (details) $("#confirm-text").after(h("div", { id: "confirm-details" }, details));
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      $("#confirm-details")?.remove();
      resolve(dialog.returnValue === "ok");
    }, { once: true });
    dialog.returnValue = "";
    dialog.showModal();
    $("#confirm-cancel").focus();
  });
}
