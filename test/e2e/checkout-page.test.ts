import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_BACKENDS } from '../support/backends.js';
import { launchBrowser, type TestBrowser } from '../support/browser.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import { scratchAccountId } from '../support/services.js';

/*
 * The checkout page as a person uses it: Debian's chromium (`.ci/run` installs it), driven by
 * playwright-core, against the built API and worker processes, on loopback only. The worker takes
 * 500 ms a payment, so `processing` is on screen long enough to be seen. `UPDATE_SCREENSHOTS=1`
 * rewrites the README's docs/images/checkout.png.
 */

const STORM = 20;

let browser: TestBrowser;

beforeAll(async () => {
  browser = await launchBrowser({ width: 1100, height: 900 });
});

afterAll(async () => {
  await browser?.close();
});

const openPage = () => browser.openPage();

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
      await browser.screenshot(page, 'checkout', { keep: backend === 'redis', fullPage: true });

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
  expect(browser.offMachine).toEqual([]);
});
