import type { Language } from '../languages/language.ts';

/**
 * The seam between the sandbox and the container engine. The Docker implementation (docker-runtime.ts)
 * is the only one used in production; tests of the layers above the sandbox may use an in-memory one
 * (test/support/memory-runtime.ts). Every container is labelled with its node and its execution, so a
 * node can list (and reap) its own containers and never another node's.
 */
export interface ContainerRuntime {
  /** Resolves when the engine answers; rejects with the reason otherwise (readiness, start-up). */
  ping(): Promise<void>;
  /** Start-up check: the engine answers and the runtime image is on this host (never pulled). */
  check(): Promise<void>;
  /** Creates a hardened container for one execution of `language`, labelled `label`. Not started yet. */
  create(language: Language, label: string): Promise<SandboxContainer>;
  /** Containers labelled with `nodeId` (this node's by default), in any state. */
  list(nodeId?: string): Promise<ListedContainer[]>;
  /** Kills and removes a container by id; one already gone is fine. */
  remove(id: string): Promise<void>;
  close(): Promise<void>;
}

export interface ListedContainer {
  id: string;
  /** The `braindrill.execution` label: the job id, or `warm-…` for a pooled container. */
  execution: string;
}

/** One created container, whose entry point is the supervisor waiting for one request on its stdin. */
export interface SandboxContainer {
  readonly id: string;
  /** Connects to the supervisor's stdin and stdout/stderr; called before start() so no output is lost. */
  attach(): Promise<SupervisorChannel>;
  start(): Promise<void>;
  /**
   * How the run step gets a lower memory limit than the compile step: `update`, setMemoryLimit between
   * the two; `address-space`, the supervisor caps the run step's RLIMIT_AS (an OCI runtime that cannot
   * change a running container's limits: gVisor's runsc).
   */
  readonly memoryLowering: 'update' | 'address-space';
  /** Changes the memory limit of the running container (compile figure → run figure). */
  setMemoryLimit(memoryMb: number): Promise<void>;
  kill(): Promise<void>;
  /** How the container ended, when it ended without a result: null when that cannot be known. */
  exitState(): Promise<{ oomKilled: boolean; exitCode: number | null } | null>;
  /** Shows which job a pooled container now runs (Docker: its name); best effort. */
  assign(jobId: string): void;
  /** Waits until a container whose supervisor has finished is gone (it removes itself); forced after a grace period. */
  waitRemoved(): Promise<void>;
  /** Kills and removes the container, whatever its state. */
  remove(): Promise<void>;
}

/** The supervisor's end of the attached streams. */
export interface SupervisorChannel {
  /** Bytes for the supervisor's stdin (the request, the after-compile go-ahead). */
  write(bytes: Buffer): void;
  /** The supervisor's stdout: protocol frames. */
  onFrames(listener: (chunk: Buffer) => void): void;
  /** The supervisor's stderr: diagnostics, for logs only. */
  onDiagnostics(listener: (chunk: Buffer) => void): void;
  /** The connection ended (the container exited or was removed); returns the unsubscribe function. */
  onClose(listener: (error?: Error) => void): () => void;
  /** Closes stdin: a supervisor that has answered then exits, and so does the container. */
  close(): void;
}
