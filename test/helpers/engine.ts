import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import Docker from 'dockerode';
import { Writable } from 'node:stream';
import { startNode, type NodeHandle } from '../../src/node.ts';
import { loadSettings } from '../../src/settings.ts';
import { Label } from '../../src/sandbox/container.ts';

/** Every test client sends a key, as production clients must. */
export const API_KEY = 'dev-key-12345';

export interface TestEngine {
  node: NodeHandle;
  url: string;
  nodeId: string;
  logs: string[];
  request(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  close(): Promise<void>;
}

/** Starts a real node (real Docker, real HTTP on a loopback port) with its own node id and captured logs. */
export async function startEngine(env: Record<string, string> = {}): Promise<TestEngine> {
  const nodeId = env.NODE_ID ?? `test-${randomBytes(4).toString("hex")}`;
  const logs: string[] = [];
  const capture = new Writable({
    write(chunk, _encoding, done) {
      logs.push(String(chunk));
      done();
    },
  });
  // Each engine gets its own embedded database unless the test names one (restart tests do).
  const ownDataDir = env.DATA_DIR === undefined && env.DATABASE_URL === undefined ? mkdtempSync(path.join(tmpdir(), 'braindrill-data-')) : null;
  const settings = loadSettings({
    LOG_LEVEL: 'info',
    ...process.env,
    NODE_ID: nodeId,
    PORT: '0',
    HOST: '127.0.0.1',
    ...(ownDataDir ? { DATA_DIR: ownDataDir } : {}),
    ...env,
  });
  const node = await startNode(settings, { logDestination: capture });
  const url = node.url.replace('[::1]', '127.0.0.1');
  return {
    node,
    url,
    nodeId,
    logs,
    request(path, init = {}) {
      const headers = new Headers(init.headers);
      if (!headers.has('x-api-key')) headers.set('x-api-key', API_KEY);
      let body = init.body;
      if (init.json !== undefined) {
        headers.set('content-type', 'application/json');
        body = JSON.stringify(init.json);
      }
      return fetch(`${url}${path}`, { ...init, headers, body });
    },
    async close() {
      await node.close();
      if (ownDataDir) rmSync(ownDataDir, { recursive: true, force: true });
    },
  };
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

/** Containers carrying a node's label, in any state; warm-pool containers (waiting, jobless) only if asked. */
export async function containersOf(nodeId: string, options: { includeWarm?: boolean } = {}): Promise<Docker.ContainerInfo[]> {
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
export async function containersLeft(nodeId: string, waitMs = 5000): Promise<Docker.ContainerInfo[]> {
  const deadline = Date.now() + waitMs;
  let left = await containersOf(nodeId);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    left = await containersOf(nodeId);
  }
  return left;
}
