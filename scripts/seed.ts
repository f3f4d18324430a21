import { loadProcessConfigOrExit } from '../src/shared/config.js';
import { createDb } from '../src/shared/db.js';
import { seed } from '../seeds/demo.js';

/** `npm run db:seed`: loads demo users and products; safe to repeat. */
const db = createDb(await loadProcessConfigOrExit());
try {
  await seed(db);
  const [{ users }] = (await db('users').count({ users: '*' })) as [{ users: string }];
  const [{ products }] = (await db('products').count({ products: '*' })) as [{ products: string }];
  console.log(`seeded: ${users} users, ${products} products`);
} finally {
  await db.destroy();
}
