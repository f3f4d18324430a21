import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_BACKENDS } from '../support/backends.js';
import { authorization } from '../support/purchase-client.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import { freePort } from '../support/processes.js';
import { promtool, scrapeMetrics } from '../support/prometheus.js';
import { seedUserAndProduct } from '../support/services.js';

/*
 * ops/: the Grafana dashboard and the Prometheus alert rules must speak of metrics the API and the
 * worker really export, and pass Prometheus' own checks.
 */

const OPS = fileURLToPath(new URL('../../ops/', import.meta.url));
const ADMIN_TOKEN = 'test-admin-token-0123456789';

interface RuleFile {
  groups: Array<{ name: string; rules: Array<{ alert?: string; record?: string; expr: string }> }>;
}
interface ScrapeConfig {
  scrape_configs: Array<{ job_name: string }>;
}

const rules = parse(readFileSync(join(OPS, 'prometheus-alerts.yml'), 'utf8')) as RuleFile;
const dashboard = JSON.parse(readFileSync(join(OPS, 'grafana-dashboard.json'), 'utf8')) as unknown;
const scrapeJobs = (parse(readFileSync(join(OPS, 'prometheus.yml'), 'utf8')) as ScrapeConfig).scrape_configs.map(
  (config) => config.job_name,
);

/** Every `expr` in the dashboard, however deep (panels, rows' panels, targets). */
function dashboardExpressions(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(dashboardExpressions);
  if (typeof node !== 'object' || node === null) return [];
  return Object.entries(node).flatMap(([key, value]) =>
    key === 'expr' && typeof value === 'string' ? [value] : dashboardExpressions(value),
  );
}

const EXPRESSIONS = [
  ...rules.groups.flatMap((group) =>
    group.rules.map((rule) => ({ where: rule.alert ?? rule.record, expr: rule.expr })),
  ),
  ...dashboardExpressions(dashboard).map((expr) => ({ where: 'grafana-dashboard.json', expr })),
];

