import { cpSync, rmSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Folders of files the processes read at run time beside their compiled code: the Redis scripts
 * (src/shared/redis/script-source.ts) and the checkout page (src/api/checkout-page.ts).
 * `npm run build` and the tests' build copy them into dist/; the Lambda bundles inline the
 * scripts and leave the page out (scripts/build-lambda.ts).
 */
const BUILD_ASSET_DIRS = ['src/shared/redis/commands', 'src/api/checkout'] as const;

/** Replaces each of BUILD_ASSET_DIRS under `root`/dist with a copy of `root`'s (nothing stale is left behind). */
export function copyBuildAssets(root: string): void {
  for (const dir of BUILD_ASSET_DIRS) {
    const target = join(root, 'dist', dir);
    rmSync(target, { recursive: true, force: true });
    cpSync(join(root, dir), target, { recursive: true });
  }
}
