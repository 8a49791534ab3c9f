/**
 * live-smooth: IIS Live Smooth Streaming ingest and delivery for Express 5 and node:http.
 *
 * `createOrigin(root, options)` is the framework-free origin; `liveSmooth(origin)` is the middleware
 * that serves it, `liveSmooth.admin(origin)` its management API and `liveSmooth.metrics(origin)` its
 * Prometheus metrics; `liveSmooth.edge({ upstream })` is an edge cache in front of a remote origin.
 * The rest are the pluggable modules' contracts and defaults, the media model, the core's types and
 * the errors. The simulated encoder, the sample player and the store conformance suite have entries
 * of their own: `live-smooth/encoder`, `live-smooth/player`, `live-smooth/store-conformance`.
 */
import { admin } from './http/admin';
import { edge } from './http/edge';
import { metrics } from './http/metrics';
import { isIngest, liveSmooth as createHandler } from './http/middleware';

export type { LiveSmoothHandler } from './http/middleware';
export { isIngest } from './http/middleware';
export { Archiver, archiveHeader, mendFile, mendFolder, movieFragmentRandomAccess, sessionFolder, trackFileName } from './archive';
export type { ArchiveStatus, ArchiverOptions, ArchiveFailure, MendedFile } from './archive';
export type { ArchiveEvent } from './point/events';
export { OnDemandCatalog, isPresentationPath } from './ondemand/catalog';
export type { CatalogOptions } from './ondemand/catalog';
export { OnDemandPresentation } from './ondemand/presentation';
export type { OnDemandManifest, OnDemandTrack, OnDemandLookup, OnDemandFragment, FileStamp, PresentationOptions } from './ondemand/presentation';
export { FilePool } from './ondemand/pool';
export type { FileOpener } from './ondemand/pool';
export { parseRoute } from './http/routes';
export type { PointRoute, Resource } from './http/routes';
export { STATUS } from './http/status';
export { SmoothError, isSmoothError } from './errors';
export type { SmoothErrorCode } from './errors';
export type { LiveSmoothOptions, ResolvedOptions, Clock, Mapping, IngestAuthOptions, IngestRequest, IngestPointInfo } from './options';
export { admin, pointJson } from './http/admin';
export type { AdminHandler, AdminOptions } from './http/admin';
export { metrics } from './http/metrics';
export { edge } from './http/edge';
export type { EdgeHandler } from './http/edge';
export { EdgeCache, FORWARDED_HEADERS } from './edge';
export type { CacheStatus, EdgeAnswer, EdgeEntry, EdgeEvents, EdgeStats, EdgeOptions, EdgeClock, EdgeFetch, UpstreamStats, UpstreamFailureEvent, FailoverEvent } from './edge';
export type { MetricsHandler } from './http/metrics';
export { registerMetrics, METRIC_NAMES } from './metrics';
export type { MetricsOptions } from './metrics';
export { resolveOptions } from './options';
export { Origin, createOrigin, isPointPath } from './origin';
export { PublishingPoint } from './point';
export type {
  RenderedManifest,
  RenderedOutput,
  FragmentLookup,
  SegmentLookup,
  PackagedFragment,
  PointMemory,
  ManifestBuilds,
  Anchor,
  PointState,
  PointCommand,
  SourceStatus,
} from './point';
export { Puller, parseUpstreamManifest, UPSTREAM_LIMITS } from './pull';
export type { PullerOptions, UpstreamManifest, UpstreamStream, Fetch } from './pull';
export { pullSources } from './definition';
export { synthesizeTrack, SYNTHESIZABLE_FOURCC } from './mp4/synth';
export { IngestSession } from './point/session';
export type { SessionEnd } from './point/session';
export type { PointEvents, FailureSource } from './point/events';
export type { TrackStats, StreamStats, FailureCounts, EncoderCounts, ResponseCounts, ResponseOutput, RefusalCode } from './point/stats';
export { readDefinition, writeDefinition, resolveSettings, outputFormats, IIS_DEFAULTS, META_NAMES } from './definition';
export type { PointSettings, SettingsOverrides, MetaName, Definition, EncoderRestart, OutputFormats } from './definition';
export type { TrackInfo, TrackType, FragmentTime } from './model';
export { trackKey } from './model';
export { SampleTable, packFragment, encodeFragmentMeta, decodeFragmentMeta } from './media';
export type { TrackHeader, MediaFragment, FragmentMeta, FragmentSource, FragmentTimes, Sample } from './media';
export type {
  FragmentStore,
  FragmentStoreFactory,
  FragmentStoreOptions,
  StoredFragment,
  EvictReason,
  Awaitable,
} from './store/types';
export { MemoryFragmentStore, memoryStore } from './store/memory';
export { DiskFragmentStore, diskStore } from './store/disk';
export type { DiskStoreOptions } from './store/disk';
export type { ManifestFormatter, ManifestSnapshot, StreamSnapshot } from './manifest/types';
export { SmoothManifestFormatter } from './manifest/smooth';
export type { SmoothManifestOptions } from './manifest/smooth';
export { renderMpd } from './manifest/dash';
export { renderMaster, renderMedia } from './manifest/hls';
export { codecsOf } from './manifest/codecs';
export { representationId } from './manifest/output';
export type { OutputSnapshot, OutputGroup, OutputRepresentation } from './manifest/output';
export type { IngestParser, IngestParserFactory, IngestEvent, IngestTrack } from './ingest/types';
export { SmoothIngestParser, smoothIngest, cmafIngest, cmafTrackName, CMAF_STREAM } from './ingest/smooth';
export type { ParsedFragment } from './ingest/fragment';
export { smoothFragment } from './package/smooth';
export { cmafSegment } from './package/cmaf';
export { initSegment, CMAF_TRACK_ID } from './mp4/init';
export type { MoofHead } from './mp4/writer';
export { BoxReader, children } from './mp4/reader';
export type { Box } from './mp4/reader';

/**
 * The middleware factory, also reachable as the package's default export:
 * `app.use(liveSmooth(createOrigin('media')))` (or `liveSmooth('media')`). `liveSmooth.isIngest` is
 * {@link isIngest}; `liveSmooth.admin(origin)` is the management API and dashboard ({@link admin});
 * `liveSmooth.metrics(origin)` is the Prometheus scrape endpoint ({@link metrics});
 * `liveSmooth.edge({ upstream })` is the edge cache for a remote origin ({@link edge}).
 */
export const liveSmooth = Object.assign(createHandler, { isIngest, admin, metrics, edge });
export default liveSmooth;
