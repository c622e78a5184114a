// Admin: users and roles, the security event log, the trading kill switch.
//
// Nothing here decides who is an admin: the page asks the admin API, and a 403 from it is
// what turns the page into the "admins only" message.

import { api } from "../api.js";
import { start } from "../shell.js";
import { $, confirmAction, fail, fillTable, h, notify, onSubmit, time } from "../ui.js";

const ROLES = ["viewer", "trader", "admin"];
// The security log's vocabulary (docs/security.md, "What is logged", plus the kill switch's).
const EVENT_TYPES = [
  "registered", "user_created", "login_succeeded", "login_failed", "locked_out", "mfa_failed",
  "mfa_enabled", "mfa_disabled", "recovery_code_used", "recovery_codes_regenerated",
  "password_changed", "logout", "logout_all", "session_revoked", "refresh_token_reused",
  "api_key_created", "api_key_revoked", "permission_denied", "rate_limited", "role_changed",
  "user_disabled", "user_enabled", "user_unlocked", "account_erased", "calendar_imported",
  "trading_halted", "trading_resumed",
];
const WARNING_EVENTS = new Set([
  "login_failed", "locked_out", "mfa_failed", "refresh_token_reused", "permission_denied", "rate_limited",
]);

let me = null;
const users = new Map(); // id -> AdminUserOut, every page loaded so far
let usersCursor = null;

function who(id) {
  if (!id) return "—";
  const user = users.get(id);
  if (user) return user.erased ? `erased user ${id.slice(0, 8)}` : user.email;
  return h("code", { title: id }, id.slice(0, 8));
}

const locked = (user) => Boolean(user.locked_until && new Date(user.locked_until) > new Date());

// -- users -----------------------------------------------------------------------------------

function userStatus(user) {
  const badges = [];
  if (user.erased) badges.push(h("span", { class: "badge muted" }, "erased"));
  else badges.push(h("span", { class: `badge ${user.is_active ? "active" : "disabled"}` }, user.is_active ? "active" : "disabled"));
  if (locked(user)) badges.push(" ", h("span", { class: "badge locked", title: `until ${time(user.locked_until)}` }, "locked"));
  return badges;
}

function roleControl(user) {
  const self = user.id === me.id;
  const select = h("select", { "aria-label": `Role of ${user.email}`, disabled: self || user.erased, dataset: { role: user.role } },
    ...ROLES.map((role) => h("option", { value: role, selected: role === user.role }, role)));
  select.addEventListener("change", async () => {
    const role = select.value;
    const sure = await confirmAction(`Make ${user.email} ${role === "admin" ? "an" : "a"} ${role}? Their sessions end; they sign in again with the new role.`, "Change role");
    if (!sure) {
      select.value = user.role;
      return;
    }
    await update(user, { role }, `${user.email} is now ${role === "admin" ? "an" : "a"} ${role}.`);
  });
  return select;
}

function userActions(user) {
  if (user.id === me.id) return h("span", { class: "badge you" }, "you");
  if (user.erased) return "";
  const out = [];
  out.push(h("button", {
    type: "button",
    class: user.is_active ? "link danger" : "link",
    onclick: async () => {
      if (user.is_active) {
        const sure = await confirmAction(`Disable ${user.email}? Their sessions end and their API keys stop working.`, "Disable");
        if (!sure) return;
      }
      await update(user, { is_active: !user.is_active }, `${user.email} ${user.is_active ? "disabled" : "enabled"}.`);
    },
  }, user.is_active ? "Disable" : "Enable"));
  if (locked(user)) {
    out.push(" ", h("button", {
      type: "button",
      class: "link",
      onclick: async () => {
        try {
          const answer = await api(`/api/v1/admin/users/${user.id}/unlock`, { method: "POST" });
          users.set(answer.id, answer);
          notify(`${user.email} unlocked.`);
        } catch (error) {
          fail(error);
        }
        paintUsers();
      },
    }, "Unlock"));
  }
  out.push(" ", h("button", { type: "button", class: "link", onclick: () => filterEvents(user.id) }, "Events"));
  return out;
}

