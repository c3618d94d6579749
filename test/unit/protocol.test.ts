import t from 'tap';
import { randomBytes } from 'node:crypto';
import { FrameDecoder, FrameType, MAGIC, ProtocolError, Tag, encodeRequest, parseResult } from '../../src/sandbox/protocol.ts';
import { CappedBuffer } from '../../src/sandbox/capped-buffer.ts';
import { DockerStreamDemuxer } from '../../src/sandbox/docker-demux.ts';

function frame(type: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.writeUInt8(type, 0);
  header.writeUInt32BE(payload.length, 1);
  return Buffer.concat([header, payload]);
}

/** Reads the records back, as the supervisor does. */
function decodeRecords(request: Buffer): { tag: number; value: Buffer }[] {
  const records = [];
  let offset = MAGIC.length;
  while (offset < request.length) {
    const tag = request.readUInt8(offset);
    const length = request.readUInt32BE(offset + 1);
    records.push({ tag, value: request.subarray(offset + 5, offset + 5 + length) });
    offset += 5 + length;
  }
  return records;
}

t.test('encodeRequest writes magic, tagged records in order and END', async (t) => {
  const nonce = randomBytes(16);
  const request = encodeRequest({
    nonce,
    files: [{ name: 'Main.java', content: Buffer.from('class Main {}') }],
    compile: { argv: ['javac', 'Main.java'], timeoutMs: 10_000 },
    run: { argv: ['java', 'Main', 'a b'], timeoutMs: 5000 },
    stdin: Buffer.from('input\0with nul'),
    env: ['A=1'],
    outputKeepBytes: 65536,
    outputMaxBytes: 1048576,
    pauseAfterCompile: true,
  });
  t.same(request.subarray(0, 4), MAGIC);
  const records = decodeRecords(request);
  t.same(records.map((r) => r.tag), [
    Tag.NONCE, Tag.FILE_NAME, Tag.FILE_DATA, Tag.COMPILE_ARG, Tag.COMPILE_ARG, Tag.COMPILE_TIMEOUT_MS,
    Tag.RUN_ARG, Tag.RUN_ARG, Tag.RUN_ARG, Tag.RUN_TIMEOUT_MS, Tag.STDIN, Tag.ENV, Tag.OUTPUT_KEEP, Tag.OUTPUT_MAX,
    Tag.PAUSE_AFTER_COMPILE, Tag.END,
  ]);
  t.same(records[0]!.value, nonce);
  t.equal(records[8]!.value.toString(), 'a b', 'an argument with a space stays one argument');
  t.equal(records[9]!.value.readUInt32BE(0), 5000);
  t.equal(records[10]!.value.toString(), 'input\0with nul', 'stdin bytes are carried verbatim');
  t.equal(records[13]!.value.readUInt32BE(0), 1048576);
});

t.test('encodeRequest omits compile and stdin when absent and rejects a bad nonce', async (t) => {
  const base = { files: [], compile: null, run: { argv: ['python3', 'main.py'], timeoutMs: 1 }, stdin: Buffer.alloc(0), env: [], outputKeepBytes: 1, outputMaxBytes: 2, pauseAfterCompile: false };
  const tags = decodeRecords(encodeRequest({ ...base, nonce: randomBytes(16) })).map((r) => r.tag);
  t.notOk(tags.includes(Tag.COMPILE_ARG));
  t.notOk(tags.includes(Tag.STDIN));
  t.notOk(tags.includes(Tag.PAUSE_AFTER_COMPILE));
  t.notOk(tags.includes(Tag.RUN_WARM));
  t.throws(() => encodeRequest({ ...base, nonce: Buffer.alloc(3) }), RangeError);
});

t.test('a warm run step adds an empty RUN_WARM record after the run step', async (t) => {
  const request = encodeRequest({ nonce: randomBytes(16), files: [], compile: null, run: { argv: ['python3', 'main.py'], timeoutMs: 5000, warm: true }, stdin: Buffer.alloc(0), env: [], outputKeepBytes: 1, outputMaxBytes: 2, pauseAfterCompile: false });
  const records = decodeRecords(request);
  const at = records.findIndex((r) => r.tag === Tag.RUN_WARM);
  t.equal(records[at - 1]?.tag, Tag.RUN_TIMEOUT_MS);
  t.equal(records[at]?.value.length, 0);
});

