/** A container's memoised set-up; see `oncePerContainer`. */
export interface ContainerSetUp<T> {
  (): Promise<T>;
  /**
   * Closes what the set-up made, if it ever succeeded (Lambda itself never needs to: it freezes
   * and discards containers). For tests and local runs that load a handler in a longer-lived
   * process; the next invocation sets the container up again.
   */
  close(): Promise<void>;
}

/**
 * Memoises a container's asynchronous set-up: the first invocation starts it, later ones reuse
 * it. A failed set-up is forgotten, so the next invocation tries again instead of failing forever.
 */
export function oncePerContainer<T extends { close(): Promise<void> }>(setUp: () => Promise<T>): ContainerSetUp<T> {
  let ready: Promise<T> | undefined;
  const get = () => {
    ready ??= setUp().catch((error: unknown) => {
      ready = undefined;
      throw error;
    });
    return ready;
  };
  return Object.assign(get, {
    async close() {
      const taken = ready;
      ready = undefined;
      if (!taken) return;
      const made = await taken.catch(() => undefined);
      await made?.close();
    },
  });
}
