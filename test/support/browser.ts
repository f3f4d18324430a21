import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { expect } from 'vitest';

/** Bounds every browser step, so a page that never shows what it should fails in seconds. */
export const STEP_TIMEOUT_MS = 15_000;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A page that records what the Content-Security-Policy blocked and what the page's scripts threw. */
export interface WatchedPage {
  page: Page;
  blocked: string[];
  thrown: string[];
}

export interface TestBrowser {
  context: BrowserContext;
  /** Requests the pages tried to send off this machine, refused. */
  offMachine: string[];
  openPage(): Promise<WatchedPage>;
  /**
   * Takes a screenshot named `name`.png (of the whole page with `fullPage`) and checks it is a real PNG. With
   * `UPDATE_SCREENSHOTS=1` and `keep`, it goes to docs/images/ (the README shows it); otherwise
   * to the browser's temp dir, so a test run leaves the working tree as it was.
   */
  screenshot(page: Page, name: string, options: { keep: boolean; fullPage?: boolean }): Promise<void>;
  close(): Promise<void>;
}

/**
 * Debian's chromium (`.ci/run` installs it), driven by playwright-core, headless, with a fresh
 * profile: only loopback (127.0.0.1) is reached, anything else is refused and recorded.
 */
export async function launchBrowser(viewport = { width: 1280, height: 720 }): Promise<TestBrowser> {
  const userDataDir = await mkdtemp(join(tmpdir(), 'payonce-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    timeout: STEP_TIMEOUT_MS,
    viewport,
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
  context.setDefaultTimeout(STEP_TIMEOUT_MS);
  const offMachine: string[] = [];
  await context.route('**/*', async (route) => {
    if (new URL(route.request().url()).hostname === '127.0.0.1') return route.continue();
    offMachine.push(route.request().url());
    return route.abort();
  });

  return {
    context,
    offMachine,
    async openPage() {
      const page = await context.newPage();
      const blocked: string[] = [];
      const thrown: string[] = [];
      page.on('console', (message) => {
        if (/Content Security Policy/i.test(message.text())) blocked.push(message.text());
      });
      page.on('pageerror', (error) => thrown.push(error.message));
      return { page, blocked, thrown };
    },
    async screenshot(page, name, { keep, fullPage = false }) {
      const dir = process.env.UPDATE_SCREENSHOTS === '1' && keep ? join(ROOT, 'docs/images') : userDataDir;
      const path = join(dir, `${name}.png`);
      await mkdir(dir, { recursive: true });
      await page.screenshot({ path, fullPage });
      const png = await readFile(path);
      expect(png.subarray(1, 4).toString()).toBe('PNG');
      expect(png.length).toBeGreaterThan(10_000);
    },
    async close() {
      await context.close();
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}
