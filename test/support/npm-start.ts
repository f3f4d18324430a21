import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { PROJECT_ROOT } from '../../scripts/lib/processes.js';
import { eventually } from '../../scripts/lib/eventually.js';

export type NpmStart = ReturnType<typeof startNpmStart>;

/**
 * `npm start`'s script (the build) in a process group of its own, as a terminal's foreground
 * job, with exactly `env` (callers start from `process.env`) and its API on `port`; its worker's
 * HTTP endpoint on a port the OS picks unless `env` names one.
 */
export function startNpmStart(env: NodeJS.ProcessEnv, port: number) {
  const child = spawn(process.execPath, [`${PROJECT_ROOT}dist/scripts/start.js`], {
    cwd: PROJECT_ROOT,
    detached: true,
    env: { WORKER_HTTP_PORT: '0', ...env, PORT: String(port), LOG_PRETTY: 'false' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const base = `http://127.0.0.1:${port}`;
  const service = {
    child,
    exited,
    base,
    output: () => output,
    /** The demo account's API key, as npm start printed it. */
    apiKey(): string {
      const key = /^API key: +(pk_live_\S+)/m.exec(output)?.[1];
      if (!key) throw new Error(`npm start printed no API key:\n${output}`);
      return key;
    },
    /** The `Authorization` header of the demo account's key. */
    authorization(): Record<string, string> {
      return { authorization: `Bearer ${service.apiKey()}` };
    },
    /** The API's and the worker's pids, from their log lines. */
    childPids: () => [...new Set([...output.matchAll(/"pid":(\d+)/g)].map((match) => Number(match[1])))],
    /** Waits until the API answers ready and the worker has started. */
    async ready() {
      await eventually(async () => ((await fetch(`${base}/health/ready`).catch(() => null))?.ok ? true : undefined), {
        timeoutMs: 30_000,
        what: `npm start to serve:\n${output}`,
      });
      // Readiness is the API's; the worker starts alongside and may be slower on a loaded machine.
      await eventually(() => (output.includes('worker started') ? true : undefined), {
        timeoutMs: 30_000,
        what: `the worker to start:\n${output}`,
      });
    },
    /** Ctrl-C at the terminal (SIGINT to the group); resolves with npm start's exit code. */
    async interrupt() {
      process.kill(-child.pid!, 'SIGINT');
      return exited;
    },
    /** Ends whatever is left of a failed run: the group, and the children in groups of their own. */
    cleanUp() {
      for (const pid of [-child.pid!, ...service.childPids()]) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
  };
  return service;
}

/** A process's state letter and parent pid, from /proc/<pid>/stat (Linux); undefined when unreadable. */
export function processStat(pid: number): { state: string; ppid: number } | undefined {
  try {
    // "<pid> (<name>) <state> <ppid> …": the name may hold spaces and parentheses, so read after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: state!, ppid: Number(ppid) };
  } catch {
    return undefined;
  }
}

/**
 * Whether a process with this pid still runs. A zombie does not: it has exited and waits for its
 * parent (init, for the orphans npm start leaves by design) to collect it, which can take a while.
 */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0); // signal 0 checks without sending anything
  } catch {
    return false;
  }
  return processStat(pid)?.state !== 'Z';
}
