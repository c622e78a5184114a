// Account: profile, sessions, API keys, two-factor set-up, password, export and erasure.
//
// Secrets the API shows once (a new API key, the recovery codes) live only in the DOM
// until the user dismisses them: never in a variable that outlives that, never in storage.

import { api, toSignIn } from "../api.js";
import { start } from "../shell.js";
import { $, $$, confirmAction, fail, fillTable, h, notify, onSubmit, svgImage, time } from "../ui.js";

const ROLE_SCOPES = { viewer: ["read"], trader: ["read", "trade"], admin: ["read", "trade", "admin"] };
const SCOPE_HELP = { read: "read data", trade: "place and cancel orders", admin: "administer users" };

let me = null;

async function copy(text, what) {
  try {
    await navigator.clipboard.writeText(text);
    notify(`${what} copied to the clipboard.`);
  } catch {
    notify(`Could not reach the clipboard: select the ${what.toLowerCase()} and copy it by hand.`, "error");
  }
}

// Endpoints that check a password or a code answer 401 for a wrong one.  The session is
// renewed first by a plain api() call, so that the 401 after it is the server's word on the
// credential, shown where the user typed it (credentialCheck), not a sign-out.
async function withCredential(path, { method = "POST", body } = {}) {
  await api("/api/v1/users/me");
  return api(path, { method, body, credentialCheck: true });
}

// -- profile -------------------------------------------------------------------------------

function paintProfile() {
  const box = $("#profile");
  box.querySelector("[data-field=email]").textContent = me.email;
  box.querySelector("[data-field=role]").textContent = me.role;
  box.querySelector("[data-field=mfa]").replaceChildren(
    h("span", { class: `badge ${me.mfa_enabled ? "on" : "off"}` }, me.mfa_enabled ? "On" : "Off"));
  box.querySelector("[data-field=created]").textContent = time(me.created_at);
  box.querySelector("[data-field=id] code").textContent = me.id;
  for (const input of $$("input.username")) input.defaultValue = me.email; // for password managers
  for (const label of $$(".needs-mfa")) label.hidden = !me.mfa_enabled;
  const enrolling = !$("#mfa-enrol").hidden || !$("#mfa-codes").hidden;
  $("#mfa-off").hidden = me.mfa_enabled || enrolling;
  $("#mfa-on").hidden = !me.mfa_enabled || enrolling;
}

async function reloadProfile() {
  me = await api("/api/v1/users/me");
  paintProfile();
}

// -- sessions ------------------------------------------------------------------------------

// "Chrome 131 on Linux" from a User-Agent, or the raw string.
function browserName(agent) {
  if (!agent) return "—";
  const browser = /(Edg|Firefox|HeadlessChrome|Chrome|Safari)\/(\d+)/.exec(agent);
  const os = /(Windows|Mac OS X|Android|iPhone|Linux)/.exec(agent);
  if (!browser) return agent.length > 40 ? `${agent.slice(0, 40)}…` : agent;
  const name = { Edg: "Edge", HeadlessChrome: "Chrome (headless)" }[browser[1]] || browser[1];
  return `${name} ${browser[2]}${os ? ` on ${os[1].replace("Mac OS X", "macOS")}` : ""}`;
}

const sessionColumns = [
  { label: "Signed in", render: (s) => time(s.created_at) },
  { label: "Last used", render: (s) => time(s.last_used_at) },
  { label: "Address", render: (s) => s.ip || "—" },
  { label: "Browser", render: (s) => h("span", { title: s.user_agent || "" }, browserName(s.user_agent)) },
  { label: "MFA", render: (s) => (s.mfa ? "yes" : "no") },
  {
    label: "",
    render: (s) => (s.current
      ? h("span", { class: "badge current" }, "This session")
      : h("button", { type: "button", class: "link", onclick: () => revokeSession(s) }, "Revoke")),
  },
];

async function loadSessions() {
  const sessions = await api("/api/v1/users/me/sessions");
  sessions.sort((a, b) => (b.current - a.current) || b.last_used_at.localeCompare(a.last_used_at));
  fillTable($("#sessions tbody"), sessionColumns, sessions, {
    empty: "No session.",
    rowProps: (s) => ({ dataset: { session: s.id, current: String(s.current) } }),
  });
}

