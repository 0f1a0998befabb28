// Signed-in pages: every same-origin state-changing fetch carries the CSRF token (from the vigil_csrf
// cookie, bound to the HttpOnly session cookie); an answer 401 (session expired or revoked) sends the user to
// the login page and back. Shows who is signed in, with a sign-out button. Imported first by every page.

const SAFE = new Set(["GET", "HEAD", "OPTIONS"]);

export function csrfToken() {
  const m = document.cookie.match(/(?:^|;\s*)vigil_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

function toLogin() {
  const here = location.pathname + location.search;
  location.assign(`/login.html?next=${encodeURIComponent(here)}`);
}

const nativeFetch = window.fetch.bind(window);

window.fetch = async (input, init = {}) => {
  const req = input instanceof Request ? input : null;
  const url = new URL(req ? req.url : String(input), location.href);
  const method = (init.method || (req ? req.method : "GET")).toUpperCase();
  if (url.origin === location.origin && !SAFE.has(method)) {
    const headers = new Headers(init.headers || (req ? req.headers : undefined));
    const token = csrfToken();
    if (token && !headers.has("x-csrf-token")) headers.set("x-csrf-token", token);
    init = { ...init, headers };
  }
  const res = await nativeFetch(input, init);
  if (res.status === 401 && url.origin === location.origin && url.pathname.startsWith("/api/")) toLogin();
  return res;
};

/** The signed-in user (GET /api/me, asked once per page): null if it could not be read. */
export const currentUser = nativeFetch("/api/me", { headers: { Accept: "application/json" } })
  .then((res) => (res.ok ? res.json() : null))
  .catch(() => null);

async function showUser() {
  const me = await currentUser;
  if (!me || !me.role) return; // not readable, or login is off (development): nothing to show
  const chip = document.createElement("div");
  chip.className = "user-chip";
  chip.id = "user-chip";
  chip.textContent = `${me.username} · ${me.role}`;
  const out = document.createElement("button");
  out.type = "button";
  out.textContent = "Sign out";
  out.addEventListener("click", async () => {
    await fetch("/api/logout", { method: "POST" });
    location.assign("/login.html");
  });
  chip.append(out);
  document.body.append(chip);
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", showUser);
else showUser();
