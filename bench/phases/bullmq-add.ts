import { purchaseProducerFromConfig } from '../../src/shared/queue/bullmq-purchase-producer.js';
import { randomSuffix } from '../../scripts/lib/scratch.js';
import { log, type Backend, type BenchContext } from '../context.js';
import type { CpuUse } from '../cpu.js';

/**
 * BullMQ's add on its own on `backend`, with the producer's options: the floor of any accept path
 * that enqueues one BullMQ job per purchase there. Its client runs in this process.
 */
export async function measureBullmqAdd(ctx: BenchContext, backend: Backend): Promise<CpuUse> {
  const { plan } = ctx;
  log(`BullMQ add alone on ${backend}`);
  const enqueueOnly = async (count: number): Promise<CpuUse> => {
    const queueName = `add_${randomSuffix()}`;
    const producerStore = ctx.openProducerStore(backend);
    const producer = purchaseProducerFromConfig(ctx.producerConfig(queueName), producerStore.store);
    const meter = await ctx.meterCpu(process.pid, backend);
    let next = 0;
    await Promise.all(
      Array.from({ length: plan.connections }, async () => {
        while (next < count) await producer.enqueuePurchase(ctx.benchJob(queueName, next++));
      }),
    );
    const used = await meter.stop(count);
    await producer.close();
    producerStore.close();
    // The client's CPU is this process's: report it as the process under test.
    return { ...used, process: used.loadGenerator, loadGenerator: 0 };
  };
  // (Enough adds in quick mode too for /proc's 10 ms CPU ticks to see the backend's share.)
  await enqueueOnly(plan.addJobs / 10);
  return enqueueOnly(plan.addJobs);
}