async function update(user, body, done) {
  try {
    const answer = await api(`/api/v1/admin/users/${user.id}`, { method: "PATCH", body });
    users.set(answer.id, answer);
    notify(done);
  } catch (error) {
    fail(error);
  }
  paintUsers();
}

const userColumns = [
  { label: "Email", render: (u) => (u.erased ? h("span", { class: "muted" }, "(erased)") : u.email) },
  { label: "Role", render: roleControl },
  { label: "Status", render: userStatus },
  { label: "MFA", render: (u) => (u.mfa_enabled ? "on" : "off") },
  { label: "Last sign-in", render: (u) => time(u.last_login_at) },
  { label: "Created", render: (u) => time(u.created_at) },
  { label: "", render: userActions },
];

function paintUsers() {
  const list = [...users.values()];
  fillTable($("#users tbody"), userColumns, list, {
    empty: "No user.",
    rowProps: (u) => ({ dataset: { user: u.id, email: u.email, active: String(u.is_active), locked: String(locked(u)) } }),
  });
  $("#users-count").textContent = `${list.length} shown`;
  $("#users-more").hidden = !usersCursor;
  const chosen = $("#events-user").value;
  $("#events-user").replaceChildren(h("option", { value: "" }, "any user"),
    ...list.filter((u) => !u.erased).map((u) => h("option", { value: u.id, selected: u.id === chosen }, u.email)));
}

async function loadUsers(more = false) {
  const page = await api("/api/v1/admin/users", { query: { limit: 100, cursor: more ? usersCursor : undefined } });
  if (!more) users.clear();
  for (const user of page.items) users.set(user.id, user);
  usersCursor = page.next_cursor;
  paintUsers();
}

// -- security events -------------------------------------------------------------------------

const events = { filters: {}, cursors: [null], index: 0, next: null, loadSeq: 0 };

function details(event) {
  if (!event.details) return "—";
  const parts = Object.entries(event.details).map(([key, value]) => {
    const text = typeof value === "string" ? value : JSON.stringify(value);
    return `${key}: ${users.get(text)?.email || text}`;
  });
  return h("span", { class: "details", title: parts.join("\n") }, parts.join(" · "));
}

const eventColumns = [
  { label: "Time", render: (e) => time(e.occurred_at) },
  { label: "Event", render: (e) => h("span", { class: WARNING_EVENTS.has(e.event_type) ? "badge warn" : "badge" }, e.event_type) },
  { label: "User", render: (e) => who(e.user_id) },
  { label: "Address", render: (e) => e.ip || "—" },
  { label: "Details", render: details },
];

async function loadEvents() {
  const seq = ++events.loadSeq;
  const page = await api("/api/v1/admin/security-events", {
    query: { ...events.filters, cursor: events.cursors[events.index] },
  });
  if (seq !== events.loadSeq) return; // a newer search or page was asked for: its answer wins
  events.next = page.next_cursor;
  fillTable($("#events tbody"), eventColumns, page.items, {
    empty: "No event matches.",
    rowProps: (e) => ({ dataset: { event: e.event_type } }),
  });
  $("#events-page").textContent = `Page ${events.index + 1}`;
  $("#events-prev").disabled = events.index === 0;
  $("#events-next").disabled = !events.next;
}

function searchEvents(filters) {
  events.filters = filters;
  events.cursors = [null];
  events.index = 0;
  return loadEvents();
}

function filterEvents(userId) {
  $("#events-user").value = userId;
  $("#events-type").value = "";
  const form = $("#events-form");
  searchEvents({ user_id: userId, limit: form.elements.limit.value }).catch((error) => fail(error, form));
  $("#events-title").scrollIntoView({ behavior: "smooth" });
}

// -- kill switch ----------------------------------------------------------------------------

function scopeText(halt) {
  return halt.scope === "all" ? "all trading" : `${halt.scope} ${halt.target}`;
}

