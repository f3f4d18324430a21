import { spawnSync } from 'node:child_process';

/** The value of one sample (`name{labels} value`) in a Prometheus text scrape, or undefined. */
export function sample(scrape: string, series: string): number | undefined {
  const line = scrape.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/**
 * Runs Prometheus' `promtool` (Debian's `prometheus` package; `.ci/run` installs it) with `input`
 * on stdin; `output` is stdout and stderr together, where promtool reports lint problems (with
 * exit 0 in some versions).
 */
export function promtool(args: string[], input?: string): { status: number | null; output: string } {
  const run = spawnSync('promtool', args, { input, encoding: 'utf8' });
  if (run.error) throw new Error(`promtool did not run (Debian package prometheus): ${run.error.message}`);
  return { status: run.status, output: `${run.stdout}${run.stderr}`.trim() };
}

/** GET `<base>/metrics` with the admin token; the response, whatever its status. */
export async function scrapeMetrics(base: string, adminToken: string): Promise<Response> {
  return fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${adminToken}` } });
}
