import type { Db } from '../../shared/db.js';

export interface User {
  id: number;
  username: string;
  createdAt: Date;
}

interface UserRow {
  id: number;
  account_id: number;
  username: string;
  created_at: Date;
}

const toUser = (row: Pick<UserRow, 'id' | 'username' | 'created_at'>): User => ({
  id: row.id,
  username: row.username,
  createdAt: row.created_at,
});

/** An account's users (its customers); no call ever sees another account's. */
export function createUsersRepository({ db }: { db: Db }) {
  return {
    /** Creates a user in the account, or returns null when the account already has that username. */
    async createUser(accountId: number, username: string): Promise<User | null> {
      const rows = await db<UserRow>('users')
        .insert({ account_id: accountId, username })
        .onConflict(['account_id', 'username'])
        .ignore()
        .returning(['id', 'username', 'created_at']);
      return rows[0] ? toUser(rows[0]) : null;
    },

    async listUsers(accountId: number, limit: number): Promise<User[]> {
      const rows = await db<UserRow>('users')
        .where({ account_id: accountId })
        .orderBy('id')
        .limit(limit)
        .select('id', 'username', 'created_at');
      return rows.map(toUser);
    },
  };
}

export type UsersRepository = ReturnType<typeof createUsersRepository>;
