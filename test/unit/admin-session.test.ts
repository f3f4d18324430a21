import { describe, expect, it } from 'vitest';
import { ADMIN_SESSION_TTL_SECONDS, createAdminSessions } from '../../src/api/admin-session.js';

const TOKEN = 'test-admin-token-0123456789';

/** The `name=value` part of a Set-Cookie value, as a browser sends it back. */
const cookieOf = (setCookie: string) => setCookie.split(';')[0]!;

describe('admin sessions', () => {
  it('last ADMIN_SESSION_TTL_SECONDS, then are refused', () => {
    let now = Date.UTC(2026, 11, 1);
    const sessions = createAdminSessions(TOKEN, () => now);
    const cookie = cookieOf(sessions.open());
    expect(sessions.isValid(cookie)).toBe(true);
    now += (ADMIN_SESSION_TTL_SECONDS - 1) * 1000;
    expect(sessions.isValid(cookie)).toBe(true);
    now += 1000;
    expect(sessions.isValid(cookie)).toBe(false);
  });

  it('belong to one ADMIN_TOKEN: changing it ends every session', () => {
    const cookie = cookieOf(createAdminSessions(TOKEN).open());
    expect(createAdminSessions(TOKEN).isValid(cookie)).toBe(true);
    expect(createAdminSessions(`${TOKEN}-rotated`).isValid(cookie)).toBe(false);
  });

  it('refuse a missing, malformed or empty cookie', () => {
    const sessions = createAdminSessions(TOKEN);
    for (const header of [undefined, '', 'payonce_admin=', 'payonce_admin=abc', `payonce_admin=${TOKEN}`, 'other=1']) {
      expect(sessions.isValid(header), String(header)).toBe(false);
    }
  });
});
