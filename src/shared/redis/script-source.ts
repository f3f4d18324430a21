import { readFileSync } from 'node:fs';

/**
 * The text of a Lua file under `commands/`, by its path there (`claim-idempotency-keys.lua`,
 * `includes/hset-fields.lua`). It is read from beside this module: `npm run build` copies the
 * folder into dist/, and the Lambda bundles replace this module with one that holds every file's
 * text (scripts/build-lambda.ts), so a zip carries its scripts inside index.js.
 */
export function readScriptSource(path: string): string {
  return readFileSync(new URL(`./commands/${path}`, import.meta.url), 'utf8');
}
