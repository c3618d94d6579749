import { readdir } from 'node:fs/promises';
import t from 'tap';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Kysely, PostgresDialect, sql } from 'kysely';
import pg from 'pg';
import { openDatabase, type Database } from '../../src/db/database.ts';
import { DatabaseUnavailableError } from '../../src/db/unavailable.ts';
import { MIGRATIONS_DIR, migrateToLatest } from '../../src/db/migrate.ts';
import type { Schema } from '../../src/db/schema.ts';
import { ValidationError } from '../../src/errors.ts';
import type { JobOutcome, NewJob } from '../../src/jobs/job.ts';
import { JobStore } from '../../src/jobs/store.ts';
import { startPostgres, type PrivatePostgres } from '../../support/postgres.ts';

const newJob = (over: Partial<NewJob> = {}): NewJob => ({
  id: randomUUID(),
  owner: null,
  language: 'python',
  version: '3.12',
  files: [{ name: 'main.py', content: 'print("hi")' }],
  stdin: '',
  args: [],
  ...over,
});

const outcome = (over: Partial<JobOutcome> = {}): JobOutcome => ({
  status: 'completed',
  reason: null,
  stdout: Buffer.from('out\n'),
  stderr: Buffer.alloc(0),
  exitCode: 0,
  signal: null,
  error: null,
  truncated: false,
  executionDurationMs: 42,
  details: { run: { wall_ms: 40, cpu_ms: 12 } },
  ...over,
});

const owner = () => `owner-${randomUUID().slice(0, 8)}`;

