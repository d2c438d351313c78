// Wegent devserver console. Talks only to the devserver's own REST API; live updates come from
// /api/console/events, read with fetch so the token travels in a header, never in a URL.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { token: sessionStorage.getItem("wegent-devserver-token"), user: sessionStorage.getItem("wegent-devserver-user"), devices: [], projects: [], task: null, abort: null, streams: new Map() };
const TERMINAL = ["COMPLETED", "FAILED", "CANCELLED"];
// The bots' agents (`bot[0].shell_type`) as users know them.
const AGENT_NAMES = { ClaudeCode: "Claude Code", Codex: "Codex" };

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
  for (const id of ["device-select", "project-device"]) fillDeviceSelect($(id));
  applyProjectChoice();
}

function fillDeviceSelect(select) {
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

// ---- projects ----------------------------------------------------------------------------------

const projectDevice = (p) => (p.config && p.config.execution && p.config.execution.deviceId) || "";

// Where a project's tasks run, as the task payload says it (protocol §16.1).
function projectPlace(p) {
  const c = p.config || {};
  const ws = c.workspace;
  if (ws && ws.source === "local_path") return `folder ${ws.localPath}`;
  if (ws && ws.source === "git" && c.git) return `${c.git.url} (${c.git.branch || "default branch"}) in projects/${ws.checkoutPath}`;
  return `folder project${p.id} in the device's workspace`;
}

function renderProjects() {
  const list = $("projects");
  list.replaceChildren();
  for (const p of state.projects) {
    const li = document.createElement("li");
    li.dataset.projectId = String(p.id);
    const name = document.createElement("strong");
    name.textContent = p.name;
    const where = document.createElement("code");
    where.className = "path";
    where.textContent = projectPlace(p);
    li.append(name, " · ", where, ` · on ${projectDevice(p)} · ${p.task_count} task${p.task_count === 1 ? "" : "s"}`);
    list.append(li);
  }
  list.hidden = state.projects.length === 0;
  $("projects-empty").hidden = state.projects.length > 0;
  const select = $("project-select");
  const chosen = select.value;
  for (const opt of [...select.options].slice(1)) opt.remove();
  for (const p of state.projects) {
    const opt = document.createElement("option");
    opt.value = String(p.id);
    opt.textContent = `${p.name} (${projectPlace(p)})`;
    select.append(opt);
  }
  select.value = state.projects.some((p) => String(p.id) === chosen) ? chosen : "";
  applyProjectChoice();
}

async function loadProjects() {
  try {
    const list = await api("GET", "/api/projects");
    state.projects = list.items || [];
    $("projects-error").textContent = "";
    renderProjects();
  } catch (e) { $("projects-error").textContent = e.message; }
}

// A task in a project runs on the project's device.
function applyProjectChoice() {
  const project = state.projects.find((p) => String(p.id) === $("project-select").value);
  const select = $("device-select");
  select.disabled = Boolean(project);
  if (project) select.value = projectDevice(project);
}

function chosenSource() { return document.querySelector('input[name="project-source"]:checked').value; }

function showSourceFields() {
  const git = chosenSource() === "git";
  $("git-fields").hidden = !git;
  $("folder-fields").hidden = git;
  $("project-repo").required = git;
  $("project-folder").required = !git;
}

async function runCommand(deviceId, body) {
  const res = await api("POST", `/api/devices/${encodeURIComponent(deviceId)}/commands`, body);
  if (!res.success || res.exit_code !== 0) throw new Error(res.stderr || res.error || `The device could not run ${body.command_key}`);
  return res.stdout;
}

// Folder picker: lists the subfolders of a path on the device through command RPC.
async function browse(path) {
  const deviceId = $("project-device").value;
  if (!deviceId) throw new Error("Choose a device first.");
  if (!path) path = (await runCommand(deviceId, { command_key: "home_dir" })).trim();
  const out = await runCommand(deviceId, { command_key: "ls_dirs", path });
  const dirs = out.split("\n").filter((l) => l.endsWith("/") && l !== "./" && l !== "../").map((l) => l.slice(0, -1));
  $("project-folder").value = path;
  const picker = $("folder-picker");
  picker.replaceChildren();
  const entry = (label, target) => {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.onclick = () => browse(target).catch(showProjectError);
    li.append(b);
    picker.append(li);
  };
  const parent = path.replace(/\/+$/, "").replace(/\/[^/]*$/, "") || "/";
  if (path !== "/") entry("⬆ ..", parent);
  for (const d of dirs) entry(`📁 ${d}`, `${path.replace(/\/+$/, "")}/${d}`);
  picker.hidden = false;
}

function showProjectError(e) { $("projects-error").textContent = e.message; }

async function createProject() {
  const name = $("project-name").value.trim();
  const deviceId = $("project-device").value;
  if (!deviceId) throw new Error("Choose a device for the project.");
  const execution = { targetType: "local", deviceId };
  if (chosenSource() === "local_path") {
    const localPath = $("project-folder").value.trim();
    return api("POST", "/api/projects", { name, description: "", config: { mode: "workspace", execution, workspace: { source: "local_path", localPath } } });
  }
  const git = { url: $("project-repo").value.trim(), branch: $("project-branch").value.trim() || "main" };
  if ($("project-clone").checked) {
    const res = await api("POST", "/api/projects/git-workspace", { device_id: deviceId, name, git });
    return res.project;
  }
  return api("POST", "/api/projects", { name, description: "", config: { mode: "workspace", execution, workspace: { source: "git" }, git } });
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
  $("reply").hidden = !state.task || !TERMINAL.includes(status);
}

// Why a turn ended without an answer: a failure, or a cancel with the device's reason.
function endNote(status, message) {
  return status === "CANCELLED" ? `Cancelled: ${message}` : `Error: ${message}`;
}

// Earlier turns of the task: every message before the answer being shown.
function renderConversation(t) {
  const list = $("conversation");
  list.replaceChildren();
  for (const s of t.subtasks || []) {
    if (s.id === state.task.subtask) break;
    const li = document.createElement("li");
    li.className = s.role === "USER" ? "user" : "device";
    const answer = s.result ? s.result.value : s.error_message ? endNote(s.status, s.error_message) : "";
    li.textContent = s.role === "USER" ? `You: ${s.prompt}` : `Device: ${answer}`;
    list.append(li);
  }
  const project = state.projects.find((p) => p.id === t.project_id);
  const where = t.project_id ? `In project ${project ? `${project.name}: ${projectPlace(project)}` : `#${t.project_id}`}` : "";
  // Follow-ups stay on the task's agent, whatever the Agent select says now.
  const agent = AGENT_NAMES[t.agent] || t.agent;
  $("task-where").textContent = [agent && `Agent: ${agent}`, where].filter(Boolean).join(" · ");
}

async function refreshTask() {
  if (!state.task) return;
  const t = await api("GET", `/api/tasks/${state.task.id}`);
  const text = t.result_text || (t.error_message ? endNote(t.status, t.error_message) : $("answer").textContent);
  renderConversation(t);
  setTask(t.status, text);
}

// A new turn started (a new task or a reply): show its stream from the start.
function startTurn(res) {
  state.task = { id: res.taskId, subtask: res.assistantSubtaskId };
  setTask("RUNNING", state.streams.get(res.assistantSubtaskId) || "");
  refreshTask().catch(() => {}); // it may already have finished
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

// A task's page (`/devices/chat?taskId=<id>`, where Wegent's web app has it and the device's tray
// links to): show that task once signed in.
async function openLinkedTask() {
  const id = Number(new URLSearchParams(location.search).get("taskId"));
  if (!id || !state.token) return;
  try {
    const t = await api("GET", `/api/tasks/${id}`);
    const answers = (t.subtasks || []).filter((s) => s.role !== "USER");
    state.task = { id, subtask: answers.length ? answers[answers.length - 1].id : null };
    await refreshTask();
  } catch (e) { $("chat-error").textContent = `Task #${id}: ${e.message}`; }
}

function showSignedIn() {
  const signedIn = Boolean(state.token);
  $("sign-in-section").hidden = signedIn;
  $("devices-section").hidden = !signedIn;
  $("chat-section").hidden = !signedIn;
  $("projects-section").hidden = !signedIn;
  $("sign-out").hidden = !signedIn;
  $("who").textContent = signedIn ? `Signed in as ${state.user}` : "";
  if (signedIn) { loadDevices(); loadProjects(); listen(); openLinkedTask(); }
}

function signOut(message) {
  state.token = null;
  sessionStorage.removeItem("wegent-devserver-token");
  if (state.abort) state.abort.abort();
  showSignedIn();
  if (message) $("sign-in-error").textContent = message;
}

function signedIn(token, user) {
  state.token = token;
  state.user = user;
  sessionStorage.setItem("wegent-devserver-token", token);
  sessionStorage.setItem("wegent-devserver-user", user);
}

// A one-time sign-in link (`/#login=<code>`, from the demo or the server's start-up lines): take
// the code out of the address bar at once, then trade it for a login token.
async function signInFromLink() {
  const m = location.hash.match(/^#login=([A-Za-z0-9_-]+)$/);
  if (!m) return;
  history.replaceState(null, "", location.pathname + location.search);
  try {
    const res = await api("POST", "/api/auth/console-link", { code: m[1] });
    signedIn(res.access_token, res.user_name);
  } catch (e) { $("sign-in-error").textContent = e.message; }
}

$("sign-in").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("sign-in-error").textContent = "";
  try {
    const user = $("user").value.trim();
    const res = await api("POST", "/api/auth/login", { user_name: user, password: $("password").value });
    signedIn(res.access_token, user);
    $("password").value = "";
    showSignedIn();
  } catch (e) { $("sign-in-error").textContent = e.message; }
});

$("sign-out").addEventListener("click", () => signOut());

$("chat").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("chat-error").textContent = "";
  const deviceId = $("device-select").value;
  const projectId = Number($("project-select").value) || 0;
  if (!deviceId && !projectId) { $("chat-error").textContent = "Choose a device first."; return; }
  // In a project the server picks the project's device, as the real backend does.
  const target = projectId ? { projectId } : { deviceId };
  try {
    const agent = $("agent-select").value;
    const res = await api("POST", "/api/device-chat/tasks", { teamId: 0, ...target, agent, message: $("prompt").value });
    startTurn(res);
    if (projectId) loadProjects();
  } catch (e) { $("chat-error").textContent = e.message; }
});