t.test('a run step with an address-space cap carries it as a u32 of MiB; none, no record', async (t) => {
  const base = { nonce: randomBytes(16), files: [], compile: null, stdin: Buffer.alloc(0), env: [], outputKeepBytes: 1, outputMaxBytes: 2, pauseAfterCompile: false };
  const records = decodeRecords(encodeRequest({ ...base, run: { argv: ['./main'], timeoutMs: 5000, addressSpaceMb: 64 } }));
  t.equal(records.find((r) => r.tag === Tag.RUN_ADDRESS_SPACE_MB)?.value.readUInt32BE(0), 64);
  const without = decodeRecords(encodeRequest({ ...base, run: { argv: ['./main'], timeoutMs: 5000 } }));
  t.notOk(without.some((r) => r.tag === Tag.RUN_ADDRESS_SPACE_MB));
});

t.test('FrameDecoder reassembles frames split at every byte boundary', async (t) => {
  const stream = Buffer.concat([frame(FrameType.RUN_STDOUT, Buffer.from('hello')), frame(FrameType.RUN_STDERR, Buffer.alloc(0)), frame(FrameType.RESULT, Buffer.from('xyz'))]);
  for (let split = 0; split <= stream.length; split++) {
    const decoder = new FrameDecoder();
    const frames = [...decoder.push(stream.subarray(0, split)), ...decoder.push(stream.subarray(split))];
    t.same(frames.map((f) => [f.type, f.payload.toString()]), [[1, 'hello'], [2, ''], [6, 'xyz']], `split at ${split}`);
    t.equal(decoder.buffered, 0);
  }
});

t.test('FrameDecoder refuses unknown types and oversized frames instead of buffering them', async (t) => {
  t.throws(() => new FrameDecoder().push(frame(0x7f, Buffer.from('x'))), ProtocolError);
  const huge = Buffer.alloc(5);
  huge.writeUInt8(FrameType.RUN_STDOUT, 0);
  huge.writeUInt32BE(10 * 1024 * 1024, 1);
  t.throws(() => new FrameDecoder().push(huge), ProtocolError);
});

t.test('parseResult checks the nonce', async (t) => {
  const nonce = randomBytes(16);
  const json = Buffer.from(JSON.stringify({ error: null, compile: null, run: { exit_code: 0 }, pids_limited: true, oom_killed: false }));
  const report = parseResult(Buffer.concat([nonce, json]), nonce);
  t.equal(report.pids_limited, true);
  t.equal(report.run?.exit_code, 0);
  t.throws(() => parseResult(Buffer.concat([randomBytes(16), json]), nonce), ProtocolError, 'a forged result is refused');
  t.throws(() => parseResult(Buffer.concat([nonce, Buffer.from('{oops')]), nonce), ProtocolError);
});

t.test('DockerStreamDemuxer splits stdout and stderr across chunk boundaries', async (t) => {
  const mux = (kind: number, text: string) => {
    const header = Buffer.alloc(8);
    header.writeUInt8(kind, 0);
    header.writeUInt32BE(Buffer.byteLength(text), 4);
    return Buffer.concat([header, Buffer.from(text)]);
  };
  const stream = Buffer.concat([mux(1, 'out-1'), mux(2, 'err'), mux(1, 'out-2')]);
  for (const size of [1, 3, 7, 100]) {
    const seen: string[] = [];
    const demuxer = new DockerStreamDemuxer((kind, payload) => seen.push(`${kind}:${payload.toString()}`));
    for (let i = 0; i < stream.length; i += size) demuxer.push(stream.subarray(i, i + size));
    const joined = { 1: '', 2: '' } as Record<string, string>;
    for (const s of seen) joined[s[0]!] += s.slice(2);
    t.same(joined, { 1: 'out-1out-2', 2: 'err' }, `chunk size ${size}`);
  }
});

t.test('CappedBuffer keeps the first bytes and counts the rest', async (t) => {
  const buffer = new CappedBuffer(5);
  buffer.push(Buffer.from('abc'));
  buffer.push(Buffer.from('defgh'));
  t.equal(buffer.bytes().toString(), 'abcde');
  t.equal(buffer.total, 8);
  t.ok(buffer.overflowed);
});
