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
  /** Keys remembered at once. Default 10 000. */
  maxEntries?: number;
}

/** No account: the key is unknown or revoked (kept in the cache like any answer). */
const REFUSED = 0;

const unauthenticated = () =>
  new AppError('UNAUTHENTICATED', 'This route needs Authorization: Bearer <API key> with a valid key', {
    headers: { 'www-authenticate': 'Bearer realm="payonce"' },
  });

/**
 * The hook in front of every client route: `Authorization: Bearer <API key>` names the account
 * the request acts for (`request.accountId`); without it, or with a key that is malformed,
 * unknown or revoked, the answer is 401 UNAUTHENTICATED, the same for all of them. A key is
 * looked up by its SHA-256 (the only thing stored), one indexed read whether it exists or not,
 * and the answer is cached for `cacheTtlMs`; concurrent requests with one uncached key share
 * one read.
 */
export function apiKeyAuth(options: ApiKeyAuthOptions): onRequestAsyncHookHandler {
  const { apiKeys, cacheTtlMs = 1_000, maxEntries = 10_000 } = options;
  const accounts = new LRUCache<string, number>({
    max: maxEntries,
    ttl: cacheTtlMs,
    fetchMethod: async (keyHash) => {
      const record = await apiKeys.findApiKey(keyHash);
      return record && !record.revoked ? record.accountId : REFUSED;
    },
  });

  return async (request) => {
    const presented = bearerToken(request.headers.authorization);
    if (presented === undefined || !looksLikeApiKey(presented)) throw unauthenticated();
    const keyHash = hashApiKey(presented);
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
