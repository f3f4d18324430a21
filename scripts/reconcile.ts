import { parseArgs } from 'node:util';
import { loadProcessConfigOrExit } from '../src/shared/config.js';
import { createLogger } from '../src/shared/logger.js';
import { composeWorker } from '../src/worker/composition-root.js';

/**
 * `npm run reconcile [-- --after SECONDS]`: one reconciliation now, for operators (after a Redis
 * failover or restore, say). It completes every purchase accepted more than SECONDS ago (default
 * 5) that has no payment and whose job is gone, and prints what it did as one JSON line. On SQS
 * it acts only on purchases older than their whole retry schedule, since the queue cannot be
 * asked about one message.
 */
const { values } = parseArgs({ options: { after: { type: 'string', default: '5' } } });
const afterSeconds = Number(values.after);
if (!Number.isInteger(afterSeconds) || afterSeconds < 0) {
  console.error('--after takes a whole number of seconds');
  process.exit(2);
}
const config = await loadProcessConfigOrExit();
// What it did goes to stdout as one JSON line; its log (each purchase it touched) to stderr.
const worker = composeWorker(config, { logger: createLogger(config, 'payonce-reconcile', { toStderr: true }) });
try {
  console.log(JSON.stringify(await worker.reconcile(afterSeconds)));
} finally {
  await worker.close();
}
