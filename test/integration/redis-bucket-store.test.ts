import t, { type Test } from 'tap';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import { LocalBucketStore } from '../../src/access/bucket-store.ts';
import { EXPIRY_MARGIN_MS, RedisBucketStore, TAKE_TOKEN_COMMAND } from '../../src/access/redis-bucket-store.ts';
import { takeToken, type BucketPolicy, type BucketState } from '../../src/access/token-bucket.ts';
import { startRedis } from '../../support/redis.ts';

const server = await startRedis();
t.teardown(() => server.destroy());

/** A fresh connection, closed when the test ends. */
function connection(t: Test, options: RedisOptions = {}): Redis {
  const redis = new Redis(server.url, options);
  t.teardown(() => redis.disconnect());
  return redis;
}

/** Resolves when the connection is ready (bounded: 5 s). */
async function ready(redis: Redis): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (redis.status !== 'ready') {
    if (Date.now() > deadline) throw new Error(`redis connection still ${redis.status} after 5 s`);
    await sleep(20);
  }
}

/** Every test gets its own key prefix (STYLE 10), so tests never see each other's buckets. */
const uniquePrefix = () => `test:${randomUUID()}:`;

t.test('capacity 5: five pass with remaining 4..0, the sixth is refused with what takeToken gives', async (t) => {
  const store = new RedisBucketStore(connection(t), { prefix: uniquePrefix() });
  const policy = { capacity: 5, windowMs: 3_600_000 };
  const results = [];
  for (let i = 0; i < 5; i++) results.push(await store.take('k', policy));
  t.same(
    results.map((r) => r.allowed),
    [true, true, true, true, true],
  );
  t.same(
    results.map((r) => r.remaining),
    [4, 3, 2, 1, 0],
  );
  // The bucket refills continuously from the first take on, so the time to the next token is a little
  // under 720 s (3600 s / 5) by how long the takes took: a range, not an exact figure.
  const retries = results.map((r) => r.retryAfterSeconds);
  t.same(retries.slice(0, 4), [0, 0, 0, 0], 'whole tokens were left after the first four');
  t.ok(retries[4]! > 600 && retries[4]! <= 720, `the fifth leaves no whole token: the next one is ${retries[4]} s away (at most 720)`);

  const sixth = await store.takeWithState('k', policy);
  t.notOk(sixth.allowed);
  t.equal(sixth.remaining, 0);
  t.ok(sixth.retryAfterSeconds > 600 && sixth.retryAfterSeconds <= 720, `one token per window/capacity: ${sixth.retryAfterSeconds} s (at most 720)`);

  const refused = await store.take('k', policy);
  t.same(Object.keys(refused).sort(), ['allowed', 'remaining', 'retryAfterSeconds'], 'take() returns exactly the three fields');
  t.match(refused, { allowed: false, remaining: 0 });
  // The same refusal computed by takeToken from the state the script stored and the clock it read. The
  // previous state must be the one the script left just before: refilling in two steps (t6→t7→t8) and
  // in one (t6→t8) round differently in the last bit.
  const before = await store.takeWithState('k', policy);
  const again = await store.takeWithState('k', policy);
  const expected = takeToken(before.state, policy, again.state.updatedAtMs);
  t.same(again, expected, 'Redis and takeToken agree to the last bit, state included');
});

t.test('a token returns after window/capacity, not before (real waiting)', async (t) => {
  const store = new RedisBucketStore(connection(t), { prefix: uniquePrefix() });
  const policy = { capacity: 2, windowMs: 2_000 }; // one token per second
  // Each answer is exactly what takeToken computes from the state the script left and the clock it read:
  // the refill follows Redis's clock, however long the machine takes between the calls.
  const first = await store.takeWithState('k', policy);
  t.ok(first.allowed);
  const last = await store.takeWithState('k', policy);
  t.same(last, takeToken(first.state, policy, last.state.updatedAtMs), 'the second take');
  t.equal(last.remaining, 0, 'the bucket is empty');
  const emptiedAt = Date.now();

  await sleep(400);
  const early = await store.takeWithState('k', policy);
  t.same(early, takeToken(last.state, policy, early.state.updatedAtMs), `${early.state.updatedAtMs - last.state.updatedAtMs} ms later: ${early.allowed ? 'allowed' : 'refused'}, as takeToken says`);

  await sleep(Math.max(0, emptiedAt + 1_150 - Date.now()));
  const later = await store.takeWithState('k', policy);
  t.ok(later.allowed, 'after 1.15 s: a token is back');
  t.same(later, takeToken(early.state, policy, later.state.updatedAtMs), 'and the bucket holds what takeToken says');
});

