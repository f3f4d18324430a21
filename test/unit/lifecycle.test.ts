import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createResources } from '../../src/shared/lifecycle.js';

const logger = pino({ level: 'silent' });

describe('createResources', () => {
  it('undoes what it owns newest first, and a step that throws or hangs does not skip the rest', async () => {
    const undone: string[] = [];
    const resources = createResources(logger, { stepTimeoutMs: 100 });
    resources.own('postgres', 'db', () => undone.push('postgres'));
    resources.own('redis', 'redis', () => {
      undone.push('redis');
      throw new Error('quit failed');
    });
    resources.own('producer', 'queue', () => {
      undone.push('producer');
      return new Promise(() => {}); // never settles
    });
    resources.own('http', 'app', async () => {
      undone.push('http');
    });

    await resources.close();
    expect(undone).toEqual(['http', 'producer', 'redis', 'postgres']);
  });

  it('closes once however often it is asked', async () => {
    let closes = 0;
    const resources = createResources(logger);
    expect(resources.own('client', 42, () => closes++)).toBe(42);
    await Promise.all([resources.close(), resources.close()]);
    await resources.close();
    expect(closes).toBe(1);
  });
});
