// Headless Chromium test of the devserver web console.
//
// Part 1 starts the real `wegent-devserver` binary and, as the device, `wegent-scripted-device`: a
// SCRIPTED STAND-IN for the Wegent executor (it streams a canned answer; no AI runs). In the
// browser: sign in, see the device come online, send a task, see streamed text and COMPLETED,
// cancel one, and save a screenshot to bench-results/screenshots/console.png.
//
// Part 2 connects the real `wegent-executor`, which runs the real Claude Code CLI against the
// devserver's demo model (only the model is scripted: it names the prompt and the directory
// Claude Code ran in). In the browser: create a project on a folder of the device picked with
// "Browse…" (command RPC), send a task into it, see that Claude Code ran in that folder, "Reply",
// and see the follow-up resume the same session (screenshot bench-results/screenshots/
// console-projects.png); then a git project cloned on the device now, and a task in its checkout.
// With the Codex CLI installed (WEGENT_TEST_CODEX, else .tools/codex), the user then picks the
// Codex agent once: the same executor runs the real `codex` against the demo model's Responses API
// in the project folder, streams the answer, and a reply resumes the Codex thread (screenshot
// bench-results/screenshots/console-codex.png).
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const targetDir = process.env.CARGO_TARGET_DIR || resolve(repo, "target");
const devserverBin = process.env.DEVSERVER_BIN || resolve(targetDir, "debug/wegent-devserver");
const deviceBin = process.env.SCRIPTED_DEVICE_BIN || resolve(targetDir, "debug/wegent-scripted-device");
const executorBin = process.env.EXECUTOR_BIN || resolve(targetDir, "debug/wegent-executor");
const claudeBin = process.env.WEGENT_TEST_CLAUDE || resolve(repo, ".tools/claude/node_modules/.bin/claude");
const codexBin = process.env.WEGENT_TEST_CODEX || resolve(repo, ".tools/codex/node_modules/.bin/codex");
const screenshot = resolve(repo, "bench-results/screenshots/console.png");
const projectsScreenshot = resolve(repo, "bench-results/screenshots/console-projects.png");
const codexScreenshot = resolve(repo, "bench-results/screenshots/console-codex.png");
const children = [];
const cleanups = [];
const step = (msg) => console.log(`[console-test] ${msg}`);

function start(bin, args, env = {}) {
  const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  child.out = "";
  child.stdout.on("data", (d) => { child.out += d.toString(); });
  child.stderr.on("data", (d) => process.stderr.write(`[${bin.split("/").pop()}] ${d}`));
  return child;
}

// Resolves with the first stdout line matching `re`, or rejects on exit/timeout.
function waitForLine(child, re, timeoutMs = 15000) {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => fail(new Error(`timed out waiting for ${re}`)), timeoutMs);
    const check = () => {
      const m = child.out.match(re);
      if (m) { clearTimeout(timer); ok(m); }
    };
    child.stdout.on("data", () => setImmediate(check));
    check();
    child.on("exit", (code) => { clearTimeout(timer); fail(new Error(`process exited with ${code} before ${re}`)); });
  });
}

