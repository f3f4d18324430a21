import { apiKeyAuth } from '../src/api/auth.js';
import { newApiKey } from '../src/shared/accounts/api-keys.js';

/**
 * The API key check's own cost, in process CPU per request: `apiKeyAuth` (src/api/auth.ts) run
 * in this process on a key it has cached, as every request of a busy client finds it: the
 * header parsed and checked, the key hashed (SHA-256), the cache read. The HTTP round trip, in
 * which it runs, is measured by the accept phase.
 */
export async function measureKeyCheck(requests: number): Promise<number> {
  const { apiKey } = newApiKey();
  const check = apiKeyAuth({ apiKeys: { findApiKey: async () => ({ accountId: 1, revoked: false }) } });
  const request = { headers: { authorization: `Bearer ${apiKey}` } } as unknown as Parameters<typeof check>[0];
  const reply = {} as Parameters<typeof check>[1];
  // Warm: the first call reads the "database" and fills the cache.
  for (let i = 0; i < 1_000; i++) await check.call(undefined as never, request, reply);
  const before = process.cpuUsage();
  for (let i = 0; i < requests; i++) await check.call(undefined as never, request, reply);
  const used = process.cpuUsage(before);
  return (used.user + used.system) / requests;
}
