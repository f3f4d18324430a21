import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_BACKENDS } from '../support/backends.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import { createPurchaseClient } from '../support/purchase-client.js';
import { seedProducts, seedUsers } from '../support/services.js';

/*
 * Bull Board and Swagger UI as an operator sees them: Debian's chromium (`.ci/run` installs it),
 * driven by playwright-core, against the built API process, on loopback only.
 */

const ADMIN_TOKEN = 'test-admin-token-0123456789';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/**
 * `UPDATE_SCREENSHOTS=1` writes the README's screenshot (docs/images/bull-board.png); otherwise it
 * is taken and checked in a temp dir, so a test run leaves the working tree as it was.
 */
const SCREENSHOT_DIR = process.env.UPDATE_SCREENSHOTS === '1' ? join(ROOT, 'docs/images') : undefined;
/** Bounds every browser step, so a page that never shows what it should fails in seconds. */
const STEP_TIMEOUT_MS = 15_000;

let userDataDir: string;
let browser: BrowserContext;
/** Requests the pages tried to send off this machine (Bull Board's web fonts), refused. */
const offMachine: string[] = [];

beforeAll(async () => {
  userDataDir = await mkdtemp(join(tmpdir(), 'payonce-chromium-'));
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    timeout: STEP_TIMEOUT_MS,
    viewport: { width: 1280, height: 720 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  browser.setDefaultTimeout(STEP_TIMEOUT_MS);
  await browser.route('**/*', async (route) => {
    if (new URL(route.request().url()).hostname === '127.0.0.1') return route.continue();
    offMachine.push(route.request().url());
    return route.abort();
  });
});

afterAll(async () => {
  await browser?.close();
  if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
});

/** A fresh page that records what the Content-Security-Policy blocked and what the page's scripts threw. */
async function openPage(): Promise<{ page: Page; blocked: string[]; thrown: string[] }> {
  const page = await browser.newPage();
  const blocked: string[] = [];
  const thrown: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) blocked.push(message.text());
  });
  page.on('pageerror', (error) => thrown.push(error.message));
  return { page, blocked, thrown };
}

describe.each(STORE_BACKENDS)('in Chromium, on the %s backend', (backend) => {
  let stack: ProcessStack;
  let apiUrl: string;
  let purchaseId: string;

  beforeAll(async () => {
    stack = await createProcessStack({ backend });
    apiUrl = (await stack.startApi({ ADMIN_TOKEN })).url;
    // No worker: the job stays waiting, as a backlog would.
    const [userId] = (await seedUsers(stack.db, 1)) as [number];
    const [productId] = (await seedProducts(stack.db, 1)) as [number];
    const accepted = await createPurchaseClient(apiUrl).purchase({ userId, productId });
    expect(accepted.status).toBe(202);
    purchaseId = (accepted.body as { purchaseId: string }).purchaseId;
    await browser.clearCookies();
  });
  afterAll(() => stack?.close());

  it('an operator logs in with ADMIN_TOKEN and sees the purchase queue and its waiting job', async () => {
    const { page, blocked, thrown } = await openPage();
    try {
      // Without a session, the dashboard sends the browser to the login form.
      await page.goto(`${apiUrl}/admin/queues`);
      expect(new URL(page.url()).pathname).toBe('/admin/login');
      await page.fill('input[name="token"]', ADMIN_TOKEN);
      await Promise.all([page.waitForURL(`${apiUrl}/admin/queues`), page.click('button[type="submit"]')]);

      const [session] = await browser.cookies(`${apiUrl}/admin/queues`);
      expect(session).toMatchObject({ name: 'payonce_admin', path: '/admin', httpOnly: true, secure: true });
      expect(session!.sameSite).toBe('Strict');

      // The overview lists the queue; its page lists the job, whose id is the purchase id.
      await page.getByText(stack.queueName).first().waitFor();
      await page.goto(`${apiUrl}/admin/queues/queue/${encodeURIComponent(stack.queueName)}`);
      await page.getByText(purchaseId).first().waitFor();

      // The README shows the Redis backend's (the Postgres one is checked, not kept).
      const path =
        SCREENSHOT_DIR && backend === 'redis'
          ? join(SCREENSHOT_DIR, 'bull-board.png')
          : join(userDataDir, `bull-board-${backend}.png`);
      await mkdir(join(path, '..'), { recursive: true });
      await page.screenshot({ path });
      const png = await readFile(path);
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      expect(png.length).toBeGreaterThan(10_000);

      expect(blocked).toEqual([]);
      expect(thrown).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('Swagger UI at /docs still renders under the security headers', async () => {
    const { page, blocked, thrown } = await openPage();
    try {
      await page.goto(`${apiUrl}/docs`);
      await page.locator('.swagger-ui .info .title').getByText('payonce').waitFor();
      await page.getByText('/payment/purchase').first().waitFor();
      expect(blocked).toEqual([]);
      expect(thrown).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

it('sent nothing off this machine but web-font requests', () => {
  expect(offMachine.filter((url) => !/^https:\/\/fonts\.(googleapis|gstatic)\.com\//.test(url))).toEqual([]);
});
