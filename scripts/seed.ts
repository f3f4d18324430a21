import { loadProcessConfigOrExit } from '../src/shared/config.js';
import { createDb } from '../src/shared/db.js';
import { seed } from '../seeds/demo.js';

/** `npm run db:seed`: the demo account with its users and products; safe to repeat. */
const db = createDb(await loadProcessConfigOrExit());
try {
  const accountId = await seed(db);
  const [{ users }] = (await db('users').where({ account_id: accountId }).count({ users: '*' })) as [{ users: string }];
  const [{ products }] = (await db('products').where({ account_id: accountId }).count({ products: '*' })) as [
    { products: string },
  ];
  console.log(`seeded the demo account ${accountId}: ${users} users, ${products} products`);
} finally {
  await db.destroy();
}
