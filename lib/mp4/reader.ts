/**
 * ISO BMFF box reading: an incremental top-level reader for byte streams that arrive in arbitrary
 * chunks, and a synchronous iterator over the children of a box held in memory.
 *
 * Box header (ISO 14496-12 §4.2): `size u32, type 4cc`; `size == 1` → a `u64 largesize` follows;
 * `size == 0` → the box extends to the end of the input; `type == 'uuid'` → a 16-byte user type follows.
 */
import { SmoothError } from '../errors';

/** One complete box. `data` is the whole box, header included. */
export interface Box {
  /** Four-character type, e.g. `moof`. */
  readonly type: string;
  /** For `uuid` boxes: the user type as 32 lower-case hex digits; otherwise `undefined`. */
  readonly uuid: string | undefined;
  /** Bytes of header (8, 16 with largesize, +16 for uuid). The payload starts at `data[headerSize]`. */
  readonly headerSize: number;
  /** The whole box. A view into the input when the box arrived in one chunk, otherwise one fresh copy. */
  readonly data: Buffer;
}

/** Options of {@link BoxReader}. */
export interface BoxReaderOptions {
  /** Largest box accepted, in bytes; larger boxes raise `ERR_BOX_TOO_LARGE` before any of it is buffered. */
  maxBoxSize: number;
  /**
   * Called with each top-level box header as soon as it is read, before any of the box is buffered;
   * may throw to refuse a box by type and size (`size` 0: the box extends to the end of the input).
   * The reader then stops: the push returns the boxes completed before that header, and the error is
   * raised by {@link BoxReader.throwRefusal} and by every later push or end (so the caller handles
   * the earlier boxes first, whatever the split of the input).
   */
  onHeader?: (type: string, uuid: string | undefined, size: number) => void;
}

interface Header {
  size: number; // 0 = to end of input
  headerSize: number;
  type: string;
  uuid: string | undefined;
}

/**
 * Parses a box header at `buf[offset]`.
 * @returns the header, or `undefined` when `buf` does not hold the whole header yet
 * @throws SmoothError ERR_BAD_BOX / ERR_BOX_TOO_LARGE
 */
export function readHeader(buf: Buffer, offset: number, end: number, maxBoxSize: number): Header | undefined {
  if (end - offset < 8) return undefined;
  let size = buf.readUInt32BE(offset);
  const type = buf.toString('latin1', offset + 4, offset + 8);
  let headerSize = 8;
  // Only the 32-bit size may say "to end of input"; a largesize of 0 is malformed, not a second spelling.
  const toEnd = size === 0;
  if (size === 1) {
    if (end - offset < 16) return undefined;
    const large = buf.readBigUInt64BE(offset + 8);
    if (large > BigInt(maxBoxSize)) throw tooLarge(type, large.toString(), maxBoxSize);
    size = Number(large);
    headerSize = 16;
  }
  let uuid: string | undefined;
  if (type === 'uuid') {
    if (end - offset < headerSize + 16) return undefined;
    uuid = buf.toString('hex', offset + headerSize, offset + headerSize + 16);
    headerSize += 16;
  }
  if (!toEnd && size < headerSize) {
    throw new SmoothError('ERR_BAD_BOX', `box '${printable(type)}' declares size ${size}, smaller than its header`);
  }
  if (size > maxBoxSize) throw tooLarge(type, String(size), maxBoxSize);
  return { size, headerSize, type, uuid };
}

function tooLarge(type: string, size: string, max: number): SmoothError {
  return new SmoothError('ERR_BOX_TOO_LARGE', `box '${printable(type)}' of ${size} bytes exceeds maxBoxSize ${max}`);
}