async function main() {
  const server = start(devserverBin, ["--bind", "127.0.0.1:0", "--in-memory", "--password", "console-test-pass"]);
  const [, url] = await waitForLine(server, /listening on (http:\/\/[0-9.:]+)/);
  const [, token] = await waitForLine(server, /token:\s+(\S+)/);
  const [, link] = await waitForLine(server, /sign in:\s+(\S+)/);
  step(`devserver at ${url}`);

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    page.setDefaultTimeout(15000);
    await page.goto(url);
    await page.getByLabel("User name", { exact: true }).fill("admin");
    await page.getByLabel("Password", { exact: true }).fill("console-test-pass");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("Signed in as admin").waitFor();
    step("signed in");

    // The one-time link signs in without the password, leaves no code in the address bar, and
    // works only once.
    const viaLink = await browser.newPage();
    await viaLink.goto(link);
    await viaLink.getByText("Signed in as admin").waitFor();
    if (viaLink.url().includes("login=")) throw new Error(`the code stayed in the address bar: ${viaLink.url()}`);
    const reused = await browser.newPage();
    await reused.goto(link);
    await reused.getByText("This sign-in link was already used or has expired").waitFor();
    await Promise.all([viaLink.close(), reused.close()]);
    step("one-time sign-in link: signed in once, refused the second time");

    start(deviceBin, [url, "scripted-demo-1"], { WEGENT_AUTH_TOKEN: token });
    const row = page.locator('tr[data-device-id="scripted-demo-1"]');
    await row.locator(".device-status", { hasText: "🟢 Online" }).waitFor();
    await row.getByText("0/5 slots").waitFor();
    await row.getByText("⭐ Default").waitFor();
    step("device online, 0/5 slots, default");

    await page.getByLabel("Device", { exact: true }).selectOption("scripted-demo-1");
    await page.getByLabel("Message", { exact: true }).fill("please wave");
    await page.getByRole("button", { name: "Send" }).click();
    // Streaming: part of the answer is on screen while the task is still RUNNING (checked atomically).
    await page.waitForFunction(() => {
      const answer = document.getElementById("answer").textContent;
      return answer.startsWith("Hello from") && !answer.endsWith("please wave")
        && document.getElementById("task-status").textContent.includes("RUNNING");
    });
    step("partial answer visible while RUNNING");
    await row.getByText("1/5 slots").waitFor();
    await page.locator("#task-status", { hasText: "COMPLETED" }).waitFor();
    const answer = await page.locator("#answer").textContent();
    const expected = "Hello from the scripted device scripted-demo-1. You said: please wave";
    if (answer !== expected) throw new Error(`answer was ${JSON.stringify(answer)}, expected ${JSON.stringify(expected)}`);
    step("COMPLETED with the full streamed answer");
    // The device's next heartbeat frees its slot; the list follows without a page reload.
    await row.getByText("0/5 slots").waitFor();

    mkdirSync(dirname(screenshot), { recursive: true });
    await page.screenshot({ path: screenshot, fullPage: true });
    step(`screenshot: ${screenshot}`);

    // Cancel mid-stream: the device answers task:cancel with response.incomplete → CANCELLED.
    await page.getByLabel("Message", { exact: true }).fill("a longer request that we will cancel before it finishes");
    await page.getByRole("button", { name: "Send" }).click();
    await page.waitForFunction(() => document.getElementById("task-status").textContent.includes("Task #2: RUNNING")
      && document.getElementById("answer").textContent.startsWith("Hello"));
    await page.getByRole("button", { name: "Cancel" }).click();
    await page.locator("#task-status", { hasText: "Task #2: CANCELLED" }).waitFor();
    const partial = await page.locator("#answer").textContent();
    if (partial.endsWith("finishes")) throw new Error("the cancelled answer ran to the end");
    step("Cancel → CANCELLED with a partial answer");

    // A task's page where Wegent's web app has it (the device tray's "Open in Wegent"): the
    // console opens on that task.
    await page.goto(`${url}/devices/chat?taskId=1`);
    await page.locator("#task-status", { hasText: "Task #1: COMPLETED" }).waitFor();
    const linked = await page.locator("#answer").textContent();
    if (linked !== expected) throw new Error(`the linked task shows ${JSON.stringify(linked)}`);
    step("/devices/chat?taskId=1 opens task #1");
    await page.goto(url);

    await projectTaskReply(page, url, token);
  } finally {
    await browser.close();
  }
}

