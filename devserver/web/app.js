// Wegent devserver console. Talks only to the devserver's own REST API; live updates come from
// /api/console/events, read with fetch so the token travels in a header, never in a URL.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("wegent-devserver-token"), user: sessionStorage.getItem("wegent-devserver-user"), devices: [], task: null, abort: null, streams: new Map() };

async function api(method, path, body) {
  const headers = { "Content-Type": "application/json" };
  if (state.token) headers.Authorization = `Bearer ${state.token}`;
  const res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) signOut("Your session expired. Sign in again.");
  if (!res.ok) throw new Error(typeof data.detail === "string" ? data.detail : `HTTP ${res.status}`);
  return data;
}

function statusOf(d) {
  if (d.status === "offline") return { icon: "🔴", text: "Offline" };
  if (d.status === "busy" || (d.slot_max > 0 && d.slot_used >= d.slot_max)) return { icon: "🟡", text: "Busy" };
  return { icon: "🟢", text: "Online" };
}

function renderDevices() {
  const body = $("devices").querySelector("tbody");
  body.replaceChildren();
  for (const d of state.devices) {
    const tr = document.createElement("tr");
    tr.dataset.deviceId = d.device_id;
    const name = document.createElement("td");
    name.textContent = d.name === d.device_id ? d.name : `${d.name} (${d.device_id})`;
    const status = document.createElement("td");
    const s = statusOf(d);
    status.textContent = `${s.icon} ${s.text}`;
    status.className = "device-status";
    const slots = document.createElement("td");
    slots.textContent = `${d.slot_used}/${d.slot_max > 0 ? d.slot_max : "∞"} slots`;
    const def = document.createElement("td");
    const star = document.createElement("button");
    star.type = "button";
    star.className = "secondary";
    star.textContent = d.is_default ? "⭐ Default" : "☆ Set default";
    star.setAttribute("aria-pressed", String(d.is_default));
    star.setAttribute("aria-label", d.is_default ? `${d.name} is the default device` : `Make ${d.name} the default device`);
    star.onclick = () => api("PUT", `/api/devices/${encodeURIComponent(d.device_id)}/default`).then(loadDevices).catch(showDeviceError);
    def.append(star);
    const actions = document.createElement("td");
    const del = document.createElement("button");
    del.type = "button";
    del.className = "danger";
    del.textContent = "Delete";
    del.setAttribute("aria-label", `Delete ${d.name}`);
    del.onclick = () => {
      if (confirm(`Delete ${d.name}? It reappears when it registers again.`))
        api("DELETE", `/api/devices/${encodeURIComponent(d.device_id)}`).then(loadDevices).catch(showDeviceError);
    };
    actions.append(del);
    tr.append(name, status, slots, def, actions);
    body.append(tr);
  }
  $("devices").hidden = state.devices.length === 0;
  $("devices-empty").hidden = state.devices.length > 0;
  const select = $("device-select");
  const chosen = select.value;
  select.replaceChildren();
  for (const d of state.devices) {
    const opt = document.createElement("option");
    opt.value = d.device_id;
    opt.textContent = `${statusOf(d).text} · ${d.name}${d.is_default ? " ⭐" : ""}`;
    select.append(opt);
  }
  const fallback = state.devices.find((d) => d.is_default) || state.devices[0];
  select.value = state.devices.some((d) => d.device_id === chosen) ? chosen : fallback ? fallback.device_id : "";
}

function showDeviceError(e) { $("devices-error").textContent = e.message; }

let reloadTimer = null;
async function loadDevices() {
  clearTimeout(reloadTimer);
  try {
    const list = await api("GET", "/api/devices");
    state.devices = list.items || [];
    $("devices-error").textContent = "";
    renderDevices();
  } catch (e) { showDeviceError(e); }
}
function scheduleReload() { clearTimeout(reloadTimer); reloadTimer = setTimeout(loadDevices, 150); }

