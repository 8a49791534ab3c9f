/**
 * The simulated encoder: replays `.ismv`/`.isma` files (or an `.ism` presentation) as a live Smooth
 * Streaming push. `cli.ts` is its command line (`live-smooth-encoder`).
 */
export { SimulatedEncoder, startEncoder, formatStatus, shortBitrate } from './push';
export type { EncoderOptions, EncoderStatus, EncoderEvents, TrackStatus } from './push';
export { Source, openSource } from '../ismv/source';
export type { SourceTrack, SourceFragment, SourceOptions, RawFragment, FileHandles } from '../ismv/source';
export { LoopTimeline, START_TIMESCALE } from './timeline';
export type { FragmentPlan, TimelineTrack } from './timeline';
export { buildFragment } from '../ismv/fragment';
export type { OutgoingFragment } from '../ismv/fragment';
export { streamHeader } from '../ismv/header';
export { liveServerManifestBox, liveServerManifestText, renderSmil, trackParams } from '../ismv/lsm';
export type { SmilTrack, StreamTrack } from '../ismv/lsm';
export { EncoderError } from './errors';
export type { EncoderErrorCode } from './errors';
