import type { Config } from './config.js';
import type { Db } from './db.js';
import type { Resources } from './lifecycle.js';
import type { Logger } from './logger.js';
import { openPostgresStores } from './postgres/stores.js';
import type { PurchaseStores } from './purchase/purchase-stores.js';
import { openRedisStores } from './redis/stores.js';

/**
 * Opens the configured store backend (STORE_BACKEND): `src/shared/redis/` or
 * `src/shared/postgres/`, one folder per backend, behind one shape (`PurchaseStores`). Its
 * connections are owned by `resources`, so the process closes them with everything else, in
 * reverse order.
 * @param deps.db the process's Postgres pool (the Postgres backend keeps its tables there).
 * @param deps.role `api` (fail-fast Redis for request paths) or `worker` (Redis that waits out reconnects).
 */
export function openPurchaseStores(
  config: Config,
  deps: { db: Db; logger: Logger; resources: Resources; role: 'api' | 'worker' },
): PurchaseStores {
  return config.STORE_BACKEND === 'redis' ? openRedisStores(config, deps) : openPostgresStores(config, deps);
}
