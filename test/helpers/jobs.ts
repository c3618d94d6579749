import type { TestEngine } from './engine.ts';

export interface JobView {
  job_id: string;
  language: string;
  status: string;
  output: string | null;
  error: string | null;
  created_at: string;
  started_at: string | null;
  completed_at: string | null;
  execution_duration_ms: number | null;
  stdout: string | null;
  stderr: string | null;
  exit_code: number | null;
  signal: string | null;
  reason: string | null;
  truncated: boolean;
}

export async function submitJob(engine: TestEngine, body: Record<string, unknown>): Promise<string> {
  const response = await engine.request('/jobs', { method: 'POST', json: body });
  const json = (await response.json()) as { job_id: string; status: string };
  if (response.status !== 202) throw new Error(`POST /jobs answered ${response.status}: ${JSON.stringify(json)}`);
  return json.job_id;
}

/** Polls GET /jobs/:id until the job leaves queued/running (bounded). */
export async function waitForJob(engine: TestEngine, id: string, timeoutMs = 60_000, key?: string): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await engine.request(`/jobs/${id}`, key ? { headers: { 'x-api-key': key } } : {});
    if (response.status === 200) {
      const job = (await response.json()) as JobView;
      if (job.status !== 'queued' && job.status !== 'running') return job;
    }
    if (Date.now() > deadline) throw new Error(`job ${id} did not finish within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function waitForStatus(engine: TestEngine, id: string, status: string, timeoutMs = 30_000): Promise<JobView> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = (await (await engine.request(`/jobs/${id}`)).json()) as JobView;
    if (job.status === status) return job;
    if (Date.now() > deadline) throw new Error(`job ${id} never reached ${status} (last: ${job.status})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