/** Box types are meant to be printable; escape anything else before it reaches a log or a reply. */
export function printable(type: string): string {
  return type.replace(/[^\x20-\x7e]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * Incremental top-level box reader. Feed chunks with {@link BoxReader.push}; each call returns the
 * boxes completed by that chunk. Any split of the input gives the same boxes with the same bytes.
 * Memory held is bounded by one box (≤ `maxBoxSize`) plus a 32-byte header scratch.
 */
export class BoxReader {
  readonly #max: number;
  readonly #onHeader: BoxReaderOptions['onHeader'];
  /** What `onHeader` threw: the reader reads nothing more. */
  #refusal: unknown;
  /** Header bytes seen while a header straddles chunks. */
  #scratch = Buffer.alloc(0);
  /**
   * The box being assembled across chunks, with its header already known. Its bytes are kept as the
   * received chunks and joined once when complete, so memory follows what arrived, not what a header
   * declares (a peer declaring 32 MiB and sending 4 KB costs 4 KB).
   */
  #partial: { header: Header; parts: Buffer[]; filled: number } | undefined;
  /** Size-0 box: kept as chunks until the input ends. */
  #toEnd: { header: Header; parts: Buffer[]; bytes: number } | undefined;
  #offset = 0;

  constructor(options: BoxReaderOptions) {
    this.#max = options.maxBoxSize;
    this.#onHeader = options.onHeader;
  }

  /** Bytes consumed so far (all chunks pushed). */
  get position(): number {
    return this.#offset;
  }

  /** Bytes held of boxes not complete yet (and of a header split across chunks). */
  get buffered(): number {
    return (this.#partial?.filled ?? 0) + (this.#toEnd?.bytes ?? 0) + this.#scratch.length;
  }

  /** True when no partial box or header is buffered. */
  get idle(): boolean {
    return this.#partial === undefined && this.#toEnd === undefined && this.#scratch.length === 0;
  }

  /**
   * Consumes one chunk.
   * @returns the boxes this chunk completed, in order
   * @throws SmoothError on a malformed or oversized box; the reader must not be used afterwards
   */
  push(chunk: Buffer): Box[] {
    this.throwRefusal();
    const out: Box[] = [];
    this.#offset += chunk.length;
    let pos = 0;
    if (this.#toEnd) {
      this.#toEnd.parts.push(chunk);
      this.#toEnd.bytes += chunk.length;
      if (this.#toEnd.bytes > this.#max) throw tooLarge(this.#toEnd.header.type, String(this.#toEnd.bytes), this.#max);
      return out;
    }
    if (this.#partial) {
      const p = this.#partial;
      const n = Math.min(chunk.length, p.header.size - p.filled);
      p.parts.push(chunk.subarray(0, n));
      p.filled += n;
      pos = n;
      if (p.filled < p.header.size) return out;
      out.push(toBox(p.header, Buffer.concat(p.parts, p.filled)));
      this.#partial = undefined;
    }
    if (this.#scratch.length > 0) {
      // A header straddled the previous boundary: complete it from this chunk, then continue as usual.
      const joined = Buffer.concat([this.#scratch, chunk.subarray(pos, pos + 32)]);
      const header = readHeader(joined, 0, joined.length, this.#max);
      if (!header) {
        this.#scratch = joined;
        return out;
      }
      if (!this.#accept(header)) return out;
      const fromScratch = this.#scratch.length;
      this.#scratch = Buffer.alloc(0);
      if (header.size === 0) {
        this.#startToEnd(header, Buffer.concat([joined.subarray(0, fromScratch), chunk.subarray(pos)]));
        return out;
      }
      const n = Math.min(header.size - fromScratch, chunk.length - pos);
      const parts = [joined.subarray(0, fromScratch), chunk.subarray(pos, pos + n)];
      pos += n;
      if (fromScratch + n < header.size) {
        this.#partial = { header, parts, filled: fromScratch + n };
        return out;
      }
      out.push(toBox(header, Buffer.concat(parts, header.size)));
    }
    while (pos < chunk.length) {
      const header = readHeader(chunk, pos, chunk.length, this.#max);
      if (!header) {
        this.#scratch = Buffer.from(chunk.subarray(pos));
        break;
      }
      if (!this.#accept(header)) break;
      if (header.size === 0) {
        this.#startToEnd(header, chunk.subarray(pos));
        break;
      }
      if (chunk.length - pos >= header.size) {
        out.push(toBox(header, chunk.subarray(pos, pos + header.size)));
        pos += header.size;
        continue;
      }
      this.#partial = { header, parts: [chunk.subarray(pos)], filled: chunk.length - pos };
      break;
    }
    return out;
  }

  /**
   * Signals the end of input.
   * @returns a final size-0 box, if one was open
   * @throws SmoothError ERR_TRUNCATED when the input stopped inside a box
   */
  end(): Box[] {
    this.throwRefusal();
    if (this.#toEnd) {
      const { header, parts } = this.#toEnd;
      this.#toEnd = undefined;
      return [toBox(header, Buffer.concat(parts))];
    }
    if (this.#partial) {
      const { header, filled } = this.#partial;
      throw new SmoothError(
        'ERR_TRUNCATED',
        `input ended inside box '${printable(header.type)}' (${filled} of ${header.size} bytes)`,
      );
    }
    if (this.#scratch.length > 0) {
      throw new SmoothError('ERR_TRUNCATED', `input ended inside a box header (${this.#scratch.length} bytes)`);
    }
    return [];
  }

  /** Throws what `onHeader` refused a box with, if it did. */
  throwRefusal(): void {
    if (this.#refusal !== undefined) throw this.#refusal;
  }

  /** Runs `onHeader`; false (and the refusal kept) when it threw. */
  #accept(header: Header): boolean {
    if (!this.#onHeader) return true;
    try {
      this.#onHeader(header.type, header.uuid, header.size);
      return true;
    } catch (err) {
      this.#refusal = err ?? new Error('box refused');
      return false;
    }
  }

  #startToEnd(header: Header, first: Buffer): void {
    // The first chunk counts too: a size-0 box that arrives (and ends) in one chunk must not bypass the cap.
    if (first.length > this.#max) throw tooLarge(header.type, String(first.length), this.#max);
    this.#toEnd = { header, parts: [Buffer.from(first)], bytes: first.length };
  }
}

function toBox(header: Header, data: Buffer): Box {
  return { type: header.type, uuid: header.uuid, headerSize: header.headerSize, data };
}

/**
 * Iterates over the boxes in `buf[start, end)`, all of which must be complete.
 * Each yielded box's `data` is a view into `buf`.
 * @throws SmoothError ERR_BAD_BOX when a child overruns the range
 */
export function* children(buf: Buffer, start = 0, end = buf.length): Generator<Box & { offset: number }> {
  let pos = start;
  while (pos < end) {
    const header = readHeader(buf, pos, end, Number.MAX_SAFE_INTEGER);
    if (!header) throw new SmoothError('ERR_BAD_BOX', `truncated box header at offset ${pos}`);
    const size = header.size === 0 ? end - pos : header.size;
    if (pos + size > end) {
      throw new SmoothError('ERR_BAD_BOX', `box '${printable(header.type)}' overruns its parent`);
    }
    // A literal, not `{ ...toBox(…), offset }`: the spread copy was the largest cost of fragment parsing.
    yield { type: header.type, uuid: header.uuid, headerSize: header.headerSize, data: buf.subarray(pos, pos + size), offset: pos };
    pos += size;
  }
}

/** Iterates over the children of a container box (its payload after `skip` bytes of own fields). */
export function childrenOf(box: Box, skip = 0): Generator<Box & { offset: number }> {
  return children(box.data, box.headerSize + skip, box.data.length);
}

/** The first child of `box` with the given type (and user type for `uuid`), if any. */
export function findChild(box: Box, type: string, uuid?: string): Box | undefined {
  for (const child of childrenOf(box)) {
    if (child.type === type && (uuid === undefined || child.uuid === uuid)) return child;
  }
  return undefined;
}
