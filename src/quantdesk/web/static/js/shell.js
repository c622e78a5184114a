// What every signed-in page does first: theme, session, navigation, stream status.
//
//   import { start } from "../shell.js";
//   start(async ({ me, stream }) => { ...the page... });

import { api, toSignIn } from "./api.js";
import { stream } from "./stream.js";
import { fail } from "./ui.js";

const THEME_KEY = "qd-theme";

export function applyTheme() {
  const saved = localStorage.getItem(THEME_KEY);
  if (saved) document.documentElement.dataset.theme = saved;
  document.getElementById("theme-toggle")?.addEventListener("click", () => {
    const dark = document.documentElement.dataset.theme
      ? document.documentElement.dataset.theme === "dark"
      : matchMedia("(prefers-color-scheme: dark)").matches;
    const next = dark ? "light" : "dark";
    document.documentElement.dataset.theme = next;
    localStorage.setItem(THEME_KEY, next); // a preference, not a credential
  });
}

export async function start(page) {
  applyTheme();
  let me;
  try {
    me = await api("/api/v1/users/me");
  } catch (error) {
    if (error.status !== 401) fail(error);
    return;
  }
  document.getElementById("user-email").textContent = me.email;
  if (me.role === "admin") {
    for (const item of document.querySelectorAll(".admin-only")) item.hidden = false;
  }
  document.getElementById("sign-out").addEventListener("click", async () => {
    try {
      await api("/api/v1/auth/logout", { method: "POST" });
    } finally {
      toSignIn();
    }
  });
  const badge = document.getElementById("stream-status");
  stream.onStatus((status) => {
    badge.textContent = status;
    badge.dataset.status = status;
    badge.hidden = status === "idle";
  });
  document.body.dataset.ready = "false";
  try {
    await page({ me, stream });
  } catch (error) {
    fail(error);
  } finally {
    document.body.dataset.ready = "true"; // tests and screenshots wait for this
  }
}
