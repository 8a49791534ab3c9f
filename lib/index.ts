/**
 * live-smooth: IIS Live Smooth Streaming ingest and delivery for Express 5 and node:http.
 *
 * `liveSmooth(root, options)` is the middleware; the rest are the pluggable modules' contracts and
 * default implementations, the core's types and the errors.
 */
import { admin } from './http/admin';
import { isIngest, liveSmooth as createHandler } from './http/middleware';
import { player } from './player';

export type { LiveSmoothHandler } from './http/middleware';
export { isIngest } from './http/middleware';
export { parseRoute } from './http/routes';
export type { PointRoute, Resource } from './http/routes';
export { STATUS } from './http/status';
export { SmoothError, isSmoothError } from './errors';
export type { SmoothErrorCode } from './errors';
export type { LiveSmoothOptions, ResolvedOptions, Clock, Mapping } from './options';
export { admin, pointJson } from './http/admin';
export type { AdminHandler, AdminOptions } from './http/admin';
export { resolveOptions } from './options';
export { Origin } from './origin';
export { PublishingPoint, IngestConnection } from './point';
export type { PointState, PointCommand, PointEvents, RenderedManifest, FragmentLookup, TrackStats, StreamStats } from './point';
export { readDefinition, writeDefinition, resolveSettings, IIS_DEFAULTS, META_NAMES } from './definition';
export type { PointSettings, SettingsOverrides, MetaName, Definition } from './definition';
export type { TrackInfo, TrackType, FragmentTime } from './model';
export { trackKey } from './model';
export type { FragmentStore, FragmentStoreFactory, FragmentStoreOptions, StoredFragment, EvictReason } from './store/types';
export { MemoryFragmentStore, memoryStore } from './store/memory';
export { storeConformance } from './store/conformance';
export type { ManifestFormatter, ManifestSnapshot, StreamSnapshot } from './manifest/types';
export { SmoothManifestFormatter } from './manifest/smooth';
export type { SmoothManifestOptions } from './manifest/smooth';
export type { IngestParser, IngestParserFactory, IngestEvent } from './ingest/parser';
export { SmoothIngestParser, smoothIngest } from './ingest/parser';
export type { IngestTrack } from './ingest/header';
export type { ParsedFragment, Sample } from './ingest/fragment';
export { BoxReader, children } from './mp4/reader';
export type { Box } from './mp4/reader';

/**
 * The middleware factory, also reachable as the package's default export:
 * `app.use(liveSmooth('media'))`. `liveSmooth.isIngest` is {@link isIngest}; `liveSmooth.admin(root)`
 * is the management API and dashboard ({@link admin}); `liveSmooth.player()` is the sample player page
 * ({@link player}).
 */
export const liveSmooth = Object.assign(createHandler, { isIngest, admin, player });
export default liveSmooth;

// The simulated encoder (also the `live-smooth-encoder` command) and the sample player page.
export { SimulatedEncoder, startEncoder, formatStatus, openSource, Source, LoopTimeline, EncoderError } from './encoder';
export type {
  EncoderOptions,
  EncoderStatus,
  EncoderEvents,
  TrackStatus,
  SourceTrack,
  SourceFragment,
  SourceOptions,
  FragmentPlan,
  EncoderErrorCode,
} from './encoder';
export { player } from './player';
export type { PlayerOptions, PlayerHandler } from './player';
