/**
 * The simulated encoder: replays `.ismv`/`.isma` files (or an `.ism` presentation) as a live Smooth
 * Streaming push. `cli.ts` is its command line (`live-smooth-encoder`).
 */
export { SimulatedEncoder, startEncoder, formatStatus, shortBitrate } from './push';
export type { EncoderOptions, EncoderStatus, EncoderEvents, TrackStatus } from './push';
export { Source, openSource } from './source';
export type { SourceTrack, SourceFragment, SourceOptions, RawFragment } from './source';
export { LoopTimeline, START_TIMESCALE } from './timeline';
export type { FragmentPlan, TimelineTrack } from './timeline';
export { buildFragment } from './fragment';
export type { OutgoingFragment } from './fragment';
export { streamHeader } from './header';
export { liveServerManifestBox, liveServerManifestText, renderSmil, trackParams } from './lsm';
export type { SmilTrack, StreamTrack } from './lsm';
export { EncoderError } from './errors';
export type { EncoderErrorCode } from './errors';