t.test('two API nodes (two connections) share one bucket: exactly capacity takes pass', async (t) => {
  const prefix = uniquePrefix();
  const nodeA = new RedisBucketStore(connection(t), { prefix });
  const nodeB = new RedisBucketStore(connection(t), { prefix });
  const policy = { capacity: 5, windowMs: 3_600_000 };
  for (let round = 0; round < 5; round++) {
    const bucket = `shared-${round}`;
    const takes = [];
    for (let i = 0; i < 5; i++) takes.push(nodeA.take(bucket, policy), nodeB.take(bucket, policy));
    const results = await Promise.all(takes);
    t.equal(results.filter((r) => r.allowed).length, 5, `round ${round}: 5 of 10 allowed`);
    t.same(
      results
        .filter((r) => r.allowed)
        .map((r) => r.remaining)
        .sort(),
      [0, 1, 2, 3, 4],
      'each remaining count handed out once',
    );
  }
});

/** mulberry32: a tiny seeded PRNG, so a failing sequence can be replayed with BUCKET_SEED=<seed>. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), a | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4_294_967_296;
  };
}

t.test('property: for a random sequence of (delay, cost) Redis and LocalBucketStore agree exactly', async (t) => {
  // No tolerance is needed: times are injected. The Redis store reports the server-clock reading its script
  // used (state.updatedAtMs); the local store's clock is set to that same reading before each local take,
  // so both see identical elapsed times and, doing identical double arithmetic, must agree to the bit.
  const seed = Number(process.env.BUCKET_SEED ?? Math.floor(Math.random() * 2 ** 32));
  t.comment(`seed ${seed} (replay with BUCKET_SEED=${seed})`);
  const random = prng(seed);
  const store = new RedisBucketStore(connection(t), { prefix: uniquePrefix() });
  let clock = 0;
  const local = new LocalBucketStore(() => clock);
  t.teardown(() => local.close());

  const policies: BucketPolicy[] = [
    { capacity: 4, windowMs: 1_500 },
    { capacity: 3, windowMs: 700 },
    { capacity: 10, windowMs: 3_000 },
  ];
  const costs = [0, 0.5, 1, 1, 1, 1, 2, 3, 7];
  let mismatches = 0;
  for (const [index, policy] of policies.entries()) {
    const bucket = `b${index}`;
    let state: BucketState | undefined;
    let allowed = 0;
    let refused = 0;
    for (let step = 0; step < 25; step++) {
      const delay = random() < 0.3 ? 0 : Math.floor(random() * 250);
      const cost = costs[Math.floor(random() * costs.length)] ?? 1;
      if (delay > 0) await sleep(delay);
      const remote = await store.takeWithState(bucket, policy, cost);
      clock = remote.state.updatedAtMs;
      const mine = await local.take(bucket, policy, cost);
      const reference = takeToken(state, policy, clock, cost);
      state = reference.state;
      const { state: remoteState, ...remoteResult } = remote;
      if (!t.same(remoteResult, mine, `${bucket} step ${step}: delay ${delay} ms, cost ${cost}`)) mismatches++;
      if (!t.same(remoteState, reference.state, `${bucket} step ${step}: stored tokens identical`)) mismatches++;
      if (remote.allowed) allowed++;
      else refused++;
    }
    t.ok(allowed > 0 && refused > 0, `${bucket}: the sequence exercised both outcomes (${allowed} allowed, ${refused} refused)`);
  }
  t.equal(mismatches, 0, `no mismatches (seed ${seed})`);
});

t.test('keys expire once the bucket would be full again', async (t) => {
  const redis = connection(t);
  const prefix = uniquePrefix();
  const store = new RedisBucketStore(redis, { prefix });

  await store.take('hour', { capacity: 5, windowMs: 3_600_000 });
  const pttl = await redis.pttl(`${prefix}hour`);
  t.ok(pttl > 0, `PTTL ${pttl} > 0`);
  t.ok(pttl <= 720_000 + EXPIRY_MARGIN_MS, 'no longer than the time one token takes to return, plus the margin');

  t.ok((await store.take('hour', { capacity: 5, windowMs: 3_600_000 }, 4)).allowed);
  const emptied = await redis.pttl(`${prefix}hour`);
  t.ok(emptied > 3_590_000 && emptied <= 3_600_000 + EXPIRY_MARGIN_MS, `an empty bucket lives about one window (${emptied})`);

  const quick = { capacity: 2, windowMs: 200 };
  await store.take('quick', quick, 2);
  const deadline = Date.now() + 5_000;
  while ((await redis.exists(`${prefix}quick`)) === 1 && Date.now() < deadline) await sleep(50);
  t.equal(await redis.exists(`${prefix}quick`), 0, 'an idle key vanishes by itself');
  t.same(await store.take('quick', quick), { allowed: true, remaining: 1, retryAfterSeconds: 0 }, 'and comes back full');
});

t.test('the script is defined once per connection and survives SCRIPT FLUSH (EVALSHA falls back to EVAL)', async (t) => {
  const redis = connection(t);
  const admin = connection(t);
  const prefix = uniquePrefix();
  let defines = 0;
  const define = redis.defineCommand.bind(redis);
  redis.defineCommand = (...args: Parameters<Redis['defineCommand']>) => {
    defines++;
    define(...args);
  };
  const store = new RedisBucketStore(redis, { prefix });
  const second = new RedisBucketStore(redis, { prefix });
  t.equal(defines, 1, 'two stores on one connection define the command once');
  t.equal(typeof (redis as unknown as Record<string, unknown>)[TAKE_TOKEN_COMMAND], 'function');

  const policy = { capacity: 5, windowMs: 3_600_000 };
  t.equal((await store.take('k', policy)).remaining, 4);
  t.equal((await second.take('k', policy)).remaining, 3);

  await admin.config('RESETSTAT');
  await admin.script('FLUSH');
  t.same(await admin.script('EXISTS', '0'), [0]);
  t.equal((await store.take('k', policy)).remaining, 2, 'works after SCRIPT FLUSH, bucket intact');
  t.equal((await store.take('k', policy)).remaining, 1);

  const stats = commandStats(await admin.info('commandstats'));
  t.equal(stats.evalsha?.failed_calls, 1, 'one EVALSHA failed with NOSCRIPT');
  t.equal(stats.eval?.calls, 1, 'ioredis resent it once as EVAL');
  t.equal(stats.evalsha?.calls, 2, 'then went back to EVALSHA');
});

function commandStats(info: string): Record<string, Record<string, number>> {
  const stats: Record<string, Record<string, number>> = {};
  for (const line of info.split(/\r?\n/)) {
    const match = /^cmdstat_([^:]+):(.*)$/.exec(line);
    if (!match?.[1] || match[2] === undefined) continue;
    stats[match[1]] = Object.fromEntries(match[2].split(',').map((pair) => [pair.split('=')[0] ?? '', Number(pair.split('=')[1])]));
  }
  return stats;
}

t.test('errors from Redis propagate; close() leaves the connection to its owner', async (t) => {
  // No offline queue and no retries: while the server is down a command fails at once instead of waiting.
  const redis = connection(t, { maxRetriesPerRequest: 0, enableOfflineQueue: false });
  await ready(redis);
  const prefix = uniquePrefix();
  const store = new RedisBucketStore(redis, { prefix });
  const policy = { capacity: 5, windowMs: 3_600_000 };

  await redis.set(`${prefix}string`, 'not a hash');
  await t.rejects(store.take('string', policy), /WRONGTYPE/, 'a script error rejects the take');
  await t.rejects(store.take('k', { capacity: 0, windowMs: 1_000 }), RangeError, 'a nonsensical policy is refused before Redis');

  await store.close();
  t.equal(await redis.ping(), 'PONG', 'close() does not close the caller’s connection');

  await server.stop();
  await t.rejects(store.take('k', policy), 'a take against a stopped server rejects');
  await server.start();
  await ready(redis);
  t.same(await store.take('k', policy), { allowed: true, remaining: 4, retryAfterSeconds: 0 }, 'and works again after a restart');
});