const haltColumns = [
  {
    label: "Halt",
    render: (x) => h("div", { class: "halt" }, h("strong", {}, scopeText(x)), h("span", { class: "reason" }, x.reason),
      h("span", { class: "since" }, `since ${time(x.halted_at)} by ${users.get(x.halted_by)?.email || x.halted_by || "the CLI"}`)),
  },
  {
    label: "",
    render: (x) => (x.active
      ? h("button", { type: "button", class: "primary", "aria-label": `Resume ${scopeText(x)}`, onclick: () => resume(x) }, "Resume")
      : h("span", { class: "muted", title: `by ${users.get(x.resumed_by)?.email || x.resumed_by || "the CLI"}` }, `lifted ${time(x.resumed_at)}`)),
  },
];

async function loadHalts() {
  const history = $("#halts-history").checked;
  const { items } = await api("/api/v1/admin/trading-halts", { query: { include_lifted: history || undefined } });
  fillTable($("#halts tbody"), haltColumns, items, {
    empty: history ? "No halt ever." : "None: trading is allowed.",
    rowProps: (x) => ({ dataset: { halt: x.id, scope: x.scope, active: String(x.active) } }),
  });
  const active = items.filter((x) => x.active);
  const state = $("#halt-state");
  state.dataset.halted = String(active.length > 0);
  state.textContent = !active.length
    ? "Trading is allowed."
    : active.some((x) => x.scope === "all")
      ? "All trading is halted."
      : `Halted: ${active.map(scopeText).join(", ")}.`;
}

async function resume(halt) {
  try {
    await api(`/api/v1/admin/trading-halts/${halt.id}/resume`, { method: "POST" });
    notify(`Resumed: ${scopeText(halt)}.`);
  } catch (error) {
    fail(error);
  }
  await loadHalts();
}

async function haltTrading({ scope, target, reason }, form) {
  const body = { scope, reason };
  if (scope !== "all") {
    if (!target) throw new Error(`Name the ${scope === "exchange" ? "exchange (NSE)" : "instrument (NSE:INFY)"} to halt.`);
    body.target = target.trim().toUpperCase();
  }
  const what = scope === "all" ? "all trading" : `${scope} ${body.target}`;
  const sure = await confirmAction(`Halt ${what}? New orders are refused until you resume.`, "Halt trading");
  if (!sure) return;
  await api("/api/v1/admin/trading-halts", { method: "POST", body });
  form.reset();
  $("#halt-scope").dispatchEvent(new Event("change"));
  notify(`Halted: ${what}.`);
  await loadHalts();
}

// -- the page -------------------------------------------------------------------------------

function denied(error) {
  $("#admin-denied").hidden = false;
  $("#admin-denied-detail").textContent = `The server answered ${error.status}: ${error.message}.`;
}

start(async ({ me: signedIn }) => {
  me = signedIn;
  try {
    await loadUsers();
  } catch (error) {
    if (error.status === 403) {
      denied(error);
      return;
    }
    throw error;
  }
  $("#admin-content").hidden = false;

  $("#users-more").addEventListener("click", () => loadUsers(true).catch((error) => fail(error)));

  $("#events-type").append(...EVENT_TYPES.map((type) => h("option", { value: type }, type)));
  onSubmit($("#events-form"), (filters) => searchEvents(filters));
  $("#events-next").addEventListener("click", () => {
    events.cursors[events.index + 1] = events.next;
    events.index += 1;
    loadEvents().catch((error) => fail(error));
  });
  $("#events-prev").addEventListener("click", () => {
    events.index = Math.max(0, events.index - 1);
    loadEvents().catch((error) => fail(error));
  });

  $("#halt-scope").addEventListener("change", () => {
    const all = $("#halt-scope").value === "all";
    $("#halt-target-label").hidden = all;
    $("#halt-target").required = !all;
    $("#halt-target").placeholder = $("#halt-scope").value === "exchange" ? "NSE" : "NSE:INFY";
  });
  onSubmit($("#halt-form"), haltTrading);
  $("#halts-history").addEventListener("change", () => loadHalts().catch((error) => fail(error)));

  await Promise.all([loadHalts(), searchEvents({ limit: 50 })]);
});