// Part 2: project → task → reply, with the real executor and the real Claude Code CLI.
async function projectTaskReply(page, url, token) {
  for (const [what, path, hint] of [["wegent-executor", executorBin, "cargo build -p wegent-executor"],
    ["the Claude Code CLI", claudeBin, "./scripts/install-deps.sh, or set WEGENT_TEST_CLAUDE"]]) {
    if (!existsSync(path)) throw new Error(`${what} is needed at ${path} (${hint})`);
  }
  // Real paths: Claude Code reports its working directory resolved (macOS /tmp is a symlink).
  const scratch = realpathSync(mkdtempSync(join(tmpdir(), "wegent-console-test-")));
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
  const home = join(scratch, "executor-home");
  mkdirSync(join(scratch, "code", "my-app"), { recursive: true });
  const code = join(scratch, "code");
  const folder = join(code, "my-app");
  mkdirSync(home, { recursive: true });
  const codex = existsSync(codexBin);
  if (process.env.WEGENT_TEST_CODEX && !codex) throw new Error(`WEGENT_TEST_CODEX=${codexBin} does not exist`);
  writeFileSync(join(home, "config.toml"), `claude_path = ${JSON.stringify(claudeBin)}\n`
    + (codex ? `codex_path = ${JSON.stringify(codexBin)}\n` : ""));
  start(executorBin, [], {
    WEGENT_EXECUTOR_HOME: home, WEGENT_NO_KEYCHAIN: "1", WEGENT_BACKEND_URL: url, WEGENT_AUTH_TOKEN: token,
    DEVICE_ID: "real-device-1", DEVICE_NAME: "real-device-1", WEGENT_EXECUTOR_PROJECTS_DIR: join(scratch, "workspace", "projects"),
    RUST_LOG: "warn",
  });
  const row = page.locator('tr[data-device-id="real-device-1"]');
  await row.locator(".device-status", { hasText: "🟢 Online" }).waitFor({ timeout: 60000 });
  step("the real executor is online");

  // A project on a folder of the device, picked with Browse… (the device lists its folders).
  await page.getByLabel("Project name", { exact: true }).fill("my-app");
  await page.locator("#project-device").selectOption("real-device-1");
  await page.getByLabel("Folder on the device", { exact: true }).fill(code);
  await page.getByRole("button", { name: "Browse…" }).click();
  await page.getByRole("button", { name: "📁 my-app" }).click();
  await page.waitForFunction((f) => document.getElementById("project-folder").value === f, folder);
  await page.getByRole("button", { name: "Create project" }).click();
  const listed = page.locator("#projects li", { hasText: "my-app" });
  await listed.getByText(`folder ${folder}`).waitFor();
  step(`project created on ${folder} (picked with Browse…)`);

  // A task into the project: the project is preselected and the device follows it.
  if (await page.locator("#project-select").inputValue() === "") throw new Error("the new project is not selected");
  if (!(await page.locator("#device-select").isDisabled())) throw new Error("the device select should follow the project");
  await page.getByLabel("Message", { exact: true }).fill("what is in this project?");
  await page.getByRole("button", { name: "Send" }).click();
  await page.locator("#task-status", { hasText: "Task #3: COMPLETED" }).waitFor({ timeout: 120000 });
  const first = await page.locator("#answer").textContent();
  for (const needle of ['You asked: "what is in this project?"', `Claude Code in \`${folder}\``]) {
    if (!first.includes(needle)) throw new Error(`the answer ${JSON.stringify(first)} lacks ${JSON.stringify(needle)}`);
  }
  await page.locator("#task-where", { hasText: `In project my-app: folder ${folder}` }).waitFor();
  step("task ran in the project folder (the answer names Claude Code's working directory)");

  // Reply: a follow-up in the same task resumes the same Claude session in the same folder.
  await page.getByLabel("Reply in this task", { exact: true }).fill("and what changed since?");
  await page.getByRole("button", { name: "Reply" }).click();
  await page.locator("#task-status", { hasText: "Task #3: RUNNING" }).waitFor();
  await page.locator("#task-status", { hasText: "Task #3: COMPLETED" }).waitFor({ timeout: 120000 });
  const second = await page.locator("#answer").textContent();
  for (const needle of ['You asked: "and what changed since?"', `Claude Code in \`${folder}\``,
    "resumed the task's session, which already holds 1 earlier answer"]) {
    if (!second.includes(needle)) throw new Error(`the reply's answer ${JSON.stringify(second)} lacks ${JSON.stringify(needle)}`);
  }
  const earlier = await page.locator("#conversation li").allTextContents();
  if (earlier.length !== 3 || earlier[0] !== "You: what is in this project?" || earlier[1] !== `Device: ${first}`
    || earlier[2] !== "You: and what changed since?") throw new Error(`conversation was ${JSON.stringify(earlier)}`);
  step("Reply → the same task, the same folder, the session resumed");

  mkdirSync(dirname(projectsScreenshot), { recursive: true });
  await page.screenshot({ path: projectsScreenshot, fullPage: true });
  step(`screenshot: ${projectsScreenshot}`);

  // A git project: paste a repository URL and branch, clone it on the device now ("Clone from
  // Git": the backend's commands over command RPC), then a task runs in the checkout.
  const repoUrl = bareRepo(scratch);
  await page.getByLabel("Project name", { exact: true }).fill("demo-repo");
  await page.locator("#project-device").selectOption("real-device-1");
  await page.getByLabel("A git repository", { exact: true }).check();
  await page.getByLabel("Repository URL", { exact: true }).fill(repoUrl);
  await page.getByLabel("Branch", { exact: true }).fill("main");
  await page.getByLabel(/Clone it on the device now/).check();
  await page.getByRole("button", { name: "Create project" }).click();
  await page.locator("#projects li", { hasText: "demo-repo" }).getByText(`${repoUrl} (main) in projects/demo`).waitFor({ timeout: 60000 });
  const checkout = join(scratch, "workspace", "projects", "demo");
  if (!existsSync(join(checkout, "NOTES.md"))) throw new Error(`the device did not clone into ${checkout}`);
  step(`git project cloned on the device into ${checkout}`);
  await page.getByLabel("Message", { exact: true }).fill("what is in the repository?");
  await page.getByRole("button", { name: "Send" }).click();
  await page.locator("#task-status", { hasText: "Task #4: COMPLETED" }).waitFor({ timeout: 120000 });
  const answer = await page.locator("#answer").textContent();
  if (!answer.includes(`Claude Code in \`${checkout}\``)) throw new Error(`the answer ${JSON.stringify(answer)} does not name ${checkout}`);
  step("task in the git project ran in its checkout");

  if (codex) await codexTask(page, folder);
  else step(`SKIPPED the Codex task: no Codex CLI at ${codexBin} (set WEGENT_TEST_CODEX or run ./scripts/install-deps.sh)`);
}

