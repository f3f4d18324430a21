import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AppError } from '../errors.js';
import type { User, UsersRepository } from '../catalog/users-repository.js';
import { errorResponses, Id, ListQuery } from '../http-schemas.js';

const UserView = z.object({ id: Id, username: z.string(), createdAt: z.iso.datetime() });
const toUserView = (user: User) => ({ ...user, createdAt: user.createdAt.toISOString() });

export const usersRoutes: FastifyPluginAsyncZod<{ users: UsersRepository }> = async (app, { users }) => {
  app.post('/user', {
    schema: {
      body: z.strictObject({
        username: z
          .string()
          .min(1)
          .max(64)
          .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "-" and "." only'),
      }),
      response: { 201: UserView, ...errorResponses(400, 401, 409, 413, 415, 429, 503) },
    },
    handler: async (request, reply) => {
      const user = await users.createUser(request.accountId, request.body.username);
      if (!user) throw new AppError('USERNAME_TAKEN', `Username "${request.body.username}" is taken`);
      return reply.code(201).send(toUserView(user));
    },
  });

  app.get('/user', {
    schema: { querystring: ListQuery, response: { 200: z.array(UserView), ...errorResponses(400, 401, 429, 503) } },
    handler: async (request) => (await users.listUsers(request.accountId, request.query.limit)).map(toUserView),
  });
};
