import { describe, expect, it } from 'vitest';
import { apiKeyAuth } from '../../src/api/auth.js';
import { hashApiKey, newApiKey } from '../../src/shared/accounts/api-keys.js';

type Hook = ReturnType<typeof apiKeyAuth>;

/** The hook over an in-memory key table that counts its reads, with room for `maxEntries` valid keys. */
function setup(maxEntries: number) {
  const valid = newApiKey().apiKey;
  const revoked = newApiKey().apiKey;
  const reads: string[] = [];
  const table = new Map([
    [hashApiKey(valid), { accountId: 7, revoked: false }],
    [hashApiKey(revoked), { accountId: 7, revoked: true }],
  ]);
  const hook = apiKeyAuth({
    apiKeys: {
      findApiKey: async (keyHash: string) => {
        reads.push(keyHash);
        return table.get(keyHash) ?? null;
      },
    },
    cacheTtlMs: 60_000,
    maxEntries,
  });
  return { valid, revoked, reads, hook };
}

/** Runs the hook on a request bearing `key`: the account it names, or the error's code. */
async function authenticate(hook: Hook, key: string): Promise<number | string> {
  const request = { headers: { authorization: `Bearer ${key}` } } as { headers: object; accountId?: number };
  try {
    await hook.call(undefined as never, request as never, {} as never);
    return request.accountId!;
  } catch (error) {
    return (error as { code: string }).code;
  }
}

describe('the API key check', () => {
  it('reads each key once per cache life, and answers unknown and revoked keys alike', async () => {
    const { valid, revoked, reads, hook } = setup(10);
    const unknown = newApiKey().apiKey;
    for (let i = 0; i < 3; i++) {
      expect(await authenticate(hook, valid)).toBe(7);
      expect(await authenticate(hook, revoked)).toBe('UNAUTHENTICATED');
      expect(await authenticate(hook, unknown)).toBe('UNAUTHENTICATED');
    }
    expect(reads).toEqual([hashApiKey(valid), hashApiKey(revoked), hashApiKey(unknown)]);
  });

  it('keeps a valid key cached through a flood of made-up keys', async () => {
    const { valid, reads, hook } = setup(2);
    expect(await authenticate(hook, valid)).toBe(7);
    for (let i = 0; i < 50; i++) expect(await authenticate(hook, newApiKey().apiKey)).toBe('UNAUTHENTICATED');
    reads.length = 0;
    expect(await authenticate(hook, valid)).toBe(7);
    // Still cached: the made-up keys could not push it out.
    expect(reads).toEqual([]);
  });
});
