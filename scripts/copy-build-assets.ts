import { fileURLToPath } from 'node:url';
import { copyBuildAssets } from './lib/build-assets.js';

/** The last step of `npm run build` (after tsc): copies the run-time asset folders into dist/. */
copyBuildAssets(fileURLToPath(new URL('.', import.meta.url)).replace(/(dist\/)?scripts\/$/, ''));
