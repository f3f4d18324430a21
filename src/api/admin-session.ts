import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** The cookie a browser presents instead of `Authorization: Bearer <ADMIN_TOKEN>` on the operator pages. */
const ADMIN_SESSION_COOKIE = 'payonce_admin';

/** How long a session lasts after the operator typed the token: 8 hours. */
export const ADMIN_SESSION_TTL_SECONDS = 8 * 3600;

/** Where the cookie is sent: the operator pages only, never the client API. */
const COOKIE_PATH = '/admin';

/** One named cookie's value in a `Cookie` header, or undefined. */
function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [key, ...value] = part.trim().split('=');
    if (key === name) return value.join('=');
  }
  return undefined;
}

/**
 * Browser sessions of the operator pages, for browsers that cannot send a Bearer header when they
 * navigate. A session is `<expiry>.<HMAC of the expiry>` keyed by a digest of ADMIN_TOKEN: nothing
 * is stored, every API process accepts the sessions of the others, the token itself never goes in
 * a cookie, and changing ADMIN_TOKEN ends every session. The cookie is HttpOnly (no script reads
 * it), SameSite=Strict (no other site's page sends it), Secure (HTTPS only; browsers count loopback
 * as secure, so `npm start` works) and scoped to `/admin`.
 */
export function createAdminSessions(adminToken: string, now: () => number = Date.now) {
  // A key of its own, so a session value says nothing usable about the token.
  const key = createHash('sha256').update(`payonce admin session\0${adminToken}`).digest();
  const mac = (expiry: string) => createHmac('sha256', key).update(expiry).digest();

  return {
    /** A `Set-Cookie` value opening a session that lasts ADMIN_SESSION_TTL_SECONDS. */
    open(): string {
      const expiry = String(Math.floor(now() / 1000) + ADMIN_SESSION_TTL_SECONDS);
      return `${ADMIN_SESSION_COOKIE}=${expiry}.${mac(expiry).toString('base64url')}; Path=${COOKIE_PATH}; Max-Age=${ADMIN_SESSION_TTL_SECONDS}; HttpOnly; Secure; SameSite=Strict`;
    },
    /** A `Set-Cookie` value that ends the session. */
    close(): string {
      return `${ADMIN_SESSION_COOKIE}=; Path=${COOKIE_PATH}; Max-Age=0; HttpOnly; Secure; SameSite=Strict`;
    },
    /** Whether a request's `Cookie` header holds a session that is genuine and not expired. */
    isValid(cookieHeader: string | undefined): boolean {
      const match = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(cookieValue(cookieHeader, ADMIN_SESSION_COOKIE) ?? '');
      if (!match) return false;
      const [, expiry, presented] = match as unknown as [string, string, string];
      return Number(expiry) > now() / 1000 && timingSafeEqual(Buffer.from(presented, 'base64url'), mac(expiry));
    },
  };
}