// The user picks the Codex agent for a task in the folder project: the real `codex` runs there
// against the demo model's Responses API, its answer streams in, and a reply resumes its thread.
async function codexTask(page, folder) {
  const option = page.locator("#project-select option", { hasText: "my-app" });
  await page.locator("#project-select").selectOption(await option.getAttribute("value"));
  await page.getByLabel("Agent", { exact: true }).selectOption("Codex");
  await page.getByLabel("Message", { exact: true }).fill("what can Codex see here?");
  await page.getByRole("button", { name: "Send" }).click();
  // Streaming: part of Codex's answer is on screen while the task is still RUNNING.
  await page.waitForFunction(() => {
    const answer = document.getElementById("answer").textContent;
    return answer.startsWith("Hello from") && !answer.includes("get real answers")
      && document.getElementById("task-status").textContent.includes("Task #5: RUNNING");
  }, null, { timeout: 120000 });
  step("Codex task: partial answer visible while RUNNING");
  await page.locator("#task-status", { hasText: "Task #5: COMPLETED" }).waitFor({ timeout: 120000 });
  const first = await page.locator("#answer").textContent();
  for (const needle of ['You asked: "what can Codex see here?"', `started Codex in \`${folder}\``]) {
    if (!first.includes(needle)) throw new Error(`the Codex answer ${JSON.stringify(first)} lacks ${JSON.stringify(needle)}`);
  }
  await page.locator("#task-where", { hasText: `Agent: Codex · In project my-app: folder ${folder}` }).waitFor();
  step("Codex task COMPLETED in the project folder");

  // The reply goes to the task's agent (Codex) even after the select goes back to Claude Code.
  await page.getByLabel("Agent", { exact: true }).selectOption("ClaudeCode");
  await page.getByLabel("Reply in this task", { exact: true }).fill("and now?");
  await page.getByRole("button", { name: "Reply" }).click();
  await page.locator("#task-status", { hasText: "Task #5: RUNNING" }).waitFor();
  await page.locator("#task-status", { hasText: "Task #5: COMPLETED" }).waitFor({ timeout: 120000 });
  const second = await page.locator("#answer").textContent();
  for (const needle of ['You asked: "and now?"', "Codex resumed the task's session, which already holds 1 earlier answer"]) {
    if (!second.includes(needle)) throw new Error(`the Codex reply's answer ${JSON.stringify(second)} lacks ${JSON.stringify(needle)}`);
  }
  step("Reply → Codex resumed its thread");
  await page.screenshot({ path: codexScreenshot, fullPage: true });
  step(`screenshot: ${codexScreenshot}`);
}

// A bare repository with one commit on `main`; its file:// URL.
function bareRepo(root) {
  const work = join(root, "repo-src");
  mkdirSync(work, { recursive: true });
  const git = (cwd, ...args) => execFileSync("git", ["-c", "user.name=t", "-c", "user.email=t@example.com", ...args], { cwd, stdio: "pipe" });
  git(work, "init", "-q", "-b", "main");
  writeFileSync(join(work, "NOTES.md"), "only in the repository\n");
  git(work, "add", "NOTES.md");
  git(work, "commit", "-q", "-m", "init");
  git(root, "clone", "-q", "--bare", work, join(root, "demo.git"));
  return `file://${join(root, "demo.git")}`;
}

main()
  .then(() => { step("PASS"); })
  .catch((e) => { console.error(`[console-test] FAIL: ${e.stack || e}`); process.exitCode = 1; })
  .finally(() => {
    for (const c of children) c.kill("SIGTERM");
    for (const clean of cleanups) clean();
  });
