import { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.ts';

export type { Redis };

/** Every key braindrill writes starts with this, so one Redis can be shared with other applications. */
export const PREFIX = 'braindrill:';

/**
 * The three connections a node holds. Heartbeats and commands never share a connection with a blocking
 * read (XREADGROUP BLOCK) or a subscription, which would delay them.
 */
export interface RedisConnections {
  commands: Redis;
  blocking: Redis;
  subscriber: Redis;
  close(): Promise<void>;
}

function connect(url: string, name: string, log: Logger): Redis {
  const redis = new Redis(url, {
    connectionName: `braindrill-${name}`,
    // Commands wait for a reconnect instead of failing after 20 retries; callers bound their own waits.
    maxRetriesPerRequest: name === 'blocking' ? null : 3,
    retryStrategy: (attempt) => Math.min(attempt * 200, 2000),
    enableOfflineQueue: true,
  });
  let down = false;
  redis.on('error', (error: Error) => {
    if (!down) log.warn({ err: error, connection: name }, 'Redis connection failed; reconnecting');
    down = true;
  });
  redis.on('ready', () => {
    if (down) log.info({ connection: name }, 'Redis connection restored');
    down = false;
  });
  return redis;
}

export function connectRedis(url: string, log: Logger): RedisConnections {
  const commands = connect(url, 'commands', log);
  const blocking = connect(url, 'blocking', log);
  const subscriber = connect(url, 'subscriber', log);
  return {
    commands,
    blocking,
    subscriber,
    async close() {
      for (const redis of [commands, blocking, subscriber]) redis.disconnect();
    },
  };
}
