// cluster-key-slot ships no types (ioredis uses it to route commands; payonce, to group batches).
declare module 'cluster-key-slot' {
  /** The Redis Cluster hash slot (0-16383) of a key, honouring its hash tag as Redis does. */
  function calculateSlot(key: string | Buffer): number;
  export = calculateSlot;
}
