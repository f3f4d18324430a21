import type { FastifyReply } from 'fastify';

/** The media type of a Server-Sent Events answer. */
export const EVENT_STREAM_TYPE = 'text/event-stream';

export interface EventStream {
  /** Writes one event (`event:` and `data:` lines; `data` must hold no line break, as JSON does not). */
  event(name: string, data: string): void;
  /** Writes a comment line, which clients ignore: it keeps the connection from going idle. */
  comment(text: string): void;
  /** Ends the answer. Idempotent. */
  end(): void;
}

/**
 * A Server-Sent Events answer on `reply`, taken over from Fastify (`reply.hijack()`) at its
 * first write, so that nothing is written, and an error can still be answered as usual, until
 * then. The head carries every header the hooks set (the request id, the rate limit's; helmet's
 * are on the raw response already) and `Cache-Control: no-cache` and `X-Accel-Buffering: no`, so
 * proxies pass each event on at once.
 */
export function eventStream(reply: FastifyReply): EventStream {
  const response = reply.raw;
  let started = false;
  const write = (text: string) => {
    if (!started) {
      started = true;
      reply.hijack();
      for (const [name, value] of Object.entries(reply.getHeaders())) {
        if (value !== undefined) response.setHeader(name, value);
      }
      response.writeHead(200, {
        'content-type': `${EVENT_STREAM_TYPE}; charset=utf-8`,
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
      });
    }
    if (!response.writableEnded && !response.destroyed) response.write(text);
  };
  return {
    event: (name, data) => write(`event: ${name}\ndata: ${data}\n\n`),
    comment: (text) => write(`: ${text}\n\n`),
    end() {
      if (started && !response.writableEnded) response.end();
    },
  };
}
