import { createServer, connect, type Socket } from 'node:net';

/** How a cut treats connections opened while it lasts. */
export type CutMode =
  /** Accept, then reset at once: the client sees ECONNRESET (a host that refuses). */
  | 'reset'
  /**
   * Accept and hold without forwarding a byte: the client's connect or handshake hangs until its
   * own timeout (a partition). On `restore()` connections still open are forwarded after all.
   */
  | 'stall';

export interface TcpProxy {
  port: number;
  /** `url` with its host and port replaced by the proxy's (e.g. a DATABASE_URL or REDIS_URL). */
  rewrite(url: string): string;
  /** Client connections currently forwarded to the target. */
  readonly connections: number;
  /** Connections accepted since the proxy started (for asserting that clients came back). */
  readonly accepted: number;
  /**
   * Cuts the link: drops every forwarded connection (both ends, the client's with a reset) and
   * treats new ones as `mode` says until `restore()`. Default mode 'reset'.
   */
  cut(options?: { mode?: CutMode }): void;
  /** Forwards new connections again, and those a 'stall' cut was holding. */
  restore(): void;
  /**
   * Arms a one-shot trap on the first client-to-target chunk containing `marker` (for example
   * a command name or an SQL text). 'hold': that chunk and everything the client sends after it
   * on that connection are never forwarded, as if the client froze right before the command
   * reached the target. 'drop-replies': the chunk is forwarded, but nothing the target sends on
   * that connection reaches the client any more, as if the reply were lost on the way back.
   * Resolves with the chunk that sprang it (to read, e.g., the ids it carried) when the trap
   * fires. One trap at a time.
   */
  trap(marker: string, action: TrapAction): Promise<Buffer>;
  /** Drops every connection and stops listening. Idempotent. */
  close(): Promise<void>;
}

/** What `trap` does to the connection that sent the marker. */
export type TrapAction = 'hold' | 'drop-replies';

interface Link {
  client: Socket;
  upstream: Socket | null;
  trapped: TrapAction | null;
}

/**
 * A TCP proxy of the test's own between a process and a server (Postgres, Redis), so a test can
 * cut and restore the network between them without touching the server other tests share.
 */
export async function startTcpProxy(target: { host?: string; port: number }): Promise<TcpProxy> {
  const host = target.host ?? '127.0.0.1';
  const links = new Set<Link>();
  const stalled = new Set<Link>();
  let mode: 'open' | CutMode = 'open';
  let accepted = 0;
  let armed: { marker: Buffer; action: TrapAction; fired: (chunk: Buffer) => void } | null = null;
  // A marker may straddle two chunks; keep enough of the previous one to see it.
  const tails = new WeakMap<Link, Buffer>();

  /** Ends both sides of a link; `reset` makes the client see a reset rather than a close. */
  function drop(link: Link, reset = false): void {
    links.delete(link);
    stalled.delete(link);
    if (!link.client.destroyed) {
      if (reset) link.client.resetAndDestroy();
      else link.client.destroy();
    }
    link.upstream?.destroy();
  }

  function forward(link: Link): void {
    const upstream = connect({ host, port: target.port });
    link.upstream = upstream;
    links.add(link);
    upstream.on('error', () => drop(link));
    upstream.on('close', () => drop(link));
    upstream.on('data', (chunk: Buffer) => {
      if (link.trapped !== 'drop-replies') link.client.write(chunk);
    });
    link.client.on('data', (chunk: Buffer) => {
      if (link.trapped === 'hold') return;
      if (armed && !link.trapped) {
        const seen = Buffer.concat([tails.get(link) ?? Buffer.alloc(0), chunk]);
        if (seen.includes(armed.marker)) {
          const { action, fired } = armed;
          armed = null;
          link.trapped = action;
          fired(seen);
          if (action === 'hold') return;
        } else {
          tails.set(link, seen.subarray(Math.max(0, seen.length - armed.marker.length)));
        }
      }
      upstream.write(chunk);
    });
    link.client.resume();
  }

  const server = createServer({ pauseOnConnect: true }, (client) => {
    accepted++;
    const link: Link = { client, upstream: null, trapped: null };
    client.on('error', () => drop(link));
    client.on('close', () => drop(link));
    if (mode === 'reset') {
      drop(link, true);
    } else if (mode === 'stall') {
      stalled.add(link);
    } else {
      forward(link);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let closing: Promise<void> | undefined;

  return {
    port,
    rewrite(url) {
      const rewritten = new URL(url);
      rewritten.hostname = '127.0.0.1';
      rewritten.port = String(port);
      return rewritten.toString();
    },
    get connections() {
      return links.size;
    },
    get accepted() {
      return accepted;
    },
    cut(options = {}) {
      mode = options.mode ?? 'reset';
      for (const link of [...links]) drop(link, true);
    },
    restore() {
      mode = 'open';
      for (const link of [...stalled]) {
        stalled.delete(link);
        if (!link.client.destroyed) forward(link);
      }
    },
    trap(marker, action) {
      if (armed) throw new Error('a trap is already armed');
      return new Promise<Buffer>((resolve) => {
        armed = { marker: Buffer.from(marker), action, fired: resolve };
      });
    },
    close() {
      closing ??= new Promise<void>((resolve) => {
        mode = 'reset';
        for (const link of [...links, ...stalled]) drop(link, true);
        server.close(() => resolve());
      });
      return closing;
    },
  };
}