function setTask(status, text) {
  $("task-status").textContent = state.task ? `Task #${state.task.id}: ${status}` : "";
  if (text !== undefined) $("answer").textContent = text;
  const running = ["PENDING", "RUNNING", "CANCELLING"].includes(status);
  $("cancel").disabled = !running;
  $("send").disabled = running;
}

async function refreshTask() {
  if (!state.task) return;
  const t = await api("GET", `/api/tasks/${state.task.id}`);
  const text = t.result_text || (t.error_message ? `Error: ${t.error_message}` : $("answer").textContent);
  setTask(t.status, text);
}

function onEvent(e) {
  switch (e.type) {
    case "devices_changed": case "device_online": case "device_offline": scheduleReload(); break;
    case "task_delta":
      // Deltas may arrive before the dispatch answer names the task: keep every stream's text.
      state.streams.set(e.subtask_id, (state.streams.get(e.subtask_id) || "") + e.delta);
      if (state.task && e.subtask_id === state.task.subtask) $("answer").textContent = state.streams.get(e.subtask_id);
      break;
    case "task_settled":
      if (state.task && e.subtask_id === state.task.subtask) refreshTask().catch((err) => ($("chat-error").textContent = err.message));
      break;
  }
}

async function listen() {
  if (state.abort) state.abort.abort();
  const abort = new AbortController();
  state.abort = abort;
  while (!abort.signal.aborted && state.token) {
    try {
      const res = await fetch("/api/console/events", { headers: { Authorization: `Bearer ${state.token}` }, signal: abort.signal });
      if (res.status === 401) return signOut("Your session expired. Sign in again.");
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      loadDevices();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const chunk = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const data = chunk.split("\n").filter((l) => l.startsWith("data:")).map((l) => l.slice(5).trim()).join("\n");
          if (data) { try { onEvent(JSON.parse(data)); } catch (_) { /* a keep-alive or partial line */ } }
        }
      }
    } catch (_) { if (abort.signal.aborted) return; }
    await new Promise((r) => setTimeout(r, 2000)); // the devserver restarted: reconnect
  }
}

function showSignedIn() {
  const signedIn = Boolean(state.token);
  $("sign-in-section").hidden = signedIn;
  $("devices-section").hidden = !signedIn;
  $("chat-section").hidden = !signedIn;
  $("sign-out").hidden = !signedIn;
  $("who").textContent = signedIn ? `Signed in as ${state.user}` : "";
  if (signedIn) { loadDevices(); listen(); }
}

function signOut(message) {
  state.token = null;
  sessionStorage.removeItem("wegent-devserver-token");
  if (state.abort) state.abort.abort();
  showSignedIn();
  if (message) $("sign-in-error").textContent = message;
}

$("sign-in").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("sign-in-error").textContent = "";
  try {
    const user = $("user").value.trim();
    const res = await api("POST", "/api/auth/login", { user_name: user, password: $("password").value });
    state.token = res.access_token;
    state.user = user;
    sessionStorage.setItem("wegent-devserver-token", state.token);
    sessionStorage.setItem("wegent-devserver-user", user);
    $("password").value = "";
    showSignedIn();
  } catch (e) { $("sign-in-error").textContent = e.message; }
});

$("sign-out").addEventListener("click", () => signOut());

$("chat").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("chat-error").textContent = "";
  const deviceId = $("device-select").value;
  if (!deviceId) { $("chat-error").textContent = "Choose a device first."; return; }
  try {
    const res = await api("POST", "/api/device-chat/tasks", { teamId: 0, deviceId, message: $("prompt").value });
    state.task = { id: res.taskId, subtask: res.assistantSubtaskId };
    setTask("RUNNING", state.streams.get(res.assistantSubtaskId) || "");
    refreshTask().catch(() => {}); // it may already have finished
  } catch (e) { $("chat-error").textContent = e.message; }
});

$("cancel").addEventListener("click", async () => {
  if (!state.task) return;
  setTask("CANCELLING");
  try { await api("POST", `/api/tasks/${state.task.id}/cancel`); await refreshTask(); }
  catch (e) { $("chat-error").textContent = e.message; }
});

showSignedIn();
