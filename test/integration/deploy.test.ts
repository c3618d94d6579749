import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';
import { ROOT_DIR } from '../../src/settings.ts';
import { freePort } from '../../support/free-port.ts';
import { needs } from '../helpers/tier.ts';

// `./deploy.sh` as a new user runs it, in a run directory and on ports of its own: API nodes as an
// unprivileged user without Docker, Redis with a password, logs and state for root only; and its upgrade
// rules for a Redis without a password.
const run = promisify(execFile);

t.test('./deploy.sh up: least privilege, an authenticated Redis, private logs and state', { skip: needs('docker', 'redis', 'postgres') }, async (t) => {
  const runDir = mkdtempSync(path.join(tmpdir(), 'braindrill-deploy-run-'));
  const installDir = mkdtempSync(path.join(tmpdir(), 'braindrill-deploy-opt-'));
  chmodSync(installDir, 0o755);
  const [port, redisPort, foreignPort] = [await freePort(), await freePort(), await freePort()];
  const env = {
    ...process.env,
    BRAINDRILL_RUN_DIR: runDir,
    BRAINDRILL_INSTALL_DIR: installDir,
    PORT: String(port),
    MANAGER_PORT_BASE: String(port + 10_000 > 65_000 ? port - 10_000 : port + 10_000),
    REDIS_PORT: String(redisPort),
    MANAGERS: '1',
    READY_TIMEOUT: '180',
    WARM_POOL: '0',
  };
  // Without the test runner's NODE_OPTIONS (tap's hooks, which it adds to every child's environment):
  // they load from this checkout, which the service user cannot read (deploy.sh runs `npm ci` under
  // umask 077), and the nodes have no use for them.
  const deploy = (...args: string[]) => run('env', ['-u', 'NODE_OPTIONS', path.join(ROOT_DIR, 'deploy.sh'), ...args], { env, cwd: ROOT_DIR, timeout: 600_000, maxBuffer: 16 * 1024 * 1024 });
  t.teardown(async () => {
    await deploy('down').catch(() => undefined);
    rmSync(runDir, { recursive: true, force: true });
    rmSync(installDir, { recursive: true, force: true });
  });
  await deploy('up');
  const password = readFileSync(path.join(runDir, 'redis.password'), 'utf8').trim();
  const pidOf = (name: string) => Number(readFileSync(path.join(runDir, `${name}.pid`), 'utf8'));
  const uidOf = (pid: number) => Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);

  t.test('the API node runs as the unprivileged service user and cannot reach Docker; the manager can', async (t) => {
    const serviceUid = Number((await run('id', ['-u', 'braindrill'])).stdout.trim());
    t.not(serviceUid, 0);
    t.equal(uidOf(pidOf('api-1')), serviceUid, 'api-1 runs as braindrill');
    t.equal(uidOf(pidOf('manager-1')), 0, 'the manager runs as root (it needs the Docker socket)');
    const asService = ['--reuid=braindrill', '--regid=braindrill', '--clear-groups', '--'];
    const docker = await run('setpriv', [...asService, 'curl', '-sS', '--unix-socket', '/var/run/docker.sock', 'http://docker/_ping']).then(() => 'reached', (e: { stderr: string }) => e.stderr);
    t.match(docker, /Permission denied|Couldn't connect/, 'the service user cannot use the Docker socket');
    const build = readFileSync(`/proc/${pidOf('api-1')}/cmdline`, 'utf8').split('\0')[1] ?? '';
    t.ok(build.startsWith(installDir), `it runs the installed build (${build}), readable by it`);
  });

  t.test('Redis answers only with the password; the engine connects with it', async (t) => {
    const open = await run('redis-cli', ['-p', String(redisPort), 'ping']);
    t.match(open.stdout, /NOAUTH/, 'no PONG without the password');
    const authed = await run('redis-cli', ['-p', String(redisPort), '-a', password, '--no-auth-warning', 'ping']);
    t.equal(authed.stdout.trim(), 'PONG');
    const response = await fetch(`http://127.0.0.1:${port}/lang/python`, { method: 'POST', headers: { 'x-api-key': 'dev-key-12345', 'content-type': 'text/plain' }, body: 'print("drill my brain")' });
    t.equal(await response.text(), 'drill my brain\n', 'a job went through the cluster');
  });

  t.test('logs and state are readable by root only', async (t) => {
    t.equal(statSync(runDir).mode & 0o777, 0o700, 'the run directory is 0700');
    for (const file of ['api-1.log', 'manager-1.log', 'redis.password', 'redis.conf', 'cluster.env']) {
      t.equal(statSync(path.join(runDir, file)).mode & 0o777, 0o600, `${file} is 0600`);
    }
    t.notMatch(readFileSync(path.join(runDir, 'api-1.log'), 'utf8'), password, 'the Redis password is not in the log');
  });

  t.test('upgrade: a Redis this script started without a password is restarted with one, its data kept', async (t) => {
    const auth = ['-p', String(redisPort), '-a', password, '--no-auth-warning'];
    await run('redis-cli', [...auth, 'set', 'braindrill-upgrade-marker', 'kept']);
    await run('redis-cli', [...auth, 'bgrewriteaof']);
    await new Promise((r) => setTimeout(r, 1000));
    await deploy('down');
    // As an older deploy.sh left it: Redis without a password, recorded in the run directory.
    const old = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--appendonly', 'yes', '--dir', path.join(runDir, 'redis')], { detached: true, stdio: 'ignore' });
    old.unref();
    await new Promise((r) => setTimeout(r, 1000));
    await run('bash', ['-c', `echo ${old.pid} > ${path.join(runDir, 'redis.pid')}`]);
    t.equal((await run('redis-cli', ['-p', String(redisPort), 'get', 'braindrill-upgrade-marker'])).stdout.trim(), 'kept', 'the old Redis answers anyone');
    const upgraded = await deploy('up');
    t.match(upgraded.stdout, /runs without a password: restarting it with one/);
    t.match((await run('redis-cli', ['-p', String(redisPort), 'ping'])).stdout, /NOAUTH/, 'now it needs the password');
    t.equal((await run('redis-cli', [...auth, 'get', 'braindrill-upgrade-marker'])).stdout.trim(), 'kept', 'and kept its data');
  });

  t.test('a Redis this script did not start that answers without a password stops it, naming REDIS_URL', async (t) => {
    const foreign = spawn('redis-server', ['--port', String(foreignPort), '--bind', '127.0.0.1', '--save', ''], { stdio: 'ignore' });
    t.teardown(() => foreign.kill('SIGKILL'));
    await new Promise((r) => setTimeout(r, 800));
    const otherRun = mkdtempSync(path.join(tmpdir(), 'braindrill-deploy-run-'));
    t.teardown(() => rmSync(otherRun, { recursive: true, force: true }));
    const refused = await run(path.join(ROOT_DIR, 'deploy.sh'), ['up'], { env: { ...env, BRAINDRILL_RUN_DIR: otherRun, REDIS_PORT: String(foreignPort), PORT: String(await freePort()) }, cwd: ROOT_DIR, timeout: 300_000 }).then(
      () => null,
      (error: { code: number; stderr: string }) => error,
    );
    t.not(refused, null, 'deploy.sh stopped');
    t.match(refused?.stderr, /without a password.*REDIS_URL/s);
  });
});
