import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { adminGuard, adminTokenCheck } from '../shared/http/admin-guard.js';
import { createAdminSessions } from './admin-session.js';

/** Where the dashboard is served. */
const QUEUE_BOARD_PATH = '/admin/queues';

/** Where a browser trades the admin token for a session cookie. */
const ADMIN_LOGIN_PATH = '/admin/login';
const ADMIN_LOGOUT_PATH = '/admin/logout';

export interface QueueBoardOptions {
  /** ADMIN_TOKEN: a Bearer header with it, or a session opened with it at /admin/login. */
  adminToken: string;
  /** The purchase queue (a Queue of its own, on the app's store backend); the caller closes it. */
  queue: Queue;
}

/** The login form (`notice` is text of ours, never the client's): no script, so the default Content-Security-Policy holds. */
const loginPage = (notice: string) => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="robots" content="noindex">
<title>payonce operator login</title></head>
<body>
<h1>payonce operator login</h1>
${notice ? `<p role="alert">${notice}</p>` : ''}
<form method="post" action="${ADMIN_LOGIN_PATH}">
<label>ADMIN_TOKEN <input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit">Open the queue dashboard</button>
</form>
</body></html>
`;

const html = (reply: FastifyReply, status: number, body: string) =>
  reply.code(status).header('cache-control', 'no-store').type('text/html; charset=utf-8').send(body);

/** A browser navigating (it asks for HTML), rather than a script that can send a Bearer header. */
const isNavigation = (request: FastifyRequest) =>
  request.method === 'GET' &&
  request.headers.authorization === undefined &&
  /text\/html/.test(request.headers.accept ?? '');

/**
 * `GET /admin/queues`: Bull Board over the purchase queue, read-only (a purchase job is retried,
 * removed or re-queued by payonce itself, never by hand), behind ADMIN_TOKEN. Scripts send
 * `Authorization: Bearer <ADMIN_TOKEN>`; browsers, which cannot, get a session cookie by posting
 * the token to `/admin/login` (a form, so the token is in no URL and no log line) and are sent
 * there when they navigate without one. Every route is hidden from the OpenAPI document.
 */
export async function registerQueueBoard(app: FastifyInstance, options: QueueBoardOptions): Promise<void> {
  const sessions = createAdminSessions(options.adminToken);
  const bearer = adminGuard(options.adminToken);
  const isAdminToken = adminTokenCheck(options.adminToken);

  const login: FastifyPluginAsyncZod = async (admin) => {
    // Form posts, for the login form only (the client API stays JSON only).
    admin.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string', bodyLimit: 4096 },
      (_request, body, done) => done(null, Object.fromEntries(new URLSearchParams(body as string))),
    );
    admin.get(ADMIN_LOGIN_PATH, { schema: { hide: true } }, (_request, reply) => html(reply, 200, loginPage('')));
    admin.post(ADMIN_LOGIN_PATH, {
      schema: { hide: true, body: z.object({ token: z.string().max(1024) }) },
      handler: async (request, reply) => {
        if (!isAdminToken(request.body.token)) return html(reply, 401, loginPage('That is not the admin token.'));
        return reply.header('set-cookie', sessions.open()).redirect(QUEUE_BOARD_PATH, 303);
      },
    });
    admin.get(ADMIN_LOGOUT_PATH, { schema: { hide: true } }, (_request, reply) =>
      reply.header('set-cookie', sessions.close()).redirect(ADMIN_LOGIN_PATH, 303),
    );
  };
  await app.register(login);

  await app.register(async (board) => {
    board.addHook('onRequest', async (request, reply) => {
      if (sessions.isValid(request.headers.cookie)) return;
      if (isNavigation(request)) return reply.redirect(ADMIN_LOGIN_PATH, 303);
      return bearer.call(board, request, reply);
    });
    const serverAdapter = new FastifyAdapter().setBasePath(QUEUE_BOARD_PATH);
    createBullBoard({
      queues: [new BullMQAdapter(options.queue, { readOnlyMode: true })],
      serverAdapter,
      options: {
        uiConfig: {
          boardTitle: 'payonce',
          hideDocsLink: true,
          miscLinks: [{ text: 'Log out', url: ADMIN_LOGOUT_PATH }],
        },
      },
    });
    await board.register(serverAdapter.registerPlugin(), { prefix: QUEUE_BOARD_PATH });
  });
}
