import { createHash, randomBytes } from 'node:crypto';

/** What every payonce API key starts with, so a leaked one is recognisable (secret scanners, logs). */
const API_KEY_PREFIX = 'pk_live_';

/** Random bytes in a key: 192 bits, far beyond guessing. */
const KEY_BYTES = 24;

/** How many characters of a key name it in lists and revocations: the prefix and 8 more. */
const SHOWN_LENGTH = API_KEY_PREFIX.length + 8;

/** The shape of a key as `newApiKey` makes it. */
const API_KEY_PATTERN = new RegExp(`^${API_KEY_PREFIX}[A-Za-z0-9_-]{32}$`);

export interface NewApiKey {
  /** The key itself: shown once, to whoever created it, and never stored. */
  apiKey: string;
  /** SHA-256 of the key (hex), which is what the database keeps. */
  keyHash: string;
  /** The key's first characters, to name it (`npm run apikey:revoke -- <prefix>`). */
  keyPrefix: string;
}

/** A fresh random API key, with the hash and prefix the database keeps of it. */
export function newApiKey(): NewApiKey {
  const apiKey = `${API_KEY_PREFIX}${randomBytes(KEY_BYTES).toString('base64url')}`;
  return { apiKey, keyHash: hashApiKey(apiKey), keyPrefix: apiKey.slice(0, SHOWN_LENGTH) };
}

/** SHA-256 of a presented key, hex; a key is looked up by this and only this. */
export function hashApiKey(apiKey: string): string {
  return createHash('sha256').update(apiKey).digest('hex');
}

/** Whether `value` could be a payonce key at all (a cheap check before any lookup). */
export function looksLikeApiKey(value: string): boolean {
  return API_KEY_PATTERN.test(value);
}
