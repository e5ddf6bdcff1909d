/**
 * The web console in a real browser (Debian's chromium, driven by playwright-core) against the running stack:
 * sign-in, keys, a usage chart of requests this test makes, the playground streaming and stopping, an operator
 * draining a runner, and a tenant kept off operator pages. Screenshots go to test/artifacts/ for people to look at.
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { type Browser, type BrowserContext, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { chromiumBinary } from "../scripts/prerequisites";
import { repoRoot } from "./harness";
import { api, client, eventually } from "./inference-support";

const { url, key, adminKey } = inject("stack");
const ARTIFACTS = join(repoRoot, "test", "artifacts");
/** Without these, chromium as root in a closed network stalls on sandboxing and background fetches. */
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

let browser: Browser;

beforeAll(async () => {
  const executablePath = chromiumBinary();
  if (!executablePath) throw new Error("chromium is missing: `npm test` installs it (scripts/prerequisites.ts)");
  mkdirSync(ARTIFACTS, { recursive: true });
  // launch() gives every browser a fresh, throwaway --user-data-dir.
  browser = await chromium.launch({ executablePath, args: CHROMIUM_ARGS, timeout: 60_000 });
});

afterAll(async () => {
  await browser?.close();
});

async function signedIn(secret: string): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  await page.goto(`${url}/console`);
  await expect(page.getByRole("heading", { name: "Sign in" }).isVisible()).resolves.toBe(true);
  await page.getByLabel("API key or admin key").fill(secret);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(/\/console\/(usage|admin)$/);
  return { context, page };
}

const shot = (page: Page, name: string) =>
  page.screenshot({ path: join(ARTIFACTS, `console-${name}.png`), fullPage: true });
