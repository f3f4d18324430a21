import calculateSlot from 'cluster-key-slot';

/**
 * Runs a batched script over `items`: in one call on a single Redis, and on a Redis Cluster in
 * one call per hash slot, the calls at once (a script may only touch keys of one slot; ioredis
 * sends each call to the node that serves its slot). Items keep their order within a slot, so
 * two claims of one key in a batch are still decided first come, first served. On a cluster a
 * call that fails fails only its own items (an Error in their places, as DataLoader takes it);
 * on a single Redis the one call's error rejects the whole batch, as before.
 * @param slotKeyOf one of an item's keys; all of an item's keys share its slot (keys.ts).
 * @param run the script for a group of items; it answers one result per item, in order.
 */
export async function runPerSlot<T, R>(
  items: readonly T[],
  { cluster, slotKeyOf }: { cluster: boolean; slotKeyOf: (item: T) => string },
  run: (group: readonly T[]) => Promise<readonly R[]>,
): Promise<ReadonlyArray<R | Error>> {
  if (!cluster) return run(items);
  const slots = new Map<number, number[]>();
  items.forEach((item, index) => {
    const slot = calculateSlot(slotKeyOf(item));
    const indexes = slots.get(slot);
    if (indexes) indexes.push(index);
    else slots.set(slot, [index]);
  });
  const results = new Array<R | Error>(items.length);
  await Promise.all(
    [...slots.values()].map(async (indexes) => {
      try {
        const answers = await run(indexes.map((index) => items[index]!));
        indexes.forEach((index, position) => (results[index] = answers[position]!));
      } catch (error) {
        for (const index of indexes) results[index] = error instanceof Error ? error : new Error(String(error));
      }
    }),
  );
  return results;
}
