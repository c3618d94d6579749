/**
 * The host side of the supervisor wire protocol (docs/protocol.md): the request written to the
 * container's stdin and the frames read back from its stdout.
 */

export const MAGIC = Buffer.from('BDX1', 'ascii');
const MAX_REQUEST_BYTES = 16 * 1024 * 1024;
/** Largest frame the host accepts: output chunks are ≤ 64 KiB, the result JSON is small. */
const MAX_FRAME_BYTES = 256 * 1024;
export const NONCE_BYTES = 16;

export const Tag = {
  END: 0x00,
  NONCE: 0x01,
  FILE_NAME: 0x10,
  FILE_DATA: 0x11,
  COMPILE_ARG: 0x20,
  COMPILE_TIMEOUT_MS: 0x21,
  RUN_ARG: 0x30,
  RUN_TIMEOUT_MS: 0x31,
  RUN_WARM: 0x32,
  RUN_ADDRESS_SPACE_MB: 0x33,
  STDIN: 0x40,
  ENV: 0x50,
  OUTPUT_KEEP: 0x60,
  OUTPUT_MAX: 0x61,
  PAUSE_AFTER_COMPILE: 0x70,
} as const;

export const FrameType = {
  RUN_STDOUT: 0x01,
  RUN_STDERR: 0x02,
  COMPILE_STDOUT: 0x03,
  COMPILE_STDERR: 0x04,
  COMPILED: 0x05,
  RESULT: 0x06,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export interface SupervisorRequest {
  nonce: Buffer;
  files: { name: string; content: Buffer }[];
  compile: { argv: string[]; timeoutMs: number } | null;
  /** `warm`: run in the interpreter the supervisor started with the container (`--warm`), if it still waits. */
  run: { argv: string[]; timeoutMs: number; warm?: boolean; addressSpaceMb?: number };
  stdin: Buffer;
  env: string[];
  outputKeepBytes: number;
  outputMaxBytes: number;
  pauseAfterCompile: boolean;
}

/** What the supervisor reports for one step (compile or run). */
export interface StepReport {
  exit_code: number | null;
  signal: number | null;
  timed_out: boolean;
  output_limited: boolean;
  /** Ran in the warm interpreter (absent from supervisors older than RUN_WARM: false). */
  warm?: boolean;
  wall_ms: number;
  cpu_ms: number;
  max_rss_kb: number;
  stdout_bytes: number;
  stderr_bytes: number;
}

export interface SupervisorReport {
  error: string | null;
  compile: StepReport | null;
  run: StepReport | null;
  pids_limited: boolean;
  oom_killed: boolean;
}

function record(tag: number, value: Buffer | string = Buffer.alloc(0)): Buffer[] {
  const bytes = typeof value === 'string' ? Buffer.from(value, 'utf8') : value;
  const header = Buffer.alloc(5);
  header.writeUInt8(tag, 0);
  header.writeUInt32BE(bytes.length, 1);
  return [header, bytes];
}

function u32(value: number): Buffer {
  const bytes = Buffer.alloc(4);
  bytes.writeUInt32BE(Math.max(0, Math.min(0xffffffff, Math.round(value))), 0);
  return bytes;
}

export function encodeRequest(request: SupervisorRequest): Buffer {
  if (request.nonce.length !== NONCE_BYTES) throw new RangeError(`nonce must be ${NONCE_BYTES} bytes`);
  const parts: Buffer[] = [MAGIC, ...record(Tag.NONCE, request.nonce)];
  for (const file of request.files) parts.push(...record(Tag.FILE_NAME, file.name), ...record(Tag.FILE_DATA, file.content));
  if (request.compile) {
    for (const arg of request.compile.argv) parts.push(...record(Tag.COMPILE_ARG, arg));
    parts.push(...record(Tag.COMPILE_TIMEOUT_MS, u32(request.compile.timeoutMs)));
  }
  for (const arg of request.run.argv) parts.push(...record(Tag.RUN_ARG, arg));
  parts.push(...record(Tag.RUN_TIMEOUT_MS, u32(request.run.timeoutMs)));
  if (request.run.warm) parts.push(...record(Tag.RUN_WARM));
  if (request.run.addressSpaceMb) parts.push(...record(Tag.RUN_ADDRESS_SPACE_MB, u32(request.run.addressSpaceMb)));
  if (request.stdin.length > 0) parts.push(...record(Tag.STDIN, request.stdin));
  for (const pair of request.env) parts.push(...record(Tag.ENV, pair));
  parts.push(...record(Tag.OUTPUT_KEEP, u32(request.outputKeepBytes)), ...record(Tag.OUTPUT_MAX, u32(request.outputMaxBytes)));
  if (request.pauseAfterCompile) parts.push(...record(Tag.PAUSE_AFTER_COMPILE));
  parts.push(...record(Tag.END));
  const encoded = Buffer.concat(parts);
  if (encoded.length > MAX_REQUEST_BYTES) throw new RangeError(`request of ${encoded.length} bytes exceeds ${MAX_REQUEST_BYTES}`);
  return encoded;
}

export interface Frame {
  type: FrameType;
  payload: Buffer;
}

export class ProtocolError extends Error {
  constructor(message: string) {
    super(`sandbox protocol: ${message}`);
    this.name = this.constructor.name;
  }
}

/**
 * Incremental frame parser. Holds at most one partial frame (≤ MAX_FRAME_BYTES), so host memory stays
 * flat whatever the program prints.
 */
export class FrameDecoder {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  push(chunk: Buffer): Frame[] {
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    const frames: Frame[] = [];
    let buffer = this.pending.length === 1 ? chunk : Buffer.concat(this.pending, this.pendingBytes);
    let offset = 0;
    while (buffer.length - offset >= 5) {
      const type = buffer.readUInt8(offset);
      const length = buffer.readUInt32BE(offset + 1);
      if (type < FrameType.RUN_STDOUT || type > FrameType.RESULT) throw new ProtocolError(`unknown frame type 0x${type.toString(16)}`);
      if (length > MAX_FRAME_BYTES) throw new ProtocolError(`frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}`);
      if (buffer.length - offset - 5 < length) break;
      frames.push({ type: type as FrameType, payload: buffer.subarray(offset + 5, offset + 5 + length) });
      offset += 5 + length;
    }
    buffer = buffer.subarray(offset);
    this.pending = buffer.length > 0 ? [Buffer.from(buffer)] : [];
    this.pendingBytes = buffer.length;
    return frames;
  }

  get buffered(): number {
    return this.pendingBytes;
  }
}

/** Parses a RESULT payload; a wrong nonce means somebody other than the supervisor wrote it. */
export function parseResult(payload: Buffer, nonce: Buffer): SupervisorReport {
  if (payload.length < NONCE_BYTES || !payload.subarray(0, NONCE_BYTES).equals(nonce)) {
    throw new ProtocolError('result frame carries the wrong nonce');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.subarray(NONCE_BYTES).toString('utf8'));
  } catch {
    throw new ProtocolError('result frame is not JSON');
  }
  if (typeof parsed !== 'object' || parsed === null) throw new ProtocolError('result frame is not an object');
  const report = parsed as Partial<SupervisorReport>;
  return {
    error: typeof report.error === 'string' ? report.error : null,
    compile: report.compile ?? null,
    run: report.run ?? null,
    pids_limited: report.pids_limited === true,
    oom_killed: report.oom_killed === true,
  };
}