async function revokeSession(session) {
  try {
    await api(`/api/v1/users/me/sessions/${session.id}`, { method: "DELETE" });
    notify("Session ended.");
  } catch (error) {
    if (error.status !== 404) fail(error); // 404: it had ended already
  }
  await loadSessions();
}

async function logoutAll() {
  const sure = await confirmAction(
    "Sign out everywhere? Every session ends, this one too, and every API key is revoked: programs using them need new keys.",
    "Sign out everywhere");
  if (!sure) return;
  try {
    await api("/api/v1/auth/logout-all", { method: "POST" });
  } catch (error) {
    fail(error);
    return;
  }
  toSignIn();
}

// -- API keys ------------------------------------------------------------------------------

// The date alone, the full time on hover: keeps the table narrow.
function day(iso) {
  return h("span", { title: time(iso) }, new Date(iso).toLocaleDateString(undefined, { dateStyle: "medium" }));
}

function keyStatus(key) {
  if (key.revoked_at) return "revoked";
  if (key.expires_at && new Date(key.expires_at) <= new Date()) return "expired";
  return "live";
}

const keyColumns = [
  { label: "Name", key: "name" },
  { label: "Key", render: (k) => h("code", {}, `${k.prefix}…`) },
  { label: "Scopes", render: (k) => k.scopes.join(", ") },
  { label: "Created", render: (k) => day(k.created_at) },
  { label: "Expires", render: (k) => (k.expires_at ? day(k.expires_at) : "never") },
  { label: "Last used", render: (k) => (k.last_used_at ? time(k.last_used_at) : "never") },
  { label: "Status", render: (k) => h("span", { class: `badge ${keyStatus(k)}` }, keyStatus(k)) },
  {
    label: "",
    render: (k) => (keyStatus(k) === "live"
      ? h("button", { type: "button", class: "link", "aria-label": `Revoke ${k.name}`, onclick: () => revokeKey(k) }, "Revoke")
      : ""),
  },
];

async function loadKeys() {
  const keys = await api("/api/v1/api-keys");
  const order = { live: 0, expired: 1, revoked: 2 };
  keys.sort((a, b) => (order[keyStatus(a)] - order[keyStatus(b)]) || b.created_at.localeCompare(a.created_at));
  fillTable($("#keys tbody"), keyColumns, keys, {
    empty: "No API key yet.",
    rowProps: (k) => ({ dataset: { key: k.id, status: keyStatus(k) } }),
  });
}

async function revokeKey(key) {
  const sure = await confirmAction(`Revoke the key "${key.name}"? Programs using it stop working at once.`, "Revoke");
  if (!sure) return;
  try {
    await api(`/api/v1/api-keys/${key.id}`, { method: "DELETE" });
    notify(`Key "${key.name}" revoked.`);
  } catch (error) {
    fail(error);
  }
  await loadKeys();
}

function scopeBoxes() {
  const box = $("#key-scopes");
  box.replaceChildren();
  for (const scope of ROLE_SCOPES[me.role] || ["read"]) {
    box.append(h("label", { class: "inline", title: SCOPE_HELP[scope] },
      h("input", { type: "checkbox", name: "scopes", value: scope, checked: scope === "read" }), scope));
  }
}

function showNewKey(secret) {
  $("#new-key-value").value = secret;
  $("#new-key").hidden = false;
  $("#new-key-value").focus();
  $("#new-key-value").select();
}

function hideNewKey() {
  $("#new-key-value").value = ""; // the only copy the page had
  $("#new-key").hidden = true;
}

async function createKey(_, form) {
  const name = form.elements.name.value.trim();
  const scopes = $$("input[name=scopes]:checked", form).map((box) => box.value);
  if (!scopes.length) throw new Error("Choose at least one scope.");
  const body = { name, scopes };
  const expires = form.elements.expires.value;
  // The end of the chosen day, in the browser's time zone, sent with its offset (as UTC).
  if (expires) body.expires_at = new Date(`${expires}T23:59:59`).toISOString();
  const created = await api("/api/v1/api-keys", { method: "POST", body });
  form.reset();
  scopeBoxes();
  showNewKey(created.key);
  await loadKeys();
}

// -- two-factor ------------------------------------------------------------------------------

function showCodes(codes) {
  $("#recovery-codes").replaceChildren(...codes.map((code) => h("li", {}, h("code", {}, code))));
  $("#mfa-codes").hidden = false;
  $("#codes-done").focus();
}

