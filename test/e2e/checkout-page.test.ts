import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_BACKENDS } from '../support/backends.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import { scratchAccountId } from '../support/services.js';

/*
 * The checkout page as a person uses it: Debian's chromium (`.ci/run` installs it), driven by
 * playwright-core, against the built API and worker processes, on loopback only. The worker takes
 * 500 ms a payment, so `processing` is on screen long enough to be seen.
 */

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
/**
 * `UPDATE_SCREENSHOTS=1` writes the README's screenshot (docs/images/checkout.png); otherwise it
 * is taken and checked in a temp dir, so a test run leaves the working tree as it was.
 */
const SCREENSHOT_DIR = process.env.UPDATE_SCREENSHOTS === '1' ? join(ROOT, 'docs/images') : undefined;
/** Bounds every browser step, so a page that never shows what it should fails in seconds. */
const STEP_TIMEOUT_MS = 15_000;
const STORM = 20;

let userDataDir: string;
let browser: BrowserContext;
/** Requests the pages tried to send off this machine, refused. */
const offMachine: string[] = [];

beforeAll(async () => {
  userDataDir = await mkdtemp(join(tmpdir(), 'payonce-chromium-'));
  browser = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    timeout: STEP_TIMEOUT_MS,
    viewport: { width: 1100, height: 900 },
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

/** A fresh page that records what the Content-Security-Policy blocked and what the page's script threw. */
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

/** The statuses the page's timeline shows, in order. */
const timeline = (page: Page, id: string) =>
  page.locator(`#${id} li`).evaluateAll((steps) => steps.map((step) => (step as HTMLElement).dataset.status));

describe.each(STORE_BACKENDS)('the checkout page in Chromium, on the %s backend', (backend) => {
  let stack: ProcessStack;
  let apiUrl: string;
  let products: Array<{ id: number; name: string }>;
  let alice: number;

  beforeAll(async () => {
    stack = await createProcessStack({ backend });
    // As npm start runs it: with the demo account's key for the page.
    apiUrl = (await stack.startApi({ DEMO_API_KEY: stack.apiKey })).url;
    await stack.startWorker({ PAYMENT_DELAY_MS: '500' });
    const account_id = await scratchAccountId(stack.db);
    const users = (await stack
      .db('users')
      .insert(['alice', 'bob'].map((username) => ({ account_id, username })))
      .returning('id')) as Array<{ id: number }>;
    alice = users[0]!.id;
    products = (await stack
      .db('products')
      .insert([
        { account_id, name: 'Espresso beans, 1 kg', price: 2_450 },
        { account_id, name: 'Pour-over kettle', price: 5_900 },
      ])
      .returning(['id', 'name'])) as Array<{ id: number; name: string }>;
  });
  afterAll(() => stack?.close());

  it('Pay: the purchase moves queued → processing → succeeded on the page as it happens', async () => {
    const { page, blocked, thrown } = await openPage();
    try {
      await page.goto(`${apiUrl}/`);
      expect(new URL(page.url()).pathname).toBe('/demo');
      await page.locator('#checkout').waitFor();
      await expect(page.locator('#key-source').textContent()).resolves.toContain("demo account's API key");
      await page.selectOption('#user', String(alice));
      await page.selectOption('#product', String(products[0]!.id));

      await page.click('#pay');
      await page.locator('#pay-status[data-status="processing"]').waitFor();
      await page.locator('#pay-status[data-status="succeeded"]').waitFor();
      expect(await timeline(page, 'pay-timeline')).toEqual(['queued', 'processing', 'succeeded']);
      const purchaseId = (await page.locator('#pay-id').textContent())!;
      expect(await stack.payments({ id: purchaseId })).toMatchObject([
        { status: 'succeeded', user_id: alice, product_id: products[0]!.id },
      ]);
      expect(blocked).toEqual([]);
      expect(thrown).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it(`storm of ${STORM}: one 202, ${STORM - 1} × 204, and one payment, charged once`, async () => {
    const { page, blocked, thrown } = await openPage();
    try {
      await page.goto(`${apiUrl}/demo`);
      await page.locator('#checkout').waitFor();
      await page.selectOption('#user', String(alice));
      // One purchase paid first, so the page (and its screenshot) shows both panels.
      await page.selectOption('#product', String(products[0]!.id));
      await page.click('#pay');
      await page.locator('#pay-status[data-status="succeeded"]').waitFor();
      // A product alice has not bought here, so every row of the pair is the storm's.
      const productId = products[1]!.id;
      await page.selectOption('#product', String(productId));
      await page.fill('#storm-count', String(STORM));

      await page.click('#storm');
      await page.locator('#storm-status[data-status="succeeded"]').waitFor();
      expect(await page.locator('#storm-answers').textContent()).toBe(`1 × 202, ${STORM - 1} × 204`);
      expect(await page.locator('#storm-codes li').count()).toBe(STORM);
      expect(await page.locator('#storm-purchases').textContent()).toBe('1');
      const purchaseId = (await page.locator('#storm-id').textContent())!;

      const payments = await stack.payments({ user_id: alice, product_id: productId });
      expect(payments.map((payment) => [payment.id, payment.status])).toEqual([[purchaseId, 'succeeded']]);
      const charges = await stack
        .db('gateway_charges as c')
        .join('purchases as p', 'p.id', 'c.purchase_id')
        .where({ 'p.user_id': alice, 'p.product_id': productId })
        .select('c.purchase_id');
      expect(charges).toEqual([{ purchase_id: purchaseId }]);

      // The README shows the Redis backend's (the Postgres one is checked, not kept).
      const path =
        SCREENSHOT_DIR && backend === 'redis'
          ? join(SCREENSHOT_DIR, 'checkout.png')
          : join(userDataDir, `checkout-${backend}.png`);
      await mkdir(join(path, '..'), { recursive: true });
      await page.screenshot({ path, fullPage: true });
      const png = await readFile(path);
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      expect(png.length).toBeGreaterThan(10_000);

      expect(blocked).toEqual([]);
      expect(thrown).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('without DEMO_API_KEY, carries no key and asks for one, kept in the tab', async () => {
    const plainApi = (await stack.startApi()).url;
    const html = await (await fetch(`${plainApi}/demo`)).text();
    expect(html).toContain('<meta name="payonce-demo-key" content="" />');
    const withKey = await (await fetch(`${apiUrl}/demo`)).text();
    expect(withKey).toContain(`content="${stack.apiKey}"`);

    const { page, blocked, thrown } = await openPage();
    try {
      await page.goto(`${plainApi}/demo`);
      await page.locator('#key-section').waitFor();
      expect(await page.locator('#checkout').isHidden()).toBe(true);
      await page.fill('#api-key', stack.apiKey);
      await page.click('#key-form button[type="submit"]');
      await page.locator('#checkout').waitFor();
      expect(await page.locator('#user option').count()).toBe(2);
      expect(await page.evaluate(() => sessionStorage.getItem('payonce-api-key'))).toBe(stack.apiKey);
      expect(blocked).toEqual([]);
      expect(thrown).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

it('sent nothing off this machine', () => {
  expect(offMachine).toEqual([]);
});
