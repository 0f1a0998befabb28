// Sign-in page: POST /api/login (sets the HttpOnly session cookie and the CSRF cookie), then back to the
// page the user asked for. A one-time password must be replaced first (POST /api/me/password).

const $ = (id) => document.getElementById(id);

function target() {
  const next = new URLSearchParams(location.search).get("next") || "/";
  // only same-site paths: never an absolute URL someone put in the link
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

function csrf() {
  const m = document.cookie.match(/(?:^|;\s*)vigil_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

function showError(text) {
  const el = $("login-error");
  el.textContent = text;
  el.hidden = !text;
}

let currentPassword = "";

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  showError("");
  $("login-button").disabled = true;
  try {
    currentPassword = $("password").value;
    const res = await fetch("/api/login", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ username: $("username").value.trim(), password: currentPassword }),
    });
    if (res.status === 429) {
      showError("Too many failed attempts. Wait a few minutes, then try again.");
      return;
    }
    if (!res.ok) {
      showError("Unknown user or wrong password.");
      return;
    }
    const body = await res.json();
    if (body.user.must_change) {
      $("login-form").hidden = true;
      $("change-form").hidden = false;
      $("new-password").focus();
      return;
    }
    location.assign(target());
  } catch (e) {
    showError(`The server cannot be reached (${e.message}).`);
  } finally {
    $("login-button").disabled = false;
  }
});

$("change-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  showError("");
  const a = $("new-password").value;
  if (a !== $("new-password-2").value) {
    showError("The two new passwords differ.");
    return;
  }
  const res = await fetch("/api/me/password", {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": csrf() },
    body: JSON.stringify({ current: currentPassword, new: a }),
  });
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    showError(typeof body.detail === "string" ? body.detail : "The password was not accepted (at least 10 characters).");
    return;
  }
  location.assign(target());
});
