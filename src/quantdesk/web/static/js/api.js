// The dashboard's only way to the server: the public API, with the cookie session.
//
// Tokens live in HttpOnly cookies the page cannot read; every unsafe request echoes the
// readable qd_csrf cookie in X-CSRF-Token (the server's signed double-submit check).  An
// expired access cookie is renewed once through /auth/refresh, and a session that cannot
// be renewed sends the browser to the sign-in page.

const CSRF_COOKIE = "qd_csrf";
const SAFE = new Set(["GET", "HEAD"]);

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }

  // One line for a person: the problem's detail and, for a 422, which fields were wrong.
  describe() {
    const fields = (this.problem.errors || [])
      .map((e) => `${(e.loc || e.field || []).toString().replace(/^body,?/, "")}: ${e.msg || e.message || e.detail}`)
      .filter(Boolean);
    return [this.message, ...fields].join(" — ");
  }
}

export function csrfToken() {
  for (const part of document.cookie.split(";")) {
    const [name, ...rest] = part.trim().split("=");
    if (name === CSRF_COOKIE) return decodeURIComponent(rest.join("="));
  }
  return "";
}

let refreshing = null;

async function refreshSession() {
  refreshing ??= fetch("/api/v1/auth/refresh", {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": csrfToken(), "Content-Type": "application/json" },
    body: "{}",
  }).then((r) => r.ok).finally(() => { refreshing = null; });
  return refreshing;
}

export function toSignIn() {
  const next = location.pathname + location.search;
  location.assign(`/login?next=${encodeURIComponent(next)}`);
}

// `api("/api/v1/accounts")`, `api(path, {method: "POST", body})`.  Resolves to the parsed
// JSON (or text for non-JSON answers, null for 204); rejects with an ApiError.
// `credentialCheck: true` for calls whose 401 means "wrong password or code", not
// "signed out" (password change, MFA, erase): the error is shown, the session kept.
export async function api(path, { method = "GET", body, headers = {}, idempotent = false, query, credentialCheck = false } = {}) {
  let url = path;
  if (query) {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === "") continue;
      for (const item of Array.isArray(v) ? v : [v]) params.append(k, item);
    }
    const qs = params.toString();
    if (qs) url += (url.includes("?") ? "&" : "?") + qs;
  }
  const init = { method, credentials: "same-origin", headers: { Accept: "application/json", ...headers } };
  if (body !== undefined) {
    if (body instanceof FormData) init.body = body;
    else {
      init.body = JSON.stringify(body);
      init.headers["Content-Type"] = "application/json";
    }
  }
  // A retried click must not place an order twice: the key makes the retry a replay.
  if (idempotent) init.headers["Idempotency-Key"] = crypto.randomUUID();
  const send = () => {
    if (!SAFE.has(method)) init.headers["X-CSRF-Token"] = csrfToken();
    return fetch(url, init);
  };
  let response = await send();
  if (response.status === 401 && !path.startsWith("/api/v1/auth/") && !credentialCheck) {
    if (await refreshSession()) response = await send();
    if (response.status === 401) {
      toSignIn();
      throw new ApiError(401, { title: "Signed out" });
    }
  }
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  const payload = type.includes("json") ? await response.json() : await response.text();
  if (!response.ok) {
    throw new ApiError(response.status, typeof payload === "object" ? payload : { title: String(payload) });
  }
  return payload;
}
