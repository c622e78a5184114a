// Sign in (with the TOTP step when the account has MFA), or create an account.

import { api } from "../api.js";
import { applyTheme } from "../shell.js";
import { $, onSubmit } from "../ui.js";

applyTheme();

// Only a path of this site: ?next=//evil.example must not become an open redirect.
function nextPath() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  return next.startsWith("/") && !next.startsWith("//") && !next.startsWith("/\\") ? next : "/";
}

let challenge = null;

function show(form) {
  for (const f of ["#login-form", "#mfa-form", "#register-form"]) $(f).hidden = f !== form;
  $(`${form} input`).focus();
}

async function signIn(email, password) {
  const answer = await api("/api/v1/auth/login", { method: "POST", body: { email, password, cookie: true } });
  if (answer.mfa_required) {
    challenge = answer.challenge_token;
    show("#mfa-form");
    return;
  }
  location.assign(nextPath());
}

onSubmit($("#login-form"), ({ email, password }) => signIn(email, password));

onSubmit($("#mfa-form"), async ({ code }) => {
  await api("/api/v1/auth/login/mfa", { method: "POST", body: { challenge_token: challenge, code: code.trim() } });
  location.assign(nextPath());
});

onSubmit($("#register-form"), async ({ email, password }) => {
  await api("/api/v1/auth/register", { method: "POST", body: { email, password } });
  await signIn(email, password);
});

$("#show-register").addEventListener("click", () => show("#register-form"));
$("#show-login").addEventListener("click", () => show("#login-form"));
// The forms have no action of their own: until this module runs, their buttons stay
// disabled, so an early click cannot submit the password in a GET URL.
for (const button of document.querySelectorAll("form button[type=submit]")) button.disabled = false;
document.body.dataset.ready = "true";
