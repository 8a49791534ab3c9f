/**
 * CMAF segments sent as many chunks (a `moof`+`mdat` per frame, as ffmpeg's `-f dash -streaming 1`
 * writes them) joined into one fragment per track, so that a point lists and serves one fragment per
 * segment, as it would for a segment of one chunk: a chunk of 40 ms is no fragment a Smooth or DASH
 * client wants, and the point refuses fragments under 100 ms.
 */
import { SmoothError } from '../errors';
import { SampleTable } from '../media';
import { MAX_FRAGMENT_SAMPLES, ParsedFragment } from './fragment';
import type { IngestEvent, IngestParser } from './types';

function bad(message: string): SmoothError {
  return new SmoothError('ERR_BAD_FRAGMENT', message);
}

/**
 * Joins one track's chunks of one segment, in order, into a fragment: the first chunk's times, the
 * samples and sample bytes of all (the bytes stay views of the chunks'), the sum of their durations.
 * @throws SmoothError ERR_BAD_FRAGMENT when the chunks do not follow each other in time, change sample
 *   description, carry per-sample boxes besides the `trun` (`sdtp`, encryption) or hold more than
 *   {@link MAX_FRAGMENT_SAMPLES} samples together
 */
export function joinChunks(chunks: readonly ParsedFragment[]): ParsedFragment {
  const first = chunks[0];
  if (!first) throw new RangeError('joinChunks needs at least one chunk');
  if (chunks.length === 1) return first;
  let count = 0;
  let dataSize = 0;
  let end = first.time;
  for (const c of chunks) {
    if (c.time !== end) throw bad(`track ${c.trackId}: a chunk starts at ${c.time}, not where the one before it ended (${end})`);
    if (c.sampleDescriptionIndex !== first.sampleDescriptionIndex) throw bad(`track ${c.trackId}: the chunks of a segment change sample description`);
    // The table of an sdtp or of encryption data would have to be joined with the samples.
    if (c.extra.length > 0) throw bad(`track ${c.trackId}: a segment of several chunks with boxes besides the trun in their traf is not supported`);
    end = c.time + c.duration;
    count += c.samples.count;
    dataSize += c.dataSize;
  }
  if (count > MAX_FRAGMENT_SAMPLES) throw bad(`track ${first.trackId}: the chunks of a segment hold ${count} samples, more than the ${MAX_FRAGMENT_SAMPLES} allowed`);
  const words = new Uint32Array(count * 4);
  let at = 0;
  for (const c of chunks) {
    const bytes = c.samples.bytes;
    words.set(new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), at);
    at += c.samples.count * 4;
  }
  return {
    ...first,
    duration: end - first.time,
    samples: new SampleTable(words),
    data: chunks.flatMap((c) => c.data),
    dataSize,
    extra: [],
  };
}

/**
 * An {@link IngestParser} that joins the chunks of each segment of the stream `inner` reads (see
 * {@link joinChunks}). The segment boundaries are declared ({@link SegmentJoiner.segment}) by the
 * transport that knows them: one segment per upload request. The same bytes with the same
 * declarations give the same events whatever their split. Bytes outside declared segments pass
 * through as `inner` reads them.
 */
export class SegmentJoiner implements IngestParser {
  readonly #inner: IngestParser;
  /** Lengths of the segments declared and not pushed yet, in order. */
  readonly #declared: number[] = [];
  /** Bytes of the current declared segment still to come; 0 outside one. */
  #left = 0;
  /** The current segment's chunks, by track. */
  readonly #held = new Map<number, ParsedFragment[]>();
  #heldBytes = 0;

  constructor(inner: IngestParser) {
    this.#inner = inner;
  }

  /** Declares that the next `length` bytes pushed (after those declared before) are one segment. */
  segment(length: number): void {
    if (!Number.isSafeInteger(length) || length <= 0) throw new RangeError(`a segment has a positive length, not ${length}`);
    this.#declared.push(length);
  }

  /** What `inner` holds, and the sample bytes of the chunks held for the current segment. */
  get buffered(): number {
    return (this.#inner.buffered ?? 0) + this.#heldBytes;
  }

  push(chunk: Buffer): IngestEvent[] {
    const out: IngestEvent[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.#left === 0) this.#left = this.#declared.shift() ?? 0;
      const n = this.#left === 0 ? chunk.length - at : Math.min(this.#left, chunk.length - at);
      this.#take(this.#inner.push(chunk.subarray(at, at + n)), out);
      at += n;
      if (this.#left === 0) continue;
      this.#left -= n;
      if (this.#left > 0) continue;
      // A segment is whole boxes: a box still open here would take its rest from the next segment.
      if ((this.#inner.buffered ?? 0) > 0) throw new SmoothError('ERR_TRUNCATED', 'a segment ends inside a box');
      this.#flush(out);
    }
    return out;
  }

  end(): IngestEvent[] {
    const out: IngestEvent[] = [];
    this.#take(this.#inner.end(), out);
    this.#flush(out);
    return out;
  }

  #take(events: IngestEvent[], out: IngestEvent[]): void {
    for (const e of events) {
      if (e.type === 'fragment' && this.#left > 0) {
        const list = this.#held.get(e.fragment.trackId);
        if (list) list.push(e.fragment);
        else this.#held.set(e.fragment.trackId, [e.fragment]);
        this.#heldBytes += e.fragment.dataSize;
        continue;
      }
      if (e.type === 'end') this.#flush(out);
      out.push(e);
    }
  }

  #flush(out: IngestEvent[]): void {
    for (const chunks of this.#held.values()) out.push({ type: 'fragment', fragment: joinChunks(chunks) });
    this.#held.clear();
    this.#heldBytes = 0;
  }
}