const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`;

describe("the console in chromium", () => {
  let tenant: { context: BrowserContext; page: Page };

  beforeAll(async () => {
    tenant = await signedIn(key);
  });

  it("keeps the session in a Secure, HttpOnly, SameSite=Strict cookie that chromium accepts on 127.0.0.1", async () => {
    const cookies = await tenant.context.cookies(url);
    const session = cookies.find((c) => c.name === "__Host-corral_session");
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: "Strict", path: "/" });
    await expect(tenant.page.evaluate("document.cookie")).resolves.not.toContain("corral_session");
  });

  it("creates a key shown once, and revoking it makes the API refuse it", async () => {
    const { page } = tenant;
    await page.getByRole("link", { name: "API keys" }).click();
    const label = unique("browser");
    await page.getByLabel("Label").fill(label);
    await page.getByRole("button", { name: "Create key" }).click();
    const issued = (await page.locator("#new-key").textContent()) ?? "";
    expect(issued).toMatch(/^corral-/);
    expect((await api(url, issued, "GET", "/api/tags")).status).toBe(200);
    await shot(page, "key-created");

    await page.getByRole("button", { name: `Revoke key ${label}` }).click();
    await expect(page.getByRole("status").first().textContent()).resolves.toContain("Key revoked.");
    // Other isolates may trust a key for a few seconds more (db/key-cache.ts); the local stack has one.
    expect(await eventually(async () => (await api(url, issued, "GET", "/api/tags")).status === 401, 15_000)).toBe(
      true,
    );
    await expect(page.locator(`tr:has-text("${label}")`).textContent()).resolves.toContain("revoked");
  });

  it("charts the requests this test makes", async () => {
    const model = unique("console-usage");
    expect((await api(url, key, "POST", "/api/copy", { source: "tiny", destination: model })).status).toBe(200);
    const ollama = client(url, key);
    let promptTokens = 0;
    let outputTokens = 0;
    for (const prompt of ["One", "Two words", "Three words here"]) {
      const res = await ollama.generate({ model, prompt, options: { num_predict: 4, seed: 1 } });
      promptTokens += res.prompt_eval_count;
      outputTokens += res.eval_count;
    }
    // Usage rows are written after the response ends; wait for all three.
    let recorded = "";
    const allRecorded = await eventually(async () => {
      const rows = (await api(url, key, "GET", "/api/usage")).body.usage as { model: string; requests: number }[];
      const row = rows.find((r) => r.model.startsWith(model));
      recorded = row?.model ?? "";
      return row?.requests === 3;
    }, 30_000);
    expect(allRecorded).toBe(true);

    const { page } = tenant;
    await page.getByRole("link", { name: "Usage" }).click();
    const titles = await page.locator("#tokens-by-model g > title").allTextContents();
    expect(titles).toContain(`${recorded}, Tokens in: ${promptTokens}`);
    expect(titles).toContain(`${recorded}, Tokens out: ${outputTokens}`);
    const requests = await page.locator("#requests-by-model g > title").allTextContents();
    expect(requests).toContain(`${recorded}, Requests: 3`);
    const row = await page.locator(`#usage-table tr:has-text("${recorded}")`).allTextContents();
    expect(row.join(" ")).toContain(`${recorded}3${promptTokens}${outputTokens}`);
    await shot(page, "usage");
    await api(url, key, "DELETE", "/api/delete", { model });
  });

  it("streams a chat in the playground, stops it, and reports the last answer's usage", async () => {
    const { page } = tenant;
    await page.getByRole("link", { name: "Playground" }).click();
    const tiny = await page
      .locator("#model option")
      .filter({ hasText: /^tiny(:latest)?$/ })
      .first()
      .textContent();
    await page.getByLabel("Model").selectOption(tiny ?? "tiny");
    await page.getByLabel("Max output tokens").fill("8000");
    await page.getByLabel("Seed").fill("7");
    await page.getByLabel("Message").fill("Tell me a very long story.");
    // The tiny model's answer ends (EOS) within seconds on a fast machine: the browser's network is slowed so that
    // the answer is certainly still streaming when Stop is pressed.
    const cdp = await page.context().newCDPSession(page);
    await cdp.send("Network.enable");
    const throttle = (bytesPerSecond: number) =>
      cdp.send("Network.emulateNetworkConditions", {
        offline: false,
        latency: 0,
        downloadThroughput: bytesPerSecond,
        uploadThroughput: -1,
      });
    await throttle(1500);
    await page.getByRole("button", { name: "Send" }).click();
    const answer = page.locator("#answer");
    const status = page.locator("#play-status");
    expect(await eventually(async () => ((await answer.textContent()) ?? "").length > 20, 60_000, 20)).toBe(true);
    await page.getByRole("button", { name: "Stop" }).click();
    await throttle(-1);
    expect(await eventually(async () => (await status.textContent()) === "Stopped.", 30_000, 50)).toBe(true);
    const stopped = (await answer.textContent()) ?? "";
    expect(stopped.length).toBeGreaterThan(20);
    await shot(page, "playground-stopped");
    expect(await page.getByRole("button", { name: "Send" }).isEnabled()).toBe(true);
    expect(await answer.textContent()).toBe(stopped);

    await page.getByLabel("Max output tokens").fill("6");
    await page.getByLabel("Message").fill("And a short one.");
    await page.getByRole("button", { name: "Send" }).click();
    expect(await eventually(async () => (await status.textContent()) === "Done.", 60_000, 50)).toBe(true);
    const stats = (await page.locator("#play-stats").textContent()) ?? "";
    expect(stats).toMatch(/Prompt tokens: \d+ · Output tokens: 6 · [\d.]+ tokens\/s/);
    await shot(page, "playground-done");
  });

  it("lists models with details and the running ones, and copies and deletes one", async () => {
    const { page } = tenant;
    await page.getByRole("link", { name: "Models" }).click();
    const tinyRow = page
      .locator("#models tbody tr")
      .filter({ has: page.getByRole("link", { name: /^tiny(:latest)?$/ }) });
    const cells = await tinyRow.locator("td").allTextContents();
    expect(cells[2]).toBe("llama");
    expect(cells[5]).toContain("completion");
    // The playground just used tiny, so it is loaded.
    await expect(page.locator("#running").textContent()).resolves.toMatch(/tiny/);
    await shot(page, "models");

    const copy = unique("console-copy");
    await tinyRow.getByLabel(/^Copy .+ to$/).fill(copy);
    await tinyRow.getByRole("button", { name: "Copy" }).click();
    await expect(page.getByRole("status").first().textContent()).resolves.toMatch(/^Copied tiny(:latest)? to /);
    const copied = page.locator("#models tbody tr").filter({ hasText: copy });
    await copied.getByRole("button", { name: /^Delete / }).click();
    await expect(page.getByRole("status").first().textContent()).resolves.toContain("Deleted");
    expect(await page.locator("#models").textContent()).not.toContain(copy);

    await tinyRow.getByRole("link").click();
    await expect(page.getByRole("heading", { name: "Modelfile" }).isVisible()).resolves.toBe(true);
  });

  it("sets, replaces and removes registry credentials without ever showing the password", async () => {
    const { page } = tenant;
    await page.getByRole("link", { name: "Registry credentials" }).click();
    const host = `${unique("registry")}.example.test`;
    for (const username of ["first-user", "second-user"]) {
      await page.getByLabel("Registry host").fill(host);
      await page.getByLabel("Username").fill(username);
      await page.getByLabel("Password or token").fill("s3cret-never-shown");
      await page.getByRole("button", { name: "Save credentials" }).click();
      await expect(page.locator(`#registries tr:has-text("${host}")`).textContent()).resolves.toContain(username);
    }
    expect(await page.content()).not.toContain("s3cret-never-shown");
    await shot(page, "registry");
    await page.getByRole("button", { name: `Remove credentials for ${host}` }).click();
    expect(await page.locator("#registries").textContent()).not.toContain(host);
  });

  it("works from the keyboard alone and fits a phone's screen", async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    const page = await context.newPage();
    await page.goto(`${url}/console`);
    // The key field has focus on arrival: type the key, press Enter.
    await page.keyboard.type(key);
    await page.keyboard.press("Enter");
    await page.waitForURL(/\/console\/usage$/);
    await page.keyboard.press("Tab");
    await expect(page.evaluate("document.activeElement.textContent")).resolves.toBe("Skip to content");
    await page.keyboard.press("Enter");
    await expect(page.evaluate("document.activeElement.id")).resolves.toBe("main");
    await page.keyboard.press("Tab");
    await expect(page.evaluate("document.activeElement.id")).resolves.toBe("since");
    for (const path of ["/console/usage", "/console/keys", "/console/models", "/console/playground"]) {
      await page.goto(`${url}${path}`);
      const overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth");
      expect(overflow, path).toBeLessThanOrEqual(0);
    }
    await shot(page, "phone-playground");
    await context.close();
  });

  it("refuses the tenant's session on operator pages and the admin API", async () => {
    const { page } = tenant;
    const res = await page.goto(`${url}/console/admin/fleet`);
    expect(res?.status()).toBe(403);
    await expect(page.getByRole("alert").textContent()).resolves.toBe("This page is for operators only.");
    await shot(page, "tenant-refused");
    const adminApi = await page.goto(`${url}/admin/scheduler`);
    expect(adminApi?.status()).toBe(401);
  });

  it("lets an operator drain a runner from the fleet page, which refreshes live", async () => {
    const operator = await signedIn(adminKey);
    const { page } = operator;
    await page.getByRole("link", { name: "Fleet" }).click();
    const state = page.locator('tr[data-runner="local-0"] .state');
    await expect(state.textContent()).resolves.toBe("ready");
    await page.getByRole("button", { name: "Drain local-0" }).click();
    await expect(state.textContent()).resolves.toBe("draining");
    const stats = await api(url, adminKey, "GET", "/admin/scheduler");
    expect((stats.body.runners as { id: string; state: string }[]).find((r) => r.id === "local-0")?.state).toBe(
      "draining",
    );
    await shot(page, "fleet-draining");

    // Undrained behind the page's back: the live view catches up without a reload.
    expect((await api(url, adminKey, "POST", "/admin/runners/local-0/undrain")).status).toBe(200);
    expect(await eventually(async () => (await state.textContent()) === "ready", 30_000)).toBe(true);
    await shot(page, "fleet-ready");
    await operator.context.close();
    // The runner lifts its own drain on its next heartbeat; later test files need it serving again.
    const serving = await eventually(async () => {
      try {
        return (await client(url, key).generate({ model: "tiny", prompt: "hi", options: { num_predict: 1 } })).done;
      } catch {
        return false;
      }
    }, 60_000);
    expect(serving).toBe(true);
  });
});
