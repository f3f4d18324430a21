import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SCRIPT_FILES, scriptSource } from '../../src/shared/redis/scripts.js';

const COMMANDS_DIR = new URL('../../src/shared/redis/commands/', import.meta.url);

describe('the Redis scripts in src/shared/redis/commands', () => {
  it('are each defined as a command, and every command has its file', () => {
    const files = readdirSync(COMMANDS_DIR)
      .filter((file) => file.endsWith('.lua'))
      .map((file) => file.replace(/\.lua$/, ''));
    expect(Object.values(SCRIPT_FILES).sort()).toEqual(files.sort());
  });

  it('have their includes inlined once each, with no include line left', () => {
    for (const file of Object.values(SCRIPT_FILES)) {
      const source = scriptSource(file);
      expect(source, file).not.toMatch(/@include/);
      for (const fn of ['hsetFields', 'claimOwnedBy']) {
        expect(source.split(`local function ${fn}(`).length, `${file}: ${fn}`).toBeLessThanOrEqual(2);
      }
    }
    expect(scriptSource('release-claim')).toContain('local function claimOwnedBy(');
    expect(scriptSource('keep-unrecorded')).toContain('local function hsetFields(');
  });
});
