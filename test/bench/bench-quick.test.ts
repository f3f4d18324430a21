import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Keeps `npm run bench` working: its quick mode runs every phase on tiny loads. No speed is asserted. */
describe('npm run bench -- --quick', () => {
  it('runs every phase against its baselines and prints the comparison', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick'], {
      cwd: ROOT,
      timeout: 150_000,
      maxBuffer: 10 * 1024 * 1024,
    });
    expect(stdout).toContain('payonce benchmark (quick)');
    for (const row of ['accept path (req/s)', 'duplicate path (req/s)', 'worker, no delay (jobs/s)', 'raw single-row inserts', 'end-to-end overhead', 'scaling: 2 process(es)', 'scaling: 1 process x 20', 'peak RSS: apiPeakRssMbAccept']) {
      expect(stdout).toContain(row);
    }
    // Every ratio is a measured number, not a placeholder.
    const ratios = [...stdout.matchAll(/ (\d+\.\d\d)\s*$/gm)].map((match) => Number(match[1]));
    expect(ratios.length).toBeGreaterThanOrEqual(5);
    for (const ratio of ratios) expect(ratio).toBeGreaterThan(0);
    expect(stdout).toMatch(/(met |MISS)\s+accept path/);
  }, 180_000);
});
