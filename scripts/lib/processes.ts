import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { eventually } from './eventually.js';

/**
 * The repository's root folder, with a trailing slash. This file runs from scripts/lib/ (tsx)
 * and from dist/scripts/lib/ (the build); either way the processes it starts are the repository's.
 */
export const PROJECT_ROOT = fileURLToPath(new URL('.', import.meta.url)).replace(/(dist\/)?scripts\/lib\/$/, '');

/** A free TCP port on 127.0.0.1 (asked of the OS). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export interface RunningProcess {
  child: ChildProcess;
  pid: number;
  /** Everything the process wrote so far (stdout and stderr), for assertions and failures. */
  output(): string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  /** Sends `signal` and waits for the exit, killing after `timeoutMs`. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string>;
}

/**
 * Starts `node <script>` from the build output (dist/) with `env` over the current environment.
 * A `.ts` path is run from the source tree through tsx instead (benchmark baselines).
 * `nodeArgs` go to node itself (the benchmark's `--cpu-prof`).
 */
export function startNodeProcess(script: string, env: Record<string, string>, nodeArgs: string[] = []): RunningProcess {
  const args = [
    ...nodeArgs,
    ...(script.endsWith('.ts') ? ['--import', 'tsx', `${PROJECT_ROOT}${script}`] : [`${PROJECT_ROOT}dist/${script}`]),
  ];
  const child = spawn(process.execPath, args, {
    cwd: PROJECT_ROOT,
    env: { ...process.env, LOG_PRETTY: 'false', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown'));
  });
  const running: RunningProcess = {
    child,
    pid: child.pid!,
    output: () => output,
    exited,
    async stop(signal = 'SIGTERM', timeoutMs = 20_000) {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  return running;
}

/** A process's complete JSON log lines (pino), parsed; other output and a partial last line are left out. */
export function jsonLogLines(output: string): Array<Record<string, unknown> & { msg?: string }> {
  return output
    .split('\n')
    .slice(0, -1)
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown> & { msg?: string });
}

export interface RunningApi extends RunningProcess {
  url: string;
}

/** Starts the API process on a free port and waits until it answers /health/live. */
export async function startApi(
  env: Record<string, string>,
  options: { nodeArgs?: string[] } = {},
): Promise<RunningApi> {
  const port = await freePort();
  const api = startNodeProcess(
    'src/api/server.js',
    { ...env, HOST: '127.0.0.1', PORT: String(port) },
    options.nodeArgs,
  );
  const url = `http://127.0.0.1:${port}`;
  try {
    await eventually(
      async () => {
        if (api.child.exitCode !== null) throw new Error(`API exited early:\n${api.output()}`);
        const response = await fetch(`${url}/health/live`).catch(() => null);
        return response?.ok ? true : undefined;
      },
      { timeoutMs: 15_000, what: 'the API to listen' },
    );
  } catch (error) {
    await api.stop('SIGKILL');
    throw error;
  }
  return { ...api, url };
}

export interface RunningWorker extends RunningProcess {
  /**
   * Where its HTTP endpoint (`/health/*`, `/metrics`) listens, from its `worker started` line;
   * undefined when that line was not logged (`ready` given, LOG_LEVEL above info).
   */
  url: string | undefined;
}

/**
 * Starts a worker process and waits until it logs that it has started, or, when `ready` is
 * given (for LOG_LEVEL above info), until that probe answers true. Its HTTP endpoint listens on
 * a port the OS picks (WORKER_HTTP_PORT 0) unless `env` names one, so workers never collide.
 */
export async function startWorker(
  env: Record<string, string>,
  options: { ready?: () => Promise<boolean>; nodeArgs?: string[] } = {},
): Promise<RunningWorker> {
  const worker = startNodeProcess('src/worker/main.js', { WORKER_HTTP_PORT: '0', ...env }, options.nodeArgs);
  try {
    const started = eventually(
      async () => {
        const ready = options.ready ? await options.ready() : worker.output().includes('worker started');
        return ready ? true : undefined;
      },
      { timeoutMs: 15_000, what: 'the worker to start' },
    );
    // A worker that exits fails the start at once, with what it said (and `started` times out unheard).
    started.catch(() => {});
    const exited = worker.exited.then((code) => ({ code }));
    const first = await Promise.race([started, exited]);
    if (first !== true) throw new Error(`worker exited early (${first.code}):\n${worker.output()}`);
  } catch (error) {
    await worker.stop('SIGKILL');
    throw error;
  }
  const started = jsonLogLines(worker.output()).find((line) => line.msg === 'worker started');
  return { ...worker, url: typeof started?.http === 'string' ? started.http : undefined };
}
