// Token window logic. Plain JS, no bundler. The token is sent to the app once (Test & save) and
// never comes back: the app only ever returns a short hint like "eyJhbG…".
"use strict";

const invoke = (cmd, args) => window.__TAURI__.core.invoke(cmd, args);
const $ = (id) => document.getElementById(id);

function showSection(name) {
  for (const button of document.querySelectorAll("nav button")) {
    const on = button.dataset.section === name;
    button.setAttribute("aria-current", on ? "page" : "false");
    $("section-" + button.dataset.section).hidden = !on;
  }
  $("result").hidden = true;
  // Focus the first field still to fill in (the server is usually known already).
  const inputs = [...document.querySelectorAll("#section-" + name + " input")];
  const first = inputs.find((i) => !i.value) || inputs[0];
  if (first) first.focus();
}
window.showSection = showSection;

function showResult(ok, text) {
  const box = $("result");
  box.hidden = false;
  box.className = ok ? "ok" : "bad";
  box.textContent = text;
}

async function refresh() {
  const s = await invoke("window_state");
  $("state").textContent = s.header;
  $("version").textContent = s.version;
  $("device").textContent = s.device_name;
  $("about-server").textContent = s.server_url || "not set";
  const token = s.token_hint
    ? `${s.token_hint} (${s.token_kind === "api_key" ? "API key" : "login token"}${s.token_expiry ? ", " + s.token_expiry : ""})`
    : "none";
  $("about-token").textContent = token;
  $("current-token").textContent = token;
  for (const id of ["server", "signin-server"]) {
    if (!$(id).value && s.server_url) $(id).value = s.server_url;
  }
  const problem = $("keychain");
  problem.hidden = !s.keychain_problem;
  problem.textContent = s.keychain_problem || "";
  $("demo-box").hidden = Boolean(s.server_url && s.token_hint) && !s.demo_url;
  $("demo").textContent = s.demo_url ? "Open the demo console" : "Try the demo";
}

let checkTimer;
function checkTokenSoon() {
  clearTimeout(checkTimer);
  checkTimer = setTimeout(async () => {
    const value = $("token").value;
    const verdict = $("verdict");
    if (!value.trim()) {
      verdict.className = "help";
      verdict.textContent = "";
      return;
    }
    const v = await invoke("check_token", { token: value });
    verdict.className = "help " + (v.ok ? "verdict-ok" : "verdict-bad");
    verdict.textContent = v.message;
    $("token").setAttribute("aria-invalid", String(!v.ok));
  }, 150);
}

async function checkServer(input) {
  try {
    input.value = await invoke("check_server_url", { url: input.value });
    input.setAttribute("aria-invalid", "false");
    return true;
  } catch (message) {
    input.setAttribute("aria-invalid", "true");
    showResult(false, message);
    input.focus();
    return false;
  }
}

async function busy(button, label, work) {
  const original = button.textContent;
  button.disabled = true;
  button.textContent = label;
  try {
    await work();
  } finally {
    button.disabled = false;
    button.textContent = original;
  }
}

async function saveToken(event) {
  event.preventDefault();
  if (!(await checkServer($("server")))) return;
  await busy($("save"), "Testing…", async () => {
    try {
      const message = await invoke("test_and_save", { token: $("token").value, serverUrl: $("server").value });
      $("token").value = "";
      $("verdict").textContent = "";
      showResult(true, message);
    } catch (message) {
      showResult(false, message);
    }
    await refresh();
  });
}

async function signIn(event) {
  event.preventDefault();
  if (!(await checkServer($("signin-server")))) return;
  await busy($("signin"), "Signing in…", async () => {
    try {
      const message = await invoke("sign_in", {
        serverUrl: $("signin-server").value, user: $("user").value, password: $("password").value,
      });
      showResult(true, message);
    } catch (message) {
      showResult(false, message);
    } finally {
      $("password").value = "";
    }
    await refresh();
  });
}

async function demo() {
  await busy($("demo"), "Starting…", async () => {
    try {
      showResult(true, await invoke("start_demo"));
    } catch (message) {
      showResult(false, message);
    }
    await refresh();
  });
}

window.addEventListener("DOMContentLoaded", () => {
  for (const button of document.querySelectorAll("nav button")) {
    button.addEventListener("click", () => showSection(button.dataset.section));
  }
  $("token").addEventListener("input", checkTokenSoon);
  $("token-form").addEventListener("submit", saveToken);
  $("signin-form").addEventListener("submit", signIn);
  $("demo").addEventListener("click", demo);
  // Escape closes the window (it is destroyed; the app stays in the tray).
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") invoke("close_window").catch(() => window.close());
  });
  showSection((location.hash || "#token").slice(1));
  refresh().catch((e) => showResult(false, String(e)));
  setInterval(() => refresh().catch(() => {}), 2000);
});
