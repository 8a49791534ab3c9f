/**
 * TTML samples for the DASH and HLS outputs: a point keeps their times relative to their sample, as
 * Smooth does, and the outputs read them on the track's timeline (`mp4/ttml.ts`).
 */
import type { FragmentMeta } from '../media';
import { retimeSamples } from '../mp4/ttml';
import type { MoofHead } from '../mp4/writer';
import { type CmafSegmentOptions, cmafSegment } from './cmaf';

/** A CMAF segment whose sample bytes were rewritten: its header, and the bytes that follow it. */
export interface RewrittenSegment extends MoofHead {
  body: Buffer;
}

/**
 * The CMAF media segment of a fragment of TTML samples with every document's times moved onto the
 * output's track timeline: each sample gets its own start (`tfdt` + the durations before it + its
 * composition offset, in `timescale`). The header's `trun` carries the new sample sizes.
 * @param data - the fragment's sample bytes
 * @returns `undefined` when no document changed (the stored bytes are served as they are)
 * @throws RangeError as {@link cmafSegment} does
 */
export function ttmlSegment(f: FragmentMeta, data: Buffer, timescale: number, options: CmafSegmentOptions): RewrittenSegment | undefined {
  const retimed = retimeSamples(f.samples, data, f.decodeTime + (options.decodeTimeOffset ?? 0n), timescale, 1);
  if (!retimed) return undefined;
  const head = cmafSegment({ ...f, samples: retimed.samples, dataSize: retimed.data.length }, options);
  return { ...head, body: retimed.data };
}
