import { randomBytes } from 'node:crypto';
import path from 'node:path';
import Docker from 'dockerode';
import { Writable } from 'node:stream';
import t from 'tap';
import { createLogger } from '../../src/observability/logger.ts';
import { Label } from '../../src/sandbox/docker-options.ts';
import { runtimeImageTag } from '../../src/sandbox/image.ts';
import { AutoRemovals } from '../../src/sandbox/removals.ts';
import { ROOT_DIR } from '../../src/settings.ts';

// A finished sandbox removes itself (AutoRemove); AutoRemovals says when it is gone, and forces the
// removal of one that is not gone in time.
const docker = new Docker({ socketPath: process.env.DOCKER_SOCKET ?? '/var/run/docker.sock' });
const image = runtimeImageTag(path.join(ROOT_DIR, 'images', 'runtime'));
const nodeId = `test-removals-${randomBytes(3).toString('hex')}`;
/** What the removals logged: a forced removal says so (the path a container took, without timing it). */
const logs: string[] = [];
const capture = new Writable({
  write(chunk, _encoding, done) {
    logs.push(String(chunk));
    done();
  },
});
const forced = () => logs.filter((line) => line.includes('did not remove itself')).length;
const log = createLogger('warn', nodeId, capture);
// A grace period long enough that only the destroy event can explain a prompt answer.
const removals = new AutoRemovals(docker, nodeId, log, 60_000);
await removals.start();
t.teardown(() => removals.close());
// One that gives up quickly, for the forced path.
const impatient = new AutoRemovals(docker, nodeId, log, 1500);
await impatient.start();
t.teardown(() => impatient.close());

async function started(command: string): Promise<Docker.Container> {
  const container = await docker.createContainer({
    Image: image,
    Entrypoint: ['bash', '-c', command],
    User: '65534:65534',
    NetworkDisabled: true,
    Labels: { [Label.node]: nodeId, [Label.execution]: `test-${randomBytes(3).toString('hex')}` },
    HostConfig: { NetworkMode: 'none', AutoRemove: true, LogConfig: { Type: 'none', Config: {} } },
  });
  await container.start();
  return container;
}

const exists = (container: Docker.Container) => container.inspect().then(() => true, () => false);

t.test('a container that exits is reported gone once dockerd has removed it', async (t) => {
  const container = await started('exit 0');
  const before = forced();
  await removals.expect(container);
  t.equal(forced(), before, 'by its destroy event, not by force after the grace period');
  t.equal(await exists(container), false);
});

t.test('one already destroyed when the removal is registered resolves at once', async (t) => {
  const container = await started('exit 0');
  await container.wait({ condition: 'removed' }).catch(() => undefined);
  await new Promise((r) => setTimeout(r, 200));
  const before = forced();
  await removals.expect(container);
  t.equal(forced(), before, 'the destroy event seen before was remembered');
});

t.test('one that keeps running is removed by force after the grace period', async (t) => {
  const container = await started('sleep 60');
  const before = forced();
  const began = Date.now();
  await impatient.expect(container);
  t.ok(Date.now() - began >= 1400, 'it waited for the grace period');
  t.equal(forced(), before + 1, 'and said it removed the container by force');
  t.equal(await exists(container), false, 'then removed it');
});

t.test('close() forces what is still pending', async (t) => {
  const other = new AutoRemovals(docker, nodeId, createLogger('silent', nodeId), 60_000);
  await other.start();
  const container = await started('sleep 60');
  const gone = other.expect(container);
  await other.close();
  await gone;
  t.equal(await exists(container), false);
});
