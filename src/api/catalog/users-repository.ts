import type { Db } from '../../shared/db.js';

export interface User {
  id: number;
  username: string;
  createdAt: Date;
}

interface UserRow {
  id: number;
  username: string;
  created_at: Date;
}

const toUser = (row: UserRow): User => ({ id: row.id, username: row.username, createdAt: row.created_at });

export function createUsersRepository({ db }: { db: Db }) {
  return {
    /** Creates a user, or returns null when the username is taken. */
    async createUser(username: string): Promise<User | null> {
      const rows = await db<UserRow>('users').insert({ username }).onConflict('username').ignore().returning('*');
      return rows[0] ? toUser(rows[0]) : null;
    },

    async listUsers(limit: number): Promise<User[]> {
      const rows = await db<UserRow>('users').orderBy('id').limit(limit);
      return rows.map(toUser);
    },
  };
}

export type UsersRepository = ReturnType<typeof createUsersRepository>;
