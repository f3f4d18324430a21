import { spawn } from 'node:child_process';
import { eventually } from '../../scripts/lib/eventually.js';
import { freePort } from '../../scripts/lib/processes.js';

export {
  freePort,
  jsonLogLines,
  startApi,
  startNodeProcess,
  startWorker,
  type RunningApi,
  type RunningProcess,
  type RunningWorker,
} from '../../scripts/lib/processes.js';

/** A redis-server started by `startRedisServer`. */
export interface RunningRedisServer {
  port: number;
  url: string;
  pid: number;
  /** Everything redis-server wrote so far, for failure messages. */
  output(): string;
  /**
   * Kills the server (SIGKILL: an outage, not a shutdown) and waits for it to exit. Pass
   * 'SIGTERM' for a clean shutdown, which flushes the append-only file first.
   */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * A redis-server of the test's own, with nothing persisted unless asked. Pass `port` to start it
 * again where a stopped one listened (clients configured with that URL reconnect to it);
 * default a free port.
 */
export async function startRedisServer(
  options: {
    appendOnly?: boolean;
    /** `appendfsync` with `appendOnly`: Redis's default is 'everysec'; 'always' loses no acknowledged write. */
    appendFsync?: 'always' | 'everysec' | 'no';
    dir?: string;
    port?: number;
    /** More redis-server arguments (a cluster node's, say). */
    args?: string[];
  } = {},
): Promise<RunningRedisServer> {
  const port = options.port ?? (await freePort());
  const args = [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    options.appendOnly ? 'yes' : 'no',
  ];
  if (options.appendFsync) args.push('--appendfsync', options.appendFsync);
  if (options.dir) args.push('--dir', options.dir);
  if (options.args) args.push(...options.args);
  const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (signal: NodeJS.Signals = 'SIGKILL') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  try {
    await eventually(
      () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited early:\n${output}`);
        return output.includes('Ready to accept connections') ? true : undefined;
      },
      { timeoutMs: 10_000, what: `redis-server to start on port ${port}` },
    );
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, url: `redis://127.0.0.1:${port}`, pid: child.pid!, output: () => output, stop };
}
