import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { seed } from '../seeds/demo.js';
import { loadProcessConfigOrExit } from '../src/shared/config.js';
import { createDb, ensureDatabaseExists, migrateLatest } from '../src/shared/db.js';
import { migrateQueueSchema } from '../src/shared/postgres/queue-schema.js';

/**
 * `npm start`: creates and migrates the database, seeds demo data into an empty one, then runs
 * the API and one worker as two processes until Ctrl-C, which stops both gracefully.
 */
const config = await loadProcessConfigOrExit();
await ensureDatabaseExists(config.DATABASE_URL);
const db = createDb(config);
try {
  await migrateLatest(db);
  if (config.STORE_BACKEND === 'postgres') await migrateQueueSchema(config.DATABASE_URL);
  const [{ count }] = (await db('products').count({ count: '*' })) as [{ count: string }];
  if (Number(count) === 0) {
    await seed(db);
    console.log('seeded demo users and products (GET /user, GET /product)');
  }
} finally {
  await db.destroy();
}

const entry = (path: string) => fileURLToPath(new URL(path, import.meta.url));
// Each child gets its own process group, so a Ctrl-C reaches it once, forwarded from here, and
// not also from the terminal (a second signal would make it exit without draining). The IPC
// channel closes if this process dies without forwarding anything (SIGKILL), and the child
// then shuts down gracefully by itself instead of running on unattended.
const start = (script: string) =>
  spawn(process.execPath, [entry(script)], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'], detached: true });
const children = new Map<string, ChildProcess>([
  ['api', start('../src/api/server.js')],
  ['worker', start('../src/worker/main.js')],
]);

let stopping = false;
let exitCode = 0;
function stopAll(signal: NodeJS.Signals): void {
  // npm and the terminal may both deliver the same Ctrl-C: forward only the first.
  if (stopping) return;
  stopping = true;
  for (const child of children.values()) if (child.exitCode === null) child.kill(signal);
}
process.on('SIGINT', () => stopAll('SIGINT'));
process.on('SIGTERM', () => stopAll('SIGTERM'));

for (const [name, child] of children) {
  child.on('exit', (code, signal) => {
    children.delete(name);
    if (!stopping) {
      // One process died on its own: stop the other rather than run half a service.
      console.error(`${name} exited (${signal ?? code}); stopping`);
      exitCode = 1;
      stopAll('SIGTERM');
    } else if (code !== 0) {
      exitCode = code ?? 1;
    }
    if (children.size === 0) process.exit(exitCode);
  });
}