$("reply").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  if (!state.task) return;
  $("chat-error").textContent = "";
  try {
    const res = await api("POST", "/api/device-chat/tasks", { teamId: 0, taskId: state.task.id, message: $("reply-text").value });
    $("reply-text").value = "";
    startTurn(res);
  } catch (e) { $("chat-error").textContent = e.message; }
});

$("project-select").addEventListener("change", applyProjectChoice);
for (const radio of document.querySelectorAll('input[name="project-source"]')) radio.addEventListener("change", showSourceFields);
$("browse").addEventListener("click", () => { $("projects-error").textContent = ""; browse($("project-folder").value.trim()).catch(showProjectError); });

$("new-project").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("projects-error").textContent = "";
  $("create-project").disabled = true;
  try {
    const project = await createProject();
    ev.target.reset();
    showSourceFields();
    $("folder-picker").hidden = true;
    await loadProjects();
    $("project-select").value = String(project.id);
    applyProjectChoice();
  } catch (e) { showProjectError(e); }
  finally { $("create-project").disabled = false; }
});

$("cancel").addEventListener("click", async () => {
  if (!state.task) return;
  setTask("CANCELLING");
  try { await api("POST", `/api/tasks/${state.task.id}/cancel`); await refreshTask(); }
  catch (e) { $("chat-error").textContent = e.message; }
});

signInFromLink().finally(showSignedIn);
