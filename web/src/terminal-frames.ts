// The frames of the SSH gateway's terminal stream, as src/backends/ssh/ssh_frames.hpp defines them:
// a type byte, a big-endian uint32 payload length (at most 64 KiB), the payload. The session proxy
// relays WebSocket messages as bytes, so a message may hold part of a frame or several: the reader
// keeps what it has not yet made a frame of.

export enum FrameType {
  Input = 0x01,
  Resize = 0x02,
  Ping = 0x03,
  Output = 0x81,
  Ready = 0x82,
  Pong = 0x83,
  Error = 0x84,
  Exit = 0x85,
}

export const MAX_FRAME_PAYLOAD = 64 * 1024;
const HEADER = 5;
const KNOWN = new Set<number>([0x01, 0x02, 0x03, 0x81, 0x82, 0x83, 0x84, 0x85]);

export interface Frame {
  type: FrameType;
  payload: Uint8Array;
}

// What the ready frame says about the connection.
export interface ReadyInfo {
  host: string;
  port: number;
  user: string;
  fingerprint: string;
  key_type: string;
}

export function encodeFrame(type: FrameType, payload: Uint8Array = new Uint8Array(0)): Uint8Array {
  const out = new Uint8Array(HEADER + payload.length);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, payload.length);
  out.set(payload, HEADER);
  return out;
}

// Input of any length, as frames of at most MAX_FRAME_PAYLOAD bytes each, in one buffer.
export function encodeInput(bytes: Uint8Array): Uint8Array {
  const count = Math.max(1, Math.ceil(bytes.length / MAX_FRAME_PAYLOAD));
  const out = new Uint8Array(bytes.length + count * HEADER);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const part = bytes.subarray(i * MAX_FRAME_PAYLOAD, (i + 1) * MAX_FRAME_PAYLOAD);
    out.set(encodeFrame(FrameType.Input, part), at);
    at += HEADER + part.length;
  }
  return out;
}

export function encodeResize(cols: number, rows: number): Uint8Array {
  const p = new Uint8Array(4);
  const v = new DataView(p.buffer);
  v.setUint16(0, Math.min(Math.max(1, cols), 0xffff));
  v.setUint16(2, Math.min(Math.max(1, rows), 0xffff));
  return encodeFrame(FrameType.Resize, p);
}

export function decodeExit(payload: Uint8Array): number {
  return payload.length === 4 ? new DataView(payload.buffer, payload.byteOffset, 4).getInt32(0) : -1;
}

const utf8 = new TextDecoder('utf-8');
export function decodeText(payload: Uint8Array): string {
  return utf8.decode(payload);
}

// Reads frames from WebSocket messages. Throws on a stream that is not ours (unknown type, a length
// over the bound); the caller then closes the connection.
export class FrameReader {
  private buf = new Uint8Array(0);

  push(chunk: Uint8Array): Frame[] {
    const data = this.buf.length ? concat(this.buf, chunk) : chunk;
    const frames: Frame[] = [];
    let at = 0;
    while (data.length - at >= 1) {
      const type = data[at];
      if (!KNOWN.has(type)) throw new Error(`unknown terminal frame type 0x${type.toString(16)}`);
      if (data.length - at < HEADER) break;
      const length = new DataView(data.buffer, data.byteOffset + at + 1, 4).getUint32(0);
      if (length > MAX_FRAME_PAYLOAD) throw new Error(`terminal frame of ${length} bytes`);
      if (data.length - at < HEADER + length) break;
      // A copy: the payload outlives this message's buffer.
      frames.push({ type: type as FrameType, payload: data.slice(at + HEADER, at + HEADER + length) });
      at += HEADER + length;
    }
    this.buf = data.slice(at);
    return frames;
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}
