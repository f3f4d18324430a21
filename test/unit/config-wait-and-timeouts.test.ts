import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/shared/config.js';

describe('the Prefer: wait and HTTP timeout settings', () => {
  it('default to bounded values', () => {
    expect(loadConfig({})).toMatchObject({
      REQUEST_TIMEOUT_MS: 10_000,
      HEADERS_TIMEOUT_MS: 5_000,
      CONNECTION_TIMEOUT_MS: 60_000,
      WAIT_MAX_WAITERS: 1_000,
      WAIT_POLL_INTERVAL_MS: 2_000,
    });
  });

  it('reject a headers timeout longer than the request timeout, which Node would never apply', () => {
    expect(() => loadConfig({ HEADERS_TIMEOUT_MS: '20000', REQUEST_TIMEOUT_MS: '10000' })).toThrow(
      /HEADERS_TIMEOUT_MS: must not exceed REQUEST_TIMEOUT_MS/,
    );
    expect(loadConfig({ HEADERS_TIMEOUT_MS: '10000', REQUEST_TIMEOUT_MS: '10000' }).HEADERS_TIMEOUT_MS).toBe(10_000);
  });

  it('reject a connection timeout that would cut a 30 s Prefer: wait, and other out-of-range values', () => {
    const attempt = () =>
      loadConfig({ CONNECTION_TIMEOUT_MS: '30000', WAIT_MAX_WAITERS: '-1', WAIT_POLL_INTERVAL_MS: '10' });
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/CONNECTION_TIMEOUT_MS[\s\S]*WAIT_MAX_WAITERS[\s\S]*WAIT_POLL_INTERVAL_MS/);
  });

  it('let WAIT_MAX_WAITERS=0 turn waiting off', () => {
    expect(loadConfig({ WAIT_MAX_WAITERS: '0' }).WAIT_MAX_WAITERS).toBe(0);
  });
});
