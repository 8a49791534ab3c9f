/**
 * The simulated encoder: replays `.ismv`/`.isma` files (or an `.ism` presentation) as a live Smooth
 * Streaming push, optionally with a caption track and SCTE-35 ad markers (`sparse.ts`, `scte35.ts`).
 * `cli.ts` is its command line (`live-smooth-encoder`).
 */
export { SimulatedEncoder, startEncoder, formatStatus, shortBitrate } from './push';
export type { EncoderOptions, EncoderStatus, EncoderEvents, TrackStatus } from './push';
export { Source, openSource } from '../ismv/source';
export type { SourceTrack, SourceFragment, SourceOptions, RawFragment, FileHandles } from '../ismv/source';
export { LoopTimeline, START_TIMESCALE } from './timeline';
export type { FragmentPlan, TimelineTrack } from './timeline';
export { buildFragment, sampleFragment } from '../ismv/fragment';
export type { OutgoingFragment } from '../ismv/fragment';
export { madeUpStreamHeader, streamHeader } from '../ismv/header';
export type { MadeUpTrack } from '../ismv/header';
export { SparseTracks, captionDocument, clockText } from './sparse';
export type { AdMarkerOptions, CaptionOptions, SparseParent, SparseSample } from './sparse';
export { SCTE35_TIMESCALE, crc32Mpeg2, scte35Sample, spliceInsertSection } from './scte35';
export type { SpliceInsert } from './scte35';
export { liveServerManifestBox, liveServerManifestText, renderSmil, trackParams } from '../ismv/lsm';
export type { SmilTrack, StreamTrack } from '../ismv/lsm';
export { EncoderError } from './errors';
export type { EncoderErrorCode } from './errors';
