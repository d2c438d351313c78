// Headless Chromium test of the devserver web console.
//
// Starts the real `wegent-devserver` binary and, as the device, `wegent-scripted-device`: a
// SCRIPTED STAND-IN for the Wegent executor (it streams a canned answer; no AI runs). Then, in
// the browser: sign in, see the device come online, send a task, see streamed text and COMPLETED,
// and save a screenshot to bench-results/screenshots/console.png.
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../..");
const targetDir = process.env.CARGO_TARGET_DIR || resolve(repo, "target");
const devserverBin = process.env.DEVSERVER_BIN || resolve(targetDir, "debug/wegent-devserver");
const deviceBin = process.env.SCRIPTED_DEVICE_BIN || resolve(targetDir, "debug/wegent-scripted-device");
const screenshot = resolve(repo, "bench-results/screenshots/console.png");
const children = [];
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
  } finally {
    await browser.close();
  }
}

main()
  .then(() => { step("PASS"); })
  .catch((e) => { console.error(`[console-test] FAIL: ${e.stack || e}`); process.exitCode = 1; })
  .finally(() => { for (const c of children) c.kill("SIGTERM"); });
