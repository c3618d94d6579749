/**
 * Splits Docker's multiplexed attach stream (non-TTY): frames of [stream u8, 0, 0, 0, size u32 BE].
 * Stream 1 is stdout, 2 is stderr. Holds at most one partial header or payload.
 */
export class DockerStreamDemuxer {
  private header = Buffer.alloc(0);
  private remaining = 0;
  private current = 0;

  constructor(private readonly onData: (stream: 1 | 2, payload: Buffer) => void) {}

  push(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.remaining === 0) {
        const needed = 8 - this.header.length;
        this.header = Buffer.concat([this.header, chunk.subarray(offset, offset + needed)]);
        offset += Math.min(needed, chunk.length - offset);
        if (this.header.length < 8) return;
        this.current = this.header.readUInt8(0);
        this.remaining = this.header.readUInt32BE(4);
        this.header = Buffer.alloc(0);
        continue;
      }
      const take = Math.min(this.remaining, chunk.length - offset);
      const payload = chunk.subarray(offset, offset + take);
      offset += take;
      this.remaining -= take;
      if (this.current === 1 || this.current === 2) this.onData(this.current, payload);
    }
  }
}
