import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../scripts/lib/processes.js';
import { createProcessStack, type ProcessStack } from '../support/process-stack.js';
import type { RunningApi } from '../support/processes.js';
import { eventually } from '../support/services.js';

/** `npm run -s account:create` / `apikey:create` / `apikey:revoke` (the built script), on the stack's database. */
function accountsCli(stack: ProcessStack, args: string[]) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(
      process.execPath,
      [`${PROJECT_ROOT}dist/scripts/accounts.js`, ...args],
      { cwd: PROJECT_ROOT, env: { ...process.env, ...stack.env() }, timeout: 30_000 },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('the account and API key commands, against running API processes', () => {
  let stack: ProcessStack;
  let apis: RunningApi[];

  beforeAll(async () => {
    stack = await createProcessStack();
    apis = [await stack.startApi(), await stack.startApi()];
  });
  afterAll(() => stack?.close());

  const status = (api: RunningApi, apiKey: string) =>
    fetch(`${api.url}/user`, { headers: { authorization: `Bearer ${apiKey}` } }).then((response) => response.status);

  it('creates an account with a key, adds a key, and revokes one on every API process within a second', async () => {
    const created = await accountsCli(stack, ['account:create', '--name', 'Acme Coffee']);
    expect(created.code, created.stderr).toBe(0);
    const lines = created.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const account = JSON.parse(lines[0]!) as { accountId: number; apiKey: string; keyPrefix: string };
    expect(account).toEqual({
      accountId: expect.any(Number),
      apiKey: expect.stringMatching(/^pk_live_[A-Za-z0-9_-]{32}$/),
      keyPrefix: account.apiKey.slice(0, 16),
    });
    expect(await stack.db('accounts').where({ id: account.accountId }).first('name')).toEqual({ name: 'Acme Coffee' });

    const added = await accountsCli(stack, ['apikey:create', '--account', String(account.accountId)]);
    expect(added.code, added.stderr).toBe(0);
    const second = JSON.parse(added.stdout) as { accountId: number; apiKey: string; keyPrefix: string };
    expect(second.accountId).toBe(account.accountId);
    expect(second.apiKey).not.toBe(account.apiKey);
    for (const api of apis) {
      expect(await status(api, account.apiKey)).toBe(200);
      expect(await status(api, second.apiKey)).toBe(200);
    }

    const revoked = await accountsCli(stack, ['apikey:revoke', account.keyPrefix]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(JSON.parse(revoked.stdout)).toEqual({ revoked: account.keyPrefix });
    const revokedAt = Date.now();
    for (const api of apis) {
      await eventually(async () => ((await status(api, account.apiKey)) === 401 ? true : undefined), {
        timeoutMs: 1_500,
        what: 'the revoked key to be refused',
      });
    }
    // Both processes refused it within their one-second cache, and the other key still works.
    expect(Date.now() - revokedAt).toBeLessThan(1_500);
    for (const api of apis) expect(await status(api, second.apiKey)).toBe(200);
  });

  it('exits 1 for an unknown account or key, and 2 for bad usage, printing nothing on stdout', async () => {
    const cases: Array<[string[], number]> = [
      [['apikey:create', '--account', '999999'], 1],
      [['apikey:revoke', 'pk_live_nosuchke'], 1],
      [['account:create'], 2],
      [['apikey:create', '--account', 'abc'], 2],
      [['apikey:revoke'], 2],
      [['account:delete'], 2],
    ];
    for (const [args, code] of cases) {
      const result = await accountsCli(stack, args);
      expect(result.code, args.join(' ')).toBe(code);
      expect(result.stdout).toBe('');
      expect(result.stderr).not.toBe('');
    }
  });
});
