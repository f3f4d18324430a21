import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/** How long a rotated-out secret goes on signing beside the new one, so receivers can switch over. */
export const SECRET_ROTATION_GRACE_HOURS = 24;

/** A new endpoint signing secret in the Standard Webhooks form: `whsec_` and 32 random bytes, base64. */
export function newWebhookSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

/**
 * The Standard Webhooks headers of one delivery attempt: the event's id (the same on every
 * attempt), the time of this attempt, and an HMAC-SHA256 signature of `id.timestamp.body` with
 * each secret in use (`v1,<sig>`, space-separated: a receiver accepts any that verifies).
 */
export function signedHeaders(
  event: { id: string; payload: string },
  secrets: readonly string[],
  at: Date = new Date(),
): Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string> {
  return {
    'webhook-id': event.id,
    'webhook-timestamp': String(Math.floor(at.getTime() / 1000)),
    'webhook-signature': secrets.map((secret) => new Webhook(secret).sign(event.id, at, event.payload)).join(' '),
  };
}