function hideCodes() {
  $("#recovery-codes").replaceChildren();
  $("#mfa-codes").hidden = true;
  paintProfile();
}

async function startEnrolment() {
  const enrolment = await api("/api/v1/users/me/mfa/totp", { method: "POST" });
  $("#mfa-qr").replaceChildren(svgImage(enrolment.qr_svg, "QR code to scan with an authenticator app"));
  // Groups of four are easier to type; apps ignore the spaces.
  $("#mfa-secret").textContent = enrolment.secret.replace(/(.{4})(?=.)/g, "$1 ");
  $("#mfa-uri").href = enrolment.otpauth_uri;
  $("#mfa-off").hidden = true;
  $("#mfa-enrol").hidden = false;
  $("#mfa-confirm-form").elements.code.focus();
}

function endEnrolment() {
  $("#mfa-qr").replaceChildren();
  $("#mfa-secret").textContent = "";
  $("#mfa-uri").href = "#";
  $("#mfa-confirm-form").reset();
  $("#mfa-enrol").hidden = true;
}

async function confirmEnrolment({ code }) {
  const answer = await withCredential("/api/v1/users/me/mfa/totp/confirm", {
    method: "POST", body: { code: code.replace(/\s/g, "") },
  });
  endEnrolment();
  showCodes(answer.recovery_codes);
  await reloadProfile();
  await loadSessions();
  notify("Two-factor authentication is on.");
}

// -- password, export, erasure ---------------------------------------------------------------

async function changePassword({ current_password, new_password, repeat, code }, form) {
  if (new_password !== repeat) throw new Error("The two new passwords differ.");
  const body = { current_password, new_password };
  if (me.mfa_enabled && code) body.code = code.trim();
  await withCredential("/api/v1/users/me/password", { body });
  form.reset();
  notify("Password changed. Every other session has ended and every API key is revoked.");
  await Promise.all([loadSessions(), loadKeys()]);
}

async function exportData() {
  const data = await api("/api/v1/users/me/export");
  const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
  const url = URL.createObjectURL(blob);
  const link = h("a", { href: url, download: `quantdesk-export-${data.exported_at.slice(0, 10)}.json`, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function deleteAccount({ password, code }) {
  const sure = await confirmAction(
    `Delete the account ${me.email} for good? Your personal data is erased and you are signed out.`,
    "Delete my account");
  if (!sure) return;
  const body = { password };
  if (me.mfa_enabled && code) body.code = code.trim();
  await withCredential("/api/v1/users/me", { method: "DELETE", body });
  location.assign("/login");
}

start(async ({ me: signedIn }) => {
  me = signedIn;
  paintProfile();
  scopeBoxes();

  $("#logout-all").addEventListener("click", logoutAll);
  onSubmit($("#key-form"), createKey);
  $("#new-key-copy").addEventListener("click", () => copy($("#new-key-value").value, "Key"));
  $("#new-key-done").addEventListener("click", hideNewKey);

  $("#mfa-start").addEventListener("click", () => startEnrolment().catch((error) => fail(error, $("#mfa-off"))));
  $("#mfa-cancel").addEventListener("click", () => { endEnrolment(); paintProfile(); });
  onSubmit($("#mfa-confirm-form"), confirmEnrolment);
  $("#codes-copy").addEventListener("click", () => copy($$("#recovery-codes code").map((c) => c.textContent).join("\n"), "Codes"));
  $("#codes-done").addEventListener("click", hideCodes);
  onSubmit($("#codes-form"), async ({ password, code }, form) => {
    const answer = await withCredential("/api/v1/users/me/mfa/recovery-codes", { body: { password, code: code.trim() } });
    form.reset();
    form.closest("details").open = false;
    $("#mfa-on").hidden = true;
    showCodes(answer.recovery_codes);
  });
  onSubmit($("#mfa-disable-form"), async ({ password, code }, form) => {
    await withCredential("/api/v1/users/me/mfa/totp/disable", { body: { password, code: code.trim() } });
    form.reset();
    form.closest("details").open = false;
    await reloadProfile();
    notify("Two-factor authentication is off.");
  });

  onSubmit($("#password-form"), changePassword);
  $("#export").addEventListener("click", () => exportData().catch((error) => fail(error)));
  onSubmit($("#delete-form"), deleteAccount);

  await Promise.all([loadSessions(), loadKeys()]);
});
