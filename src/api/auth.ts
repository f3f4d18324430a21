import type { onRequestAsyncHookHandler } from 'fastify';
import { LRUCache } from 'lru-cache';
import type { AccountsRepository } from '../shared/accounts/accounts-repository.js';
import { hashApiKey, looksLikeApiKey } from '../shared/accounts/api-keys.js';
import { bearerToken } from '../shared/http/admin-guard.js';
import { AppError, serviceUnavailable } from './errors.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** The account whose API key authenticated the request (client routes only). */
    accountId: number;
    /** SHA-256 of that key (hex): what the rate limiter counts by. */
    apiKeyHash: string;
  }
}

export interface ApiKeyAuthOptions {
  apiKeys: Pick<AccountsRepository, 'findApiKey'>;
  /**
   * How long an answer about a key (its account, or that it is unknown or revoked) is reused
   * without asking Postgres: a revocation reaches every API process within this long. Default 1 s.
   */
  cacheTtlMs?: number;
  /** Valid keys remembered at once. Default 10 000. */
  maxEntries?: number;
  /**
   * Refused keys (unknown or revoked) remembered at once, apart from the valid ones: a flood of
   * made-up keys (the format is public) then cannot push a client's key out of the cache.
   * Default 1 000.
   */
  maxRefusedEntries?: number;
}

const unauthenticated = () =>
  new AppError('UNAUTHENTICATED', 'This route needs Authorization: Bearer <API key> with a valid key', {
    headers: { 'www-authenticate': 'Bearer realm="payonce"' },
  });

/**
 * The hook in front of every client route: `Authorization: Bearer <API key>` names the account
 * the request acts for (`request.accountId`); without it, or with a key that is malformed,
 * unknown or revoked, the answer is 401 UNAUTHENTICATED, the same for all of them. A key is
 * looked up by its SHA-256 (the only thing stored), one indexed read whether it exists or not,
 * and the answer is cached for `cacheTtlMs` (valid and refused keys in caches of their own);
 * concurrent requests with one uncached key share one read.
 */
export function apiKeyAuth(options: ApiKeyAuthOptions): onRequestAsyncHookHandler {
  const { apiKeys, cacheTtlMs = 1_000, maxEntries = 10_000, maxRefusedEntries = 1_000 } = options;
  const refused = new LRUCache<string, true>({ max: maxRefusedEntries, ttl: cacheTtlMs });
  const accounts = new LRUCache<string, number>({
    max: maxEntries,
    ttl: cacheTtlMs,
    // Undefined (refused) is not kept here, but in `refused`.
    fetchMethod: async (keyHash) => {
      const record = await apiKeys.findApiKey(keyHash);
      if (record && !record.revoked) return record.accountId;
      refused.set(keyHash, true);
      return undefined;
    },
  });

  return async (request) => {
    const presented = bearerToken(request.headers.authorization);
    if (presented === undefined || !looksLikeApiKey(presented)) throw unauthenticated();
    const keyHash = hashApiKey(presented);
    if (refused.has(keyHash)) throw unauthenticated();
    let accountId: number | undefined;
    try {
      accountId = await accounts.fetch(keyHash);
    } catch (error) {
      throw serviceUnavailable('Postgres', error);
    }
    if (!accountId) throw unauthenticated();
    request.accountId = accountId;
    request.apiKeyHash = keyHash;
  };
}