/** PromQL words that are neither functions (followed by `(`) nor metric names. */
const PROMQL_WORDS = new Set(['and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/**
 * The metric names a PromQL expression reads: what is left once strings, label matchers, ranges,
 * grouping label lists, Grafana variables, functions and operators are taken out.
 */
function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\w+/g, ' ');
  const names = [...bare.matchAll(/\b([A-Za-z_:][\w:]*)\b(?!\s*\()/g)].map((match) => match[1]!);
  return [...new Set(names.filter((name) => !PROMQL_WORDS.has(name.toLowerCase())))];
}

/** The metric names a scrape has samples of (`name{…} value` or `name value` lines). */
function sampledNames(scrape: string): Set<string> {
  return new Set(
    scrape
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .map((line) => /^[A-Za-z_:][\w:]*/.exec(line)![0]),
  );
}

describe('ops/ files', () => {
  it('finds the metric names in an expression, and only those', () => {
    expect(
      metricNames(
        'histogram_quantile(0.99, sum by (le, route) (rate(payonce_x_bucket{status_code=~"5.."}[$__rate_interval]))) ' +
          '/ on(job) group_left(instance) up{job="a"} > 0.5 or absent(payonce_y_total offset 5m)',
      ),
    ).toEqual(['payonce_x_bucket', 'up', 'payonce_y_total']);
  });

  it('holds a rule for each thing the issue asks to alert on, and every panel the dashboard needs', () => {
    const expressions = EXPRESSIONS.map(({ expr }) => expr).join('\n');
    for (const name of [
      'payonce_queue_oldest_waiting_age_seconds',
      'payonce_http_request_duration_seconds_count',
      'payonce_worker_purchases_total',
      'payonce_worker_failed_attempts_total',
      'payonce_worker_reconcile_runs_total',
      'payonce_queue_jobs',
      'payonce_worker_job_duration_seconds_bucket',
      'payonce_worker_reconciled_purchases_total',
      'payonce_claim_duration_seconds_bucket',
      'payonce_enqueue_duration_seconds_bucket',
      'payonce_purchases_total',
    ]) {
      expect(expressions, name).toContain(name);
    }
    const alerts = rules.groups.flatMap((group) => group.rules.map((rule) => rule.alert));
    // One alert for each thing the issue names: queue age, failure rate, 5xx, unreconciled purchases.
    expect(alerts).toEqual(
      expect.arrayContaining([
        'PayonceWorkerDown',
        'PayonceQueueOldestJobTooOld',
        'PayoncePurchaseFailureRateHigh',
        'PayonceHigh5xxRate',
        'PayonceUnrecordedPurchases',
      ]),
    );
  });

  it('lays the dashboard out as Grafana reads it: unique ids, no overlapping panels, a query in each', () => {
    interface Panel {
      id: number;
      type: string;
      gridPos: { x: number; y: number; w: number; h: number };
      targets?: Array<{ refId: string; expr: string }>;
      datasource?: { uid: string };
    }
    const { panels, templating } = dashboard as { panels: Panel[]; templating: { list: Array<{ name: string }> } };
    expect(new Set(panels.map((panel) => panel.id)).size).toBe(panels.length);
    const cells = new Set<string>();
    for (const panel of panels) {
      const { x, y, w, h } = panel.gridPos;
      expect(x + w, `panel ${panel.id}`).toBeLessThanOrEqual(24);
      for (let row = y; row < y + h; row++) {
        for (let column = x; column < x + w; column++) {
          expect(cells.has(`${row}:${column}`), `panel ${panel.id} overlaps at ${row}:${column}`).toBe(false);
          cells.add(`${row}:${column}`);
        }
      }
      if (panel.type === 'row') continue;
      expect(panel.targets?.length, `panel ${panel.id}`).toBeGreaterThan(0);
      expect(panel.datasource?.uid).toBe('${datasource}');
    }
    expect(templating.list.map((variable) => variable.name)).toContain('datasource');
  });

  it("passes promtool's check of the rules", () => {
    const checked = promtool(['check', 'rules', join(OPS, 'prometheus-alerts.yml')]);
    expect(checked.status, checked.output).toBe(0);
    expect(checked.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(checked.output).not.toMatch(/warning|error/i);
  });

  it("passes promtool's check of the example scrape configuration, and names the jobs `up` is asked about", async () => {
    // promtool wants the token file to exist; the example keeps it next to itself.
    const scratch = await mkdtemp(join(tmpdir(), 'payonce-ops-'));
    try {
      for (const file of ['prometheus.yml', 'prometheus-alerts.yml'])
        await copyFile(join(OPS, file), join(scratch, file));
      await writeFile(join(scratch, 'admin-token'), ADMIN_TOKEN);
      const checked = promtool(['check', 'config', join(scratch, 'prometheus.yml')]);
      expect(checked.status, checked.output).toBe(0);
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
    const jobs = EXPRESSIONS.flatMap(({ expr }) =>
      [...expr.matchAll(/\bup\{job="([^"]+)"\}/g)].map((match) => match[1]!),
    );
    expect(new Set(jobs)).toEqual(new Set(['payonce-api', 'payonce-worker']));
    expect(scrapeJobs.sort()).toEqual(['payonce-api', 'payonce-worker']);
  });
});

describe.each(STORE_BACKENDS)('ops/ against real scrapes of the API and a worker (%s backend)', (backend) => {
  let stack: ProcessStack;
  const scrapes: Record<'api' | 'worker', string> = { api: '', worker: '' };

  beforeAll(async () => {
    stack = await createProcessStack({ backend });
    const api = await stack.startApi({ ADMIN_TOKEN });
    const worker = await stack.startWorker({ ADMIN_TOKEN, WORKER_HTTP_PORT: String(await freePort()) });
    // One purchase through both, so the request histogram has a route to show.
    const { userId, productId } = await seedUserAndProduct(stack.db);
    const answer = await fetch(`${api.url}/payment/purchase`, {
      method: 'POST',
      headers: { ...authorization(api.url), 'content-type': 'application/json', prefer: 'wait=10' },
      body: JSON.stringify({ userId, productId }),
    });
    expect(answer.status, await answer.clone().text()).toBe(200);
    for (const [name, base] of [
      ['api', api.url],
      ['worker', worker.url!],
    ] as const) {
      const response = await scrapeMetrics(base, ADMIN_TOKEN);
      expect(response.status, name).toBe(200);
      scrapes[name] = await response.text();
    }
  });
  afterAll(() => stack?.close());

  it("exports every metric the dashboard and the rules read (up is Prometheus's own)", () => {
    const exported = new Set([...sampledNames(scrapes.api), ...sampledNames(scrapes.worker)]);
    const missing = EXPRESSIONS.flatMap(({ where, expr }) =>
      metricNames(expr)
        .filter((name) => name !== 'up' && !exported.has(name))
        .map((name) => `${where}: ${name}`),
    );
    expect(missing).toEqual([]);
    // The worker's own metrics come from the worker, not from the API.
    expect([...sampledNames(scrapes.worker)].some((name) => name.startsWith('payonce_worker_'))).toBe(true);
    expect([...sampledNames(scrapes.api)].some((name) => name.startsWith('payonce_worker_'))).toBe(false);
  });

  it.each(['api', 'worker'] as const)("gives a %s scrape that passes promtool's check", (name) => {
    const checked = promtool(['check', 'metrics'], scrapes[name]);
    expect(checked.status, checked.output).toBe(0);
    expect(checked.output).toBe('');
  });
});
