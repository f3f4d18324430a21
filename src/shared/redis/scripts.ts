import type { RedisClient } from './connection.js';
import { readScriptSource } from './script-source.js';

/**
 * payonce's Redis scripts, each a file in `commands/` (BullMQ's layout): the command name each
 * is defined as on a connection, and its file. Their KEYS and ARGV are documented at the top
 * of each file. The batched scripts take a variable number of keys, passed on each call.
 */
export const SCRIPT_FILES = {
  payonceClaimIdempotencyKeys: 'claim-idempotency-keys',
  payonceConfirmClaims: 'confirm-claims',
  payonceReleaseClaim: 'release-claim',
  payonceRedirectClaim: 'redirect-claim',
  payonceMarkProcessing: 'mark-processing',
  payonceAnnounceRecorded: 'announce-recorded',
  payonceKeepUnrecorded: 'keep-unrecorded',
  payonceRememberSqsJob: 'remember-sqs-job',
  payonceAddToRateCounter: 'add-to-rate-counter',
} as const;

type Arg = string | number;

/** The scripts as commands of a connection; the first argument is always the key count. */
export interface PayonceScripts {
  payonceClaimIdempotencyKeys(numberOfKeys: number, ...keysAndArgs: Arg[]): Promise<string[]>;
  payonceConfirmClaims(numberOfKeys: number, ...keysAndArgs: Arg[]): Promise<number[]>;
  payonceReleaseClaim(numberOfKeys: 2, ...keysAndArgs: Arg[]): Promise<number>;
  payonceRedirectClaim(numberOfKeys: 2, ...keysAndArgs: Arg[]): Promise<number>;
  payonceMarkProcessing(numberOfKeys: number, ...keysAndArgs: Arg[]): Promise<number>;
  payonceAnnounceRecorded(numberOfKeys: number, ...keysAndArgs: Arg[]): Promise<number>;
  payonceKeepUnrecorded(numberOfKeys: number, ...keysAndArgs: Arg[]): Promise<number>;
  payonceRememberSqsJob(numberOfKeys: 1, ...keysAndArgs: Arg[]): Promise<string | null>;
  payonceAddToRateCounter(numberOfKeys: 1, ...keysAndArgs: Arg[]): Promise<number>;
}

/** `--- @include "includes/name"` on a line of its own, as BullMQ writes it. */
const INCLUDE = /^--- @include "([^"]+)"$/gm;

const sources = new Map<string, string>();

/** A script's text with its includes inlined (each include at most once), read once per process. */
export function scriptSource(name: string): string {
  let source = sources.get(name);
  if (source === undefined) {
    const included = new Set<string>();
    const expand = (text: string): string =>
      text.replace(INCLUDE, (_line, include: string) => {
        if (included.has(include)) return '';
        included.add(include);
        return expand(readScriptSource(`${include}.lua`));
      });
    source = expand(readScriptSource(`${name}.lua`));
    sources.set(name, source);
  }
  return source;
}

const defined = new WeakSet<RedisClient>();

/**
 * Defines every payonce script on `redis` (once per connection; ioredis sends EVALSHA and falls
 * back to EVAL when Redis has not cached a script yet) and returns the connection typed with them.
 */
export function payonceScripts(redis: RedisClient): PayonceScripts {
  if (!defined.has(redis)) {
    for (const [command, file] of Object.entries(SCRIPT_FILES)) {
      redis.defineCommand(command, { lua: scriptSource(file) });
    }
    defined.add(redis);
  }
  return redis as unknown as PayonceScripts;
}
