/**
 * The edge cache's framework-free core: {@link EdgeCache} (lru-cache, request coalescing,
 * stale-while-revalidate, failover across upstreams), its options and the caching policy.
 * `http/edge.ts` is the middleware around it.
 */
export { CLIENT_REVALIDATE_MIN_MS, EdgeCache, FORWARDED_HEADERS } from './cache';
export type { CacheStatus, EdgeAnswer, EdgeEntry, EdgeEvents, EdgeStats } from './cache';
export { resolveEdgeOptions } from './options';
export type { EdgeClock, EdgeFetch, EdgeOptions, ResolvedEdgeOptions, UpstreamBase } from './options';
export { REVALIDATE_KEEP_MS, isManifest, lifetime, parseCacheControl } from './policy';
export type { CacheDirectives, Lifetime, LifetimeBounds } from './policy';
export { MAX_PATH_LENGTH, Upstreams } from './upstream';
export type { BufferedAnswer, FailoverEvent, StreamedAnswer, UpstreamFailureEvent, UpstreamReports, UpstreamStats } from './upstream';