for (const kind of ['pglite', 'postgres'] as const) {
  t.test(kind, async (t) => {
    let server: PrivatePostgres | undefined;
    let url: string | null = null;
    const dataDir = mkdtempSync(path.join(tmpdir(), 'braindrill-store-'));
    t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
    if (kind === 'postgres') {
      server = await startPostgres();
      t.teardown(() => server?.destroy());
      url = await server.createDatabase();
    }
    const open = () => openDatabase({ databaseUrl: url, dataDir });
    let database: Database = await open();
    t.teardown(() => database.close());
    t.equal(database.kind, kind);
    let store = new JobStore(database.db);
    const raw = (query: ReturnType<typeof sql>) => query.execute(database.db);

    t.test('insert/get round trip', async (t) => {
      const job = newJob({
        owner: 'alice',
        files: [{ name: 'main.py', content: 'print("héllo wörld 🚀 — 日本語")' }, { content: 'anonymous file' }],
        stdin: 'ünïcödé input 🎉\nsecond line\n',
        args: ['--flag', 'välue', '😀'],
      });
      const inserted = await store.insert(job);
      t.match(inserted, { ...job, status: 'queued', stdout: null, stderr: null, attempts: 0, startedAt: null, completedAt: null, nodeId: null, truncated: false });
      t.ok(inserted.createdAt instanceof Date && inserted.updatedAt instanceof Date);
      const got = await store.get(job.id);
      t.same(got, inserted, 'get returns what insert returned');
      t.same(got?.files, job.files);
      t.same(got?.args, job.args);
      t.equal(got?.stdin, job.stdin);
      t.equal(await store.get(randomUUID()), undefined, 'unknown id');
      t.equal(await store.get('not-a-uuid'), undefined, 'malformed id is simply not found');
      await t.rejects(store.insert(newJob({ stdin: 'a\0b' })), ValidationError, 'NUL in text is refused (400), not a database error');
    });

    t.test('insertBatch returns each job as get reads it back', async (t) => {
      const jobs = [newJob({ owner: 'batch' }), newJob({ owner: null, files: [{ content: 'x' }], stdin: 'in', args: ['a'] })];
      const inserted = await store.insertBatch(jobs);
      t.equal(inserted.length, 2);
      for (const [index, job] of jobs.entries()) t.same(inserted[index], await store.get(job.id), `job ${index}`);
      t.same(await store.insertBatch([]), []);
    });

    t.test('activeCountsFor: queued in all, queued or running per owner', async (t) => {
      const [a, b] = [owner(), owner()];
      const before = await store.activeCountsFor([a, b]);
      t.same([...before.byOwner], [], 'owners without active jobs are absent');
      const [a1, a2, a3] = await store.insertBatch([newJob({ owner: a }), newJob({ owner: a }), newJob({ owner: a })]);
      await store.insert(newJob({ owner: b }));
      await store.markRunning(a1!.id, 'n', 'w');
      await store.complete(a2!.id, outcome());
      const after = await store.activeCountsFor([a, b, owner()]);
      t.same(Object.fromEntries(after.byOwner), { [a]: 2, [b]: 1 }, 'a: one queued and one running; the finished one is not counted');
      t.equal(after.queued - before.queued, 2, 'a3 and b are queued');
      t.ok(a3);
      t.equal((await store.activeCountsFor([])).queued, after.queued, 'no owners: only the total');
    });

    t.test('stdout/stderr bytes round-trip exactly', async (t) => {
      const job = await store.insert(newJob());
      const stdout = Buffer.from([0x00, 0xff, 0xfe, 0x41, 0x00, 0xc3, 0x28, 0x80, 0x0a, 0xed, 0xa0, 0x80, 0x00]);
      const stderr = Buffer.concat([Buffer.from('err\0'), Buffer.from([0xf0, 0x28, 0x8c, 0xbc]), Buffer.alloc(70_000, 0x99)]);
      t.ok(await store.complete(job.id, outcome({ stdout, stderr, status: 'failed', reason: 'runtime_error', exitCode: 1, signal: 'SIGSEGV', error: 'boom', truncated: true })));
      const got = await store.get(job.id);
      t.ok(Buffer.isBuffer(got?.stdout) && Buffer.isBuffer(got?.stderr));
      t.ok(got?.stdout?.equals(stdout), 'stdout byte-exact');
      t.ok(got?.stderr?.equals(stderr), 'stderr byte-exact');
      t.match(got, { status: 'failed', reason: 'runtime_error', exitCode: 1, signal: 'SIGSEGV', error: 'boom', truncated: true, executionDurationMs: 42 });
      t.same(got?.details, { run: { wall_ms: 40, cpu_ms: 12 } });
      t.ok(got?.startedAt instanceof Date && got.completedAt instanceof Date);
      t.equal(got?.startedAt?.getTime(), got?.completedAt?.getTime(), 'never started: started_at = completed_at');
    });

    t.test('ownership', async (t) => {
      const alice = owner();
      const mallory = owner();
      const job = await store.insert(newJob({ owner: alice }));
      t.equal((await store.get(job.id, alice))?.id, job.id, 'visible to its owner');
      t.equal(await store.get(job.id, mallory), undefined, 'invisible to another owner');
      t.equal((await store.get(job.id))?.id, job.id, 'no owner filter');
      t.equal((await store.get(job.id, null))?.id, job.id, 'null owner: no filter');
      t.same(await store.list({ owner: mallory, limit: 10, offset: 0 }), { jobs: [], total: 0 });
      t.equal((await store.list({ owner: alice, limit: 10, offset: 0 })).total, 1);
      t.same(await store.cancel(job.id, mallory), { found: false, previous: null, cancelled: false }, 'cancel by another owner: not found');
      t.equal((await store.get(job.id))?.status, 'queued', 'and nothing changed');
      t.same(await store.cancel(job.id, alice), { found: true, previous: 'queued', cancelled: true });
    });

    t.test('list: order, totals, limit/offset', async (t) => {
      const who = owner();
      const jobs = Array.from({ length: 25 }, () => newJob({ owner: who }));
      await store.insertMany(jobs);
      // Spread creation times (and give two jobs the same time: id breaks the tie).
      const base = new Date();
      for (const [i, job] of jobs.entries()) {
        await raw(sql`update jobs set created_at = ${base}::timestamptz - make_interval(secs => ${i === 1 ? 0 : i}) where id = ${job.id}`);
      }
      const expected = jobs
        .map((job, i) => ({ id: job.id, age: i === 1 ? 0 : i }))
        .sort((a, b) => a.age - b.age || (a.id < b.id ? 1 : -1))
        .map((j) => j.id);
      const all = await store.list({ owner: who, limit: 100, offset: 0 });
      t.equal(all.total, 25);
      t.same(all.jobs.map((j) => j.id), expected, 'newest first, id desc on ties');
      t.match(all.jobs[0], { language: 'python', status: 'queued', reason: null, startedAt: null, completedAt: null, executionDurationMs: null });
      t.ok(all.jobs[0]?.createdAt instanceof Date);
      const page = await store.list({ owner: who, limit: 10, offset: 20 });
      t.equal(page.total, 25, 'total ignores limit/offset');
      t.same(page.jobs.map((j) => j.id), expected.slice(20));
      t.same((await store.list({ owner: who, limit: 5, offset: 5 })).jobs.map((j) => j.id), expected.slice(5, 10));
      t.same((await store.list({ owner: who, limit: 5, offset: 100 })).jobs, []);
      const everyone = await store.list({ limit: 3, offset: 0 });
      const count = await sql<{ n: string | number }>`select count(*) as n from jobs`.execute(database.db);
      t.equal(everyone.total, Number(count.rows[0]?.n), 'no owner: every job counts');
      t.equal(everyone.jobs.length, 3);
    });

    t.test('markRunning only from queued', async (t) => {
      const job = await store.insert(newJob());
      t.equal(await store.markRunning(job.id, 'node-a', 'worker-1'), true);
      const running = await store.get(job.id);
      t.match(running, { status: 'running', nodeId: 'node-a', workerId: 'worker-1', attempts: 1 });
      t.ok(running?.startedAt instanceof Date);
      t.equal(await store.markRunning(job.id, 'node-b', 'worker-2'), false, 'running → running refused');
      t.match(await store.get(job.id), { nodeId: 'node-a', attempts: 1 });
      await store.complete(job.id, outcome());
      t.equal(await store.markRunning(job.id, 'node-b', 'worker-2'), false, 'finished → running refused');
      t.equal(await store.markRunning(randomUUID(), 'n', 'w'), false, 'unknown job');
    });

    t.test('complete is applied once', async (t) => {
      const job = await store.insert(newJob());
      await store.markRunning(job.id, 'node-a', 'w');
      const startedAt = (await store.get(job.id))?.startedAt;
      const applied = await store.complete(job.id, outcome({ stdout: Buffer.from('first') }));
      const first = await store.get(job.id);
      t.same(applied, first, 'the finished job comes back as stored');
      t.match(first, { status: 'completed', exitCode: 0, executionDurationMs: 42 });
      t.same(first?.startedAt, startedAt, 'started_at kept');
      t.ok(first?.completedAt instanceof Date);
      t.equal(await store.complete(job.id, outcome({ status: 'failed', reason: 'internal', stdout: Buffer.from('second'), exitCode: 9 })), null);
      t.same(await store.get(job.id), first, 'fields unchanged by the second result');
      t.equal(await store.complete(randomUUID(), outcome()), null, 'unknown job');
    });

    t.test('cancel', async (t) => {
      const queued = await store.insert(newJob());
      t.same(await store.cancel(queued.id), { found: true, previous: 'queued', cancelled: true });
      t.match(await store.get(queued.id), { status: 'failed', reason: 'cancelled', error: 'cancelled by request' });
      t.ok((await store.get(queued.id))?.completedAt instanceof Date);

      const running = await store.insert(newJob());
      await store.markRunning(running.id, 'n', 'w');
      t.same(await store.cancel(running.id, null), { found: true, previous: 'running', cancelled: true });
      t.match(await store.get(running.id), { status: 'failed', reason: 'cancelled' });
      t.equal(await store.complete(running.id, outcome()), null, 'a result arriving after the cancel is dropped');

      const finished = await store.insert(newJob());
      await store.complete(finished.id, outcome());
      const before = await store.get(finished.id);
      t.same(await store.cancel(finished.id), { found: true, previous: 'completed', cancelled: false });
      t.same(await store.get(finished.id), before, 'finished job untouched');
      t.same(await store.cancel(randomUUID()), { found: false, previous: null, cancelled: false });
    });

    t.test('requeueRunning with the attempts bound', async (t) => {
      const node = `node-${randomUUID().slice(0, 6)}`;
      const other = `node-${randomUUID().slice(0, 6)}`;
      const [fresh, tired, elsewhere, queued] = await Promise.all([1, 2, 3, 4].map(() => store.insert(newJob())));
      for (const job of [fresh, tired]) await store.markRunning(job!.id, node, 'w1');
      await store.markRunning(elsewhere!.id, other, 'w2');
      await raw(sql`update jobs set attempts = 3 where id = ${tired!.id}`);

      const result = await store.requeueRunning(node, 3);
      t.same(result, { requeued: [fresh!.id], failed: [tired!.id] });
      t.match(await store.get(fresh!.id), { status: 'queued', nodeId: null, workerId: null, startedAt: null, attempts: 1 });
      const failed = await store.get(tired!.id);
      t.match(failed, { status: 'failed', reason: 'internal', error: 'the node running this job stopped 3 times' });
      t.ok(failed?.completedAt instanceof Date, 'failed jobs get completed_at (the TTL sweep needs it)');
      t.match(await store.get(elsewhere!.id), { status: 'running', nodeId: other }, 'another node untouched');
      t.match(await store.get(queued!.id), { status: 'queued' });

      t.equal(await store.markRunning(fresh!.id, node, 'w1'), true, 'a requeued job can run again');
      t.equal((await store.get(fresh!.id))?.attempts, 2);
      const all = await store.requeueRunning(null, 3);
      t.ok(all.requeued.includes(elsewhere!.id) && all.requeued.includes(fresh!.id), 'null filter: every running job');
      t.equal((await store.requeueRunning(null, 3)).requeued.length, 0, 'nothing left running');
    });

    t.test('queuedIds: oldest first, olderThanMs', async (t) => {
      await raw(sql`delete from jobs where status = 'queued'`);
      const jobs = await Promise.all([0, 1, 2].map(() => store.insert(newJob())));
      await raw(sql`update jobs set created_at = now() - interval '10 minutes' where id = ${jobs[2]!.id}`);
      await raw(sql`update jobs set created_at = now() - interval '5 minutes' where id = ${jobs[0]!.id}`);
      t.same(await store.queuedIds({ limit: 10 }), [jobs[2]!.id, jobs[0]!.id, jobs[1]!.id]);
      t.same(await store.queuedIds({ limit: 1 }), [jobs[2]!.id]);
      t.same(await store.queuedIds({ limit: 10, olderThanMs: 60_000 }), [jobs[2]!.id, jobs[0]!.id]);
      t.same(await store.queuedIds({ limit: 10, olderThanMs: 7 * 60_000 }), [jobs[2]!.id]);
    });

    t.test('metrics counts', async (t) => {
      const language = `lang-${randomUUID().slice(0, 6)}`;
      const before = await store.countByStatus();
      t.same(Object.keys(before).sort(), ['completed', 'failed', 'queued', 'running', 'timedout']);
      const jobs = await Promise.all([0, 1, 2].map(() => store.insert(newJob({ language }))));
      await store.markRunning(jobs[0]!.id, 'n', 'w');
      await store.complete(jobs[1]!.id, outcome({ status: 'timedout', reason: 'time_limit' }));
      const after = await store.countByStatus();
      t.equal(after.queued - before.queued, 1);
      t.equal(after.running - before.running, 1);
      t.equal(after.timedout - before.timedout, 1);
      t.equal((await store.queuedByLanguage())[language], 1);
    });

    t.test('sweepExpired removes only expired finished jobs; concurrent sweeps split the work', async (t) => {
      await raw(sql`delete from jobs`);
      const expired = Array.from({ length: 1500 }, () => newJob());
      const recent = Array.from({ length: 20 }, () => newJob());
      const unfinished = Array.from({ length: 20 }, () => newJob());
      await store.insertMany([...expired, ...recent, ...unfinished]);
      const finishedIds = [...expired, ...recent].map((j) => j.id);
      await raw(sql`update jobs set status = 'completed', completed_at = now(), stdout = '', stderr = '' where id = any(${finishedIds}::uuid[])`);
      await raw(sql`update jobs set completed_at = now() - interval '2 hours' where id = any(${expired.map((j) => j.id)}::uuid[])`);
      // An unfinished job with an old completed_at (impossible in practice) must still never be swept.
      await raw(sql`update jobs set completed_at = now() - interval '2 hours' where id = ${unfinished[0]!.id}`);

      let second: Database | undefined;
      if (kind === 'postgres') second = await open(); // another "node": its own pool
      t.teardown(() => second?.close());
      const other = second ? new JobStore(second.db) : store;
      const counts = await Promise.all([store.sweepExpired(3600, 50), other.sweepExpired(3600, 50), store.sweepExpired(3600, 70)]);
      t.equal(counts.reduce((a, b) => a + b, 0), expired.length, `each expired row deleted once (${counts.join(' + ')})`);
      const left = await sql<{ id: string }>`select id from jobs`.execute(database.db);
      t.same(new Set(left.rows.map((r) => r.id)), new Set([...recent, ...unfinished].map((j) => j.id)));
      t.equal(await store.sweepExpired(3600), 0, 'nothing left to sweep');
      t.equal(await store.sweepExpired(0), recent.length, 'ttl 0 removes every finished job');
    });

    t.test('migrations run twice without error', async (t) => {
      t.same(await migrateToLatest(database.db), [], 'nothing to do');
      t.same(await migrateToLatest(database.db), []);
    });

    if (kind === 'postgres') {
      t.test('concurrent migrations on fresh databases', async (t) => {
        for (let round = 0; round < 3; round++) {
          const fresh = await server!.createDatabase();
          const dbs = Array.from({ length: 4 }, () => new Kysely<Schema>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: fresh, max: 2 }) }) }));
          try {
            const results = await Promise.all(dbs.map((db) => migrateToLatest(db)));
            const names = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.ts')).map((f) => f.replace(/\.ts$/, '')).sort();
            t.equal(results.flat().filter((r) => r.status === 'Success').length, names.length, `round ${round}: each migration ran exactly once`);
            const applied = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(dbs[0]!);
            t.same(applied.rows.map((r) => r.name), names);
          } finally {
            await Promise.all(dbs.map((db) => db.destroy()));
          }
        }
        // The real start-up path: two nodes opening one fresh database at once.
        const fresh = await server!.createDatabase();
        const both = await Promise.all([openDatabase({ databaseUrl: fresh, dataDir }), openDatabase({ databaseUrl: fresh, dataDir })]);
        try {
          const names = (await readdir(MIGRATIONS_DIR)).filter((f) => f.endsWith('.ts')).map((f) => f.replace(/\.ts$/, '')).sort();
          const applied = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(both[0]!.db);
          t.same(applied.rows.map((r) => r.name), names, 'two openDatabase() at once on a fresh database: each migration applied once');
          // Both nodes can use the schema at once.
          const stores = both.map((d) => new JobStore(d.db));
          const [first, second] = await Promise.all(stores.map((s) => s.insert(newJob({ owner: 'both' }))));
          t.same((await stores[1]!.list({ owner: 'both', limit: 10, offset: 0 })).jobs.map((j) => j.id).sort(), [first!.id, second!.id].sort());
        } finally {
          await Promise.all(both.map((d) => d.close()));
        }
      });

      t.test('a failing migration throws an error that names it', async (t) => {
        const folder = mkdtempSync(path.join(tmpdir(), 'braindrill-migrations-'));
        t.teardown(() => rmSync(folder, { recursive: true, force: true }));
        writeFileSync(
          path.join(folder, '0001_broken.mjs'),
          "export async function up(db) { await db.schema.createTable('broken').addColumn('id', 'integer', (c) => c.references('nowhere.id')).execute(); }\n",
        );
        const db = new Kysely<Schema>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: await server!.createDatabase(), max: 1 }) }) });
        t.teardown(() => db.destroy());
        await t.rejects(migrateToLatest(db, folder), /Database migration failed in migration 0001_broken \(up\): relation "nowhere" does not exist/);
        await t.rejects(
          openDatabase({ databaseUrl: `postgresql://postgres@127.0.0.1:1/nothing`, dataDir }),
          /Cannot reach PostgreSQL at postgresql:\/\/postgres@127\.0\.0\.1:1\/nothing/,
          'an unreachable server at start-up says so',
        );
      });

      t.test('database down → DatabaseUnavailableError quickly; back → the same pool recovers', async (t) => {
        const job = await store.insert(newJob());
        await server!.stop();
        const attempts: [string, () => Promise<unknown>][] = [
          ['get', () => store.get(job.id)],
          ['insert', () => store.insert(newJob())],
          ['list', () => store.list({ limit: 5, offset: 0 })],
          ['complete', () => store.complete(job.id, outcome())],
          ['cancel', () => store.cancel(job.id)],
          ['requeueRunning', () => store.requeueRunning(null, 3)],
          ['sweepExpired', () => store.sweepExpired(60)],
          ['ping', () => database.ping()],
        ];
        for (const [name, attempt] of attempts) {
          const started = Date.now();
          const error = await attempt().then(
            () => null,
            (e: unknown) => e,
          );
          const elapsed = Date.now() - started;
          t.ok(error instanceof DatabaseUnavailableError, `${name}: DatabaseUnavailableError (${String(error)})`);
          t.match(error, { code: 'database_unavailable', statusCode: 503 });
          t.ok(elapsed < 30_000, `${name}: failed in ${elapsed} ms, without hanging`);
        }
        await server!.start();
        let got;
        for (let i = 0; i < 50 && got === undefined; i++) {
          got = await store.get(job.id).catch(() => undefined);
          if (got === undefined) await new Promise((r) => setTimeout(r, 100));
        }
        t.equal(got?.id, job.id, 'reads work again');
        await database.ping();
        t.equal((await store.insert(newJob())).status, 'queued', 'writes work again');
      });
    }

    t.test('restart keeps data', async (t) => {
      const job = await store.insert(newJob({ owner: 'persist', stdin: 'kept 🙂' }));
      await store.complete(job.id, outcome({ stdout: Buffer.from([0, 1, 2, 255]) }));
      await database.close();
      database = await open();
      store = new JobStore(database.db);
      const got = await store.get(job.id);
      t.match(got, { status: 'completed', owner: 'persist', stdin: 'kept 🙂' });
      t.ok(got?.stdout?.equals(Buffer.from([0, 1, 2, 255])));
      if (kind === 'pglite') {
        await t.rejects(openDatabase({ databaseUrl: null, dataDir }), /already open/, 'one PGlite per data dir');
      }
    });

    if (kind === 'postgres') {
      t.test('100,000 rows: pages and totals stay exact (bench:jobs measures their speed)', async (t) => {
        await raw(sql`delete from jobs`);
        const owners = Array.from({ length: 20 }, (_, i) => `bulk-owner-${i}`);
        for (let batch = 0; batch < 10; batch++) {
          await store.insertMany(Array.from({ length: 10_000 }, (_, i) => newJob({ owner: owners[i % owners.length]! })));
        }
        await raw(sql`vacuum analyze jobs`);
        const mine = await store.list({ owner: 'bulk-owner-3', limit: 20, offset: 0 });
        t.equal(mine.total, 5000, 'an owner\'s total, from the counters');
        t.equal(mine.jobs.length, 20);
        t.equal((await store.list({ limit: 20, offset: 0 })).total, 100_000, 'every job');
        t.same(await store.list({ owner: 'nobody', limit: 20, offset: 0 }), { jobs: [], total: 0 });
        const deep = await store.list({ owner: 'bulk-owner-3', limit: 20, offset: 4990 });
        t.equal(deep.jobs.length, 10, 'the last page of the owner\'s 5,000');
        const ordered = deep.jobs.map((j) => j.createdAt.getTime());
        t.same(ordered, [...ordered].sort((a, b) => b - a), 'newest first');
      });
    }
  });
}
