import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { startEngineProcess } from '../../support/engine-process.ts';
import { API_KEY, containersOf, startEngine } from '../helpers/engine.ts';
import { startNode } from '../../src/node/start-node.ts';
import { loadSettings } from '../../src/settings.ts';
import { needs } from '../helpers/tier.ts';

t.test('a missing runtime image is a start-up error that names the build command (never a pull)', { skip: needs('docker') }, async (t) => {
  const settings = loadSettings({ ...process.env, RUNTIME_IMAGE: 'braindrill-runtime:does-not-exist', PORT: '0', LOG_LEVEL: 'silent' });
  await t.rejects(startNode(settings), /braindrill-runtime:does-not-exist is not present.*never pulls.*images\/build\.sh/s);
});

t.test('the build (npm run build, what deploy.sh runs) starts and serves, from any working directory', { skip: needs('docker') }, async (t) => {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'braindrill-built-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const child = await startEngineProcess({ DATA_DIR: dataDir, WARM_POOL: '0' }, 'build');
  t.teardown(() => child.kill('SIGKILL'));
  const response = await fetch(`${child.url}/lang/python`, { method: 'POST', headers: { 'x-api-key': API_KEY, 'content-type': 'text/plain' }, body: 'print("built")' });
  t.equal(await response.text(), 'built\n', child.output());
  const languages = (await (await fetch(`${child.url}/languages`)).json()) as { languages: unknown[] };
  t.equal(languages.languages.length, 12, 'config/languages.json is found from dist/');
  await child.kill('SIGTERM');
});

t.test('a node SIGKILLed mid-execution leaves a container that its restart reaps', { skip: needs('docker') }, async (t) => {
  const nodeId = `test-kill-${randomBytes(3).toString('hex')}`;
  const dataDir = mkdtempSync(path.join(tmpdir(), 'braindrill-kill-'));
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }));
  const child = await startEngineProcess({ NODE_ID: nodeId, DATA_DIR: dataDir });
  t.teardown(() => child.kill('SIGKILL'));
  const pending = fetch(`${child.url}/lang/bash`, { method: 'POST', headers: { 'x-api-key': API_KEY, 'content-type': 'text/plain' }, body: 'sleep 30' }).catch(() => null);
  for (let i = 0; i < 100 && (await containersOf(nodeId)).length === 0; i++) await new Promise((r) => setTimeout(r, 100));
  const job = await containersOf(nodeId);
  t.equal(job.length, 1, `the execution has its container\n${child.output()}`);
  const everything = (await containersOf(nodeId, { includeWarm: true })).map((c) => c.Id);
  await child.kill('SIGKILL');
  await pending;
  t.ok((await containersOf(nodeId)).some((c) => c.Id === job[0]!.Id), 'a killed node cannot clean up');
  const restarted = await startEngine({ NODE_ID: nodeId, DATA_DIR: dataDir });
  const left = (await containersOf(nodeId, { includeWarm: true })).map((c) => c.Id).filter((id) => everything.includes(id));
  t.same(left, [], 'the restarted node removed every container of the killed run at start-up');
  await restarted.close();
});

t.test('the reaper never touches another node\'s containers', { skip: needs('docker') }, async (t) => {
  const a = await startEngine();
  const b = await startEngine();
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const running = a.request('/lang/bash', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'sleep 1; echo survived' });
  for (let i = 0; i < 50 && (await containersOf(a.nodeId)).length === 0; i++) await new Promise((r) => setTimeout(r, 50));
  await b.node.sandbox!.reap();
  t.equal(await (await running).text(), 'survived\n');
});
