import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { copyBuildAssets } from '../../scripts/lib/build-assets.js';

/**
 * End-to-end tests run the built processes, so build once before any test file starts, as
 * `npm run build` does: compile, then copy the files read at run time (the Redis scripts, the
 * checkout page), so a test never runs a stale copy of them.
 */
export default function setup(): void {
  const root = fileURLToPath(new URL('../../', import.meta.url));
  execFileSync(process.execPath, [`${root}node_modules/typescript/bin/tsc`, '-p', 'tsconfig.build.json'], {
    cwd: root,
    stdio: 'inherit',
  });
  copyBuildAssets(root);
}
