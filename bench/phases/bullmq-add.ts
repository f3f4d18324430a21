import { Redis } from 'ioredis';
import { purchaseProducerFromConfig } from '../../src/shared/queue/bullmq-purchase-producer.js';
import { bullmqPrefix } from '../../src/shared/redis/keys.js';
import { randomSuffix } from '../../scripts/lib/scratch.js';
import { log, type BenchContext } from '../context.js';
import { startCpuMeter, type CpuUse } from '../cpu.js';

/**
 * BullMQ's add on its own, with the producer's options: the floor of any accept path that
 * enqueues one BullMQ job per purchase. Its client runs in this process.
 */
export async function measureBullmqAdd(ctx: BenchContext): Promise<CpuUse> {
  const { plan, redisPid } = ctx;
  log('BullMQ add alone');
  const enqueueOnly = async (count: number): Promise<CpuUse> => {
    const queueName = `add_${randomSuffix()}`;
    const config = ctx.producerConfig(queueName);
    const connection = new Redis(ctx.redisUrl, { maxRetriesPerRequest: null });
    const producer = purchaseProducerFromConfig(config, {
      backend: 'redis',
      connection,
      prefix: bullmqPrefix(ctx.prefix),
    });
    const meter = await startCpuMeter(process.pid, redisPid);
    let next = 0;
    await Promise.all(
      Array.from({ length: plan.connections }, async () => {
        while (next < count) await producer.enqueuePurchase(ctx.benchJob(queueName, next++));
      }),
    );
    const used = await meter.stop(count);
    await producer.close();
    connection.disconnect();
    // The client's CPU is this process's: report it as the process under test.
    return { ...used, process: used.loadGenerator, loadGenerator: 0 };
  };
  // (Enough adds in quick mode too for /proc's 10 ms CPU ticks to see Redis's share.)
  await enqueueOnly(plan.addJobs / 10);
  return enqueueOnly(plan.addJobs);
}
