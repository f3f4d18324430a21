import type { PurchaseEventSource } from '../purchase/purchase-states.js';
import { subscribeWhenReady, type RedisClient } from './connection.js';

/**
 * Announcements on a Redis pub/sub channel, heard on a connection of its own (once subscribed it
 * can run nothing else; its owner closes it). ioredis restores the subscription after each
 * reconnect, but what was published meanwhile is gone: listeners hear of every reconnect. On a
 * Redis Cluster the subscription lives on one node, which hears every node's PUBLISH; when that
 * node goes, ioredis subscribes on another without telling (no 'ready'), so what was published
 * in between is left to the listeners' own status poll.
 */
export function createRedisPurchaseEvents(subscriber: RedisClient, channel: string): PurchaseEventSource {
  const messageListeners: Array<(payload: string) => void> = [];
  const resubscribedListeners: Array<() => void> = [];
  let subscribed: Promise<void> | undefined;
  let closed = false;

  const onMessage = (from: string, payload: string) => {
    if (from === channel) for (const listener of messageListeners) listener(payload);
  };
  const onReady = () => {
    for (const listener of resubscribedListeners) listener();
  };
  subscriber.on('message', onMessage);

  return {
    start() {
      subscribed ??= subscribeWhenReady(subscriber, channel).then(() => {
        if (!closed) subscriber.on('ready', onReady);
      });
      return subscribed;
    },
    onMessage: (listener) => void messageListeners.push(listener),
    onResubscribed: (listener) => void resubscribedListeners.push(listener),
    async close() {
      closed = true;
      subscriber.off('message', onMessage);
      subscriber.off('ready', onReady);
    },
  };
}
