import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_BACKENDS } from '../support/backends.js';
import { launchBrowser, type TestBrowser } from '../support/browser.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import { createPurchaseClient } from '../support/purchase-client.js';
import { seedProducts, seedUsers } from '../support/services.js';

/*
 * Bull Board and Swagger UI as an operator sees them: Debian's chromium (`.ci/run` installs it),
 * driven by playwright-core, against the built API process, on loopback only.
 */

const ADMIN_TOKEN = 'test-admin-token-0123456789';

let browser: TestBrowser;

beforeAll(async () => {
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
});

const openPage = () => browser.openPage();

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
    await browser.context.clearCookies();
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

      const [session] = await browser.context.cookies(`${apiUrl}/admin/queues`);
      expect(session).toMatchObject({ name: 'payonce_admin', path: '/admin', httpOnly: true, secure: true });
      expect(session!.sameSite).toBe('Strict');

      // The overview lists the queue; its page lists the job, whose id is the purchase id.
      await page.getByText(stack.queueName).first().waitFor();
      await page.goto(`${apiUrl}/admin/queues/queue/${encodeURIComponent(stack.queueName)}`);
      await page.getByText(purchaseId).first().waitFor();

      // The README shows the Redis backend's (the Postgres one is checked, not kept).
      await browser.screenshot(page, 'bull-board', { keep: backend === 'redis' });

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
  expect(browser.offMachine.filter((url) => !/^https:\/\/fonts\.(googleapis|gstatic)\.com\//.test(url))).toEqual([]);
});
