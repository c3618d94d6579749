import { Redis } from 'ioredis';
import { UnavailableError } from '../errors.ts';
import type { Logger } from '../observability/logger.ts';

export type { Redis };

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

/** Opens the three connections and waits (up to 10 s) until Redis answers. */
export async function connectRedis(url: string, log: Logger): Promise<RedisConnections> {
  const commands = connect(url, 'commands', log);
  const blocking = connect(url, 'blocking', log);
  const subscriber = connect(url, 'subscriber', log);
  const connections: RedisConnections = {
    commands,
    blocking,
    subscriber,
    async close() {
      for (const redis of [commands, blocking, subscriber]) redis.disconnect();
    },
  };
  try {
    await waitUntilAnswering(commands, url);
  } catch (error) {
    await connections.close();
    throw error;
  }
  return connections;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntilAnswering(redis: Redis, url: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await redis.ping();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw new UnavailableError('redis_unavailable', `Redis at ${url.replace(/\/\/[^@]*@/, '//***@')} does not answer (${String(error)}). Start it or fix REDIS_URL.`);
      await sleep(250);
    }
  }
}
