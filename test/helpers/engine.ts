import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import Docker from 'dockerode';
import { startNode, type NodeHandle, type NodeOptions } from '../../src/node/start-node.ts';
import { Label } from '../../src/sandbox/docker-options.ts';
import { loadSettings } from '../../src/settings.ts';
import { freshDataDir } from './data-dir.ts';
import { MemoryRuntime } from './memory-runtime.ts';
import { FAST } from './tier.ts';

/** Every test client sends a key, as production clients must. */
export const API_KEY = 'dev-key-12345';

export interface TestEngine {
  node: NodeHandle;
  url: string;
  nodeId: string;
  logs: string[];
  /** A request with the test key (unless the headers carry another): through `app.inject` in the fast tier, real HTTP otherwise. */
  request(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  close(): Promise<void>;
}

/** The in-memory runtimes of the fast tier's engines, by node id. */
const memoryRuntimes = new Map<string, MemoryRuntime>();

/**
 * Starts a real node (real HTTP on a loopback port) with its own node id, captured logs and, unless the
 * test names one, its own embedded database. Its sandboxes run on Docker, or in the fast tier
 * (BRAINDRILL_TEST_TIER=fast) on the in-memory runtime.
 */
export async function startEngine(env: Record<string, string> = {}, options: { runtime?: NodeOptions['runtime'] } = {}): Promise<TestEngine> {
  const nodeId = env.NODE_ID ?? `test-${randomBytes(4).toString('hex')}`;
  const logs: string[] = [];
  const capture = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const ownDataDir = env.DATA_DIR === undefined && env.DATABASE_URL === undefined ? await freshDataDir() : null;
  const settings = loadSettings({
    LOG_LEVEL: 'info',
    ...process.env,
    NODE_ID: nodeId,
    PORT: '0',
    HOST: '127.0.0.1',
    ...(ownDataDir ? { DATA_DIR: ownDataDir } : {}),
    ...env,
  });
  const runtime = FAST ? new MemoryRuntime(nodeId) : undefined;
  if (runtime) memoryRuntimes.set(nodeId, runtime);
  const node = await startNode(settings, { logDestination: capture, ...(runtime ? { runtime: () => runtime } : options.runtime ? { runtime: options.runtime } : {}) }).catch((error: unknown) => {
    memoryRuntimes.delete(nodeId);
    if (ownDataDir) rmSync(ownDataDir, { recursive: true, force: true });
    throw error;
  });
  const url = node.url.replace('[::1]', '127.0.0.1');
  return {
    node,
    url,
    nodeId,
    logs,
    request: (pathname, init = {}) => (FAST ? inject(node, pathname, init) : fetch(`${url}${pathname}`, withKey(init))),
    async close() {
      await node.close();
      memoryRuntimes.delete(nodeId);
      if (ownDataDir) rmSync(ownDataDir, { recursive: true, force: true });
    },
  };
}

function withKey(init: RequestInit & { json?: unknown }): RequestInit {
  const headers = new Headers(init.headers);
  if (!headers.has('x-api-key')) headers.set('x-api-key', API_KEY);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set('content-type', 'application/json');
    body = JSON.stringify(init.json);
  }
  const { json: _json, ...rest } = init;
  return { ...rest, headers, body: body ?? null };
}

/** The same request through Fastify's `inject` (no socket), answered as a fetch Response. */
async function inject(node: NodeHandle, pathname: string, init: RequestInit & { json?: unknown }): Promise<Response> {
  const request = withKey(init);
  const headers = Object.fromEntries(new Headers(request.headers).entries());
  const body = request.body === null || request.body === undefined ? undefined : typeof request.body === 'string' ? request.body : Buffer.from(await new Response(request.body).arrayBuffer());
  const response = await node.app.inject({ method: (request.method ?? 'GET') as 'GET', url: pathname, headers, ...(body === undefined ? {} : { payload: body }) });
  const answer = new Headers();
  for (const [name, value] of Object.entries(response.headers)) {
    if (value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) answer.append(name, String(one));
  }
  const empty = response.statusCode === 204 || response.statusCode === 304;
  return new Response(empty ? null : response.rawPayload, { status: response.statusCode, headers: answer });
}

/** Runs code through POST /lang/:language and returns the JSON result object. */
export async function run(engine: TestEngine, language: string, body: { code?: string; files?: { name?: string; content: string }[]; stdin?: string; args?: string[] }) {
  const response = await engine.request(`/lang/${encodeURIComponent(language)}`, { method: 'POST', json: body, headers: { accept: 'application/json' } });
  const json = (await response.json()) as Record<string, unknown>;
  return { httpStatus: response.status, ...json } as {
    httpStatus: number;
    status: string;
    reason: string | null;
    stdout: string;
    stderr: string;
    exit_code: number | null;
    signal: string | null;
    execution_time_ms: number;
    truncated: boolean;
    error?: { code: string; message: string };
  };
}

/** What the tests read of a container, from Docker or from the in-memory runtime. */
export type ContainerView = Pick<Docker.ContainerInfo, 'Id' | 'Labels' | 'State' | 'Names'>;

/** Containers carrying a node's label, in any state; warm-pool containers (waiting, jobless) only if asked. */
export async function containersOf(nodeId: string, options: { includeWarm?: boolean } = {}): Promise<ContainerView[]> {
  const memory = memoryRuntimes.get(nodeId);
  if (memory) {
    return memory.executionContainers(options.includeWarm).map((c) => ({ Id: c.id, Labels: { [Label.node]: nodeId, [Label.execution]: c.label }, State: 'running', Names: [] }));
  }
  const docker = new Docker({ socketPath: process.env.DOCKER_SOCKET ?? '/var/run/docker.sock' });
  const all = await docker.listContainers({ all: true, filters: { label: [`${Label.node}=${nodeId}`] } });
  // A warm container taken by a job is renamed bd-job-<id>-…; one still waiting keeps its warm- label only.
  const waiting = (c: Docker.ContainerInfo) => c.Labels[Label.execution]?.startsWith('warm-') && !c.Names.some((n) => n.startsWith('/bd-job-'));
  return options.includeWarm ? all : all.filter((c) => !waiting(c));
}

/**
 * Execution containers of a node still there after `waitMs`: answers go out while containers are being
 * removed, so "none left" is checked with a short grace.
 */
export async function containersLeft(nodeId: string, waitMs = 5000): Promise<ContainerView[]> {
  const deadline = Date.now() + waitMs;
  let left = await containersOf(nodeId);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    left = await containersOf(nodeId);
  }
  return left;
}
