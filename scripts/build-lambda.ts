import { createWriteStream } from 'node:fs';
import { mkdir, readdir, readFile, rm, stat } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { build, type Plugin } from 'esbuild';
import yazl from 'yazl';

/**
 * `npm run build:lambda`: bundles each Lambda handler with its production dependencies into one
 * CommonJS file and zips it as dist/lambda/<name>.zip holding `index.js` (handler
 * `index.handler`) and its source map. Nothing else goes in: no node_modules, no dev tools.
 */

const ROOT = fileURLToPath(new URL('../', import.meta.url)).replace(/dist\/$/, '');
const OUT = `${ROOT}dist/lambda/`;

/** The functions infra/lambda.tf deploys, and their entry files. */
export const LAMBDA_ENTRIES = {
  api: 'src/api/lambda.ts',
  worker: 'src/worker/lambda.ts',
  migrate: 'src/migrate/lambda.ts',
} as const;

/**
 * Never bundled. Knex requires every SQL dialect's driver lazily and pg its native binding:
 * payonce uses only `pg`, so the others are left as requires that never run. BullMQ is the other
 * queue driver, loaded only with QUEUE_DRIVER=bullmq, which has no place on Lambda, and so is the
 * queue dashboard (Bull Board), which needs it. pino-pretty is a development transport (the Lambda
 * config forces LOG_PRETTY=false).
 */
const EXTERNAL = [
  'better-sqlite3',
  'mariadb',
  'mysql',
  'mysql2',
  'oracledb',
  'pg-native',
  'pg-query-stream',
  'sqlite3',
  'tedious',
  'cloudflare:sockets',
  'bullmq',
  '@bull-board/*',
  'pino-pretty',
];

/**
 * The Redis scripts are files read at run time (src/shared/redis/script-source.ts); a zip holds
 * only index.js, so the bundle gets a version of that module with every file's text inlined.
 */
const inlineRedisScripts: Plugin = {
  name: 'inline-redis-scripts',
  setup(pluginBuild) {
    pluginBuild.onLoad({ filter: /[\\/]src[\\/]shared[\\/]redis[\\/]script-source\.ts$/ }, async () => {
      const dir = `${ROOT}src/shared/redis/commands/`;
      const files = (await readdir(dir, { recursive: true })).filter((file) => file.endsWith('.lua'));
      const sources: Record<string, string> = {};
      for (const file of files) sources[file.split('\\').join('/')] = await readFile(`${dir}${file}`, 'utf8');
      return {
        loader: 'ts',
        contents: `const SOURCES: Record<string, string> = ${JSON.stringify(sources)};
export function readScriptSource(path: string): string {
  const source = SOURCES[path];
  if (source === undefined) throw new Error(\`no Redis script \${path} in this bundle\`);
  return source;
}`,
      };
    });
  },
};

/**
 * Swagger UI and the checkout page serve files from folders (the package's, `src/api/checkout/`)
 * that a zip of `index.js` alone does not carry: on Lambda each becomes a plugin that registers
 * nothing, so `/docs*`, `/` and `/demo*` answer 404 ROUTE_NOT_FOUND there. `/openapi.json` is
 * unaffected (it is generated in memory).
 */
const withoutStaticFiles: Plugin = {
  name: 'without-static-files',
  setup(pluginBuild) {
    pluginBuild.onResolve({ filter: /^@fastify\/swagger-ui$/ }, () => ({ path: 'swagger-ui', namespace: 'stub' }));
    pluginBuild.onLoad({ filter: /.*/, namespace: 'stub' }, () => ({
      loader: 'js',
      contents: 'module.exports = async function swaggerUiNotBundled() {};',
    }));
    pluginBuild.onLoad({ filter: /[\\/]src[\\/]api[\\/]checkout-page\.ts$/ }, () => ({
      loader: 'ts',
      contents: 'export async function registerCheckoutPage(): Promise<void> {}',
    }));
  },
};

/** A fixed timestamp for zip entries: the same code gives the same zip (and source_code_hash). */
const ZIP_MTIME = new Date('2026-01-01T00:00:00Z');

async function zipFiles(zipPath: string, files: { name: string; path: string }[]): Promise<void> {
  const zip = new yazl.ZipFile();
  for (const file of files) {
    zip.addBuffer(await readFile(file.path), file.name, { mtime: ZIP_MTIME, mode: 0o100644 });
  }
  zip.end();
  await pipeline(zip.outputStream, createWriteStream(zipPath));
}

/** Builds every function; returns the zip paths and sizes. */
export async function buildLambdas(): Promise<{ name: string; zip: string; bytes: number }[]> {
  await rm(OUT, { recursive: true, force: true });
  await mkdir(OUT, { recursive: true });
  const built = [];
  for (const [name, entry] of Object.entries(LAMBDA_ENTRIES)) {
    const dir = `${OUT}${name}/`;
    await build({
      entryPoints: [`${ROOT}${entry}`],
      outfile: `${dir}index.js`,
      bundle: true,
      platform: 'node',
      target: 'node22',
      // CommonJS: knex, pg, ioredis and pino are CommonJS and require Node built-ins, and the
      // lazily imported driver modules stay lazy (their requires run only when loaded).
      format: 'cjs',
      minify: true,
      keepNames: true,
      // The functions run with --enable-source-maps: stack traces name the TypeScript sources.
      sourcemap: 'linked',
      sourcesContent: false,
      external: EXTERNAL,
      legalComments: 'none',
      logLevel: 'warning',
      plugins: [inlineRedisScripts, withoutStaticFiles],
    });
    const zip = `${OUT}${name}.zip`;
    await zipFiles(zip, [
      { name: 'index.js', path: `${dir}index.js` },
      { name: 'index.js.map', path: `${dir}index.js.map` },
    ]);
    built.push({ name, zip, bytes: (await stat(zip)).size });
  }
  return built;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  for (const { name, zip, bytes } of await buildLambdas()) {
    console.log(`${name.padEnd(8)} ${(bytes / 1024 / 1024).toFixed(2).padStart(6)} MiB  ${zip}`);
  }
}
