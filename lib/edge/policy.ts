/**
 * What the edge may keep of an upstream response, and for how long (RFC 9111 as a shared cache applies
 * it, plus the rules live streaming needs): pure functions of the status, the headers and the URL.
 */

/** The `Cache-Control` directives the edge acts on; anything else is ignored (and forwarded as is). */
export interface CacheDirectives {
  readonly noStore: boolean;
  readonly noCache: boolean;
  readonly private: boolean;
  readonly public: boolean;
  readonly immutable: boolean;
  /** `must-revalidate` or `proxy-revalidate`: never served stale. */
  readonly mustRevalidate: boolean;
  /** Seconds; `undefined` when absent or malformed. */
  readonly maxAge: number | undefined;
  readonly sMaxAge: number | undefined;
  readonly staleWhileRevalidate: number | undefined;
}

/**
 * Parses a `Cache-Control` header (RFC 9111 §5.2). A directive given twice, or with a value that is
 * not a non-negative integer, counts as absent for the delta-seconds ones: a cache must not guess a
 * longer lifetime than the sender meant.
 */
export function parseCacheControl(header: string | null | undefined): CacheDirectives {
  const seen = new Map<string, string | undefined>();
  const twice = new Set<string>();
  for (const part of (header ?? '').split(',')) {
    const eq = part.indexOf('=');
    const name = (eq === -1 ? part : part.slice(0, eq)).trim().toLowerCase();
    if (!name) continue;
    let value = eq === -1 ? undefined : part.slice(eq + 1).trim();
    if (value !== undefined && value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    if (seen.has(name)) twice.add(name);
    seen.set(name, value);
  }
  const seconds = (name: string): number | undefined => {
    if (twice.has(name)) return undefined;
    const v = seen.get(name);
    if (v === undefined || !/^\d{1,10}$/.test(v)) return undefined;
    return Number(v);
  };
  return {
    noStore: seen.has('no-store'),
    // `no-cache="Set-Cookie"` (a field list) still means "revalidate": the edge keeps no partial responses.
    noCache: seen.has('no-cache'),
    private: seen.has('private'),
    public: seen.has('public'),
    immutable: seen.has('immutable'),
    mustRevalidate: seen.has('must-revalidate') || seen.has('proxy-revalidate'),
    maxAge: seconds('max-age'),
    sMaxAge: seconds('s-maxage'),
    staleWhileRevalidate: seconds('stale-while-revalidate'),
  };
}

/**
 * True for the documents a live player reloads: the Smooth client manifest (`…/Manifest`, also
 * `Manifest(format=…)`), DASH MPDs and HLS playlists, by URL or by content type. They are what
 * stale-while-revalidate is for: every player asks for them again every few seconds.
 */
export function isManifest(path: string, contentType: string | null | undefined): boolean {
  const p = path.split('?')[0]!.toLowerCase();
  if (/\/manifest(\([^/]*\))?(\.m3u8|\.mpd)?\/?$/.test(p) || p.endsWith('.mpd') || p.endsWith('.m3u8')) return true;
  const type = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  return ['application/vnd.ms-sstr+xml', 'application/dash+xml', 'application/vnd.apple.mpegurl', 'application/x-mpegurl', 'audio/mpegurl'].includes(type);
}

/** The bounds {@link lifetime} applies (from the edge's options). */
export interface LifetimeBounds {
  /** Longest any response is kept fresh, ms. */
  readonly maxTtl: number;
  /** How long 404, 410 and 412 are kept, ms (at most 1000); 0 keeps none. */
  readonly errorTtl: number;
  /** Longest a manifest (or a response that asks for it) is served stale while it is refreshed, ms. */
  readonly staleWhileRevalidate: number;
}

/** How long a stored response is kept after it arrived (all in ms). */
export interface Lifetime {
  /** False: shared with the requests that waited for it, then dropped. */
  readonly store: boolean;
  /** Served without asking upstream for this long. */
  readonly fresh: number;
  /** After that, served stale for at most this long while one refresh runs. */
  readonly stale: number;
  /**
   * How long lru-cache keeps the entry at all (its `ttl`): past it the entry is only a validator
   * source. At least 1 (lru-cache reads 0 as "forever").
   */
  readonly keep: number;
  readonly immutable: boolean;
}

/**
 * A stored response with a validator is kept this long past its freshness, so that the next request
 * can revalidate it (`If-None-Match`, a 304 instead of the whole body) rather than fetch it again.
 */
export const REVALIDATE_KEEP_MS = 10_000;

/** Statuses of content that is not there (yet, or any more): kept a second at most, whatever they say. */
const NOT_THERE = new Set([404, 410, 412]);

/**
 * What to keep of an upstream response. 200 (and 203) follow the upstream's `Cache-Control`:
 * `no-store` and `private` are never kept; `s-maxage` wins over `max-age`, less the upstream's `Age`;
 * `no-cache` or no lifetime at all keeps it only as a validator (revalidated on every use); `immutable`
 * is remembered. 404, 410 and 412 are kept for `errorTtl` at most, even when they say `no-store` (a
 * live origin sends them for content not available yet; a second shields it from a crowd asking at once
 * and delays nobody by more). Anything else (redirects, other client errors) is not kept. A response
 * that sets a cookie or varies by a request header other than `Accept-Encoding` is not kept either:
 * the edge would hand one client's answer to another.
 */
export function lifetime(
  status: number,
  headers: { get(name: string): string | null },
  path: string,
  bounds: LifetimeBounds,
  now: number,
): Lifetime {
  const none: Lifetime = { store: false, fresh: 0, stale: 0, keep: 1, immutable: false };
  if (NOT_THERE.has(status)) {
    return bounds.errorTtl > 0 ? { store: true, fresh: bounds.errorTtl, stale: 0, keep: bounds.errorTtl, immutable: false } : none;
  }
  if (status !== 200 && status !== 203) return none;
  if (headers.get('set-cookie') !== null) return none;
  const vary = headers.get('vary');
  if (vary && vary.split(',').some((v) => v.trim() !== '' && v.trim().toLowerCase() !== 'accept-encoding')) return none;
  const cc = parseCacheControl(headers.get('cache-control'));
  if (cc.noStore || cc.private) return none;
  const age = Number(/^\d{1,10}$/.test(headers.get('age') ?? '') ? headers.get('age') : 0);
  const seconds = cc.sMaxAge ?? cc.maxAge ?? expiresSeconds(headers, now);
  const fresh = cc.noCache || seconds === undefined ? 0 : Math.min(bounds.maxTtl, Math.max(0, (seconds - age) * 1000));
  // Stale serving: manifests get the edge's own window (players reload them constantly, and a
  // manifest a second or two old only starts a player a fragment further back); anything else only
  // the window the upstream itself grants. Never when the upstream forbids it.
  let stale = 0;
  if (fresh > 0 && !cc.mustRevalidate) {
    stale = isManifest(path, headers.get('content-type')) ? bounds.staleWhileRevalidate : Math.min(bounds.staleWhileRevalidate, (cc.staleWhileRevalidate ?? 0) * 1000);
  }
  const validator = headers.get('etag') !== null;
  const keep = fresh + Math.max(stale, validator ? REVALIDATE_KEEP_MS : 0);
  if (keep === 0) return none;
  return { store: true, fresh, stale, keep: Math.max(1, keep), immutable: cc.immutable };
}

/** Seconds until `Expires` by the response's own `Date` (RFC 9111 §4.2.1), for responses without max-age. */
function expiresSeconds(headers: { get(name: string): string | null }, now: number): number | undefined {
  const expires = headers.get('expires');
  if (expires === null) return undefined;
  const at = Date.parse(expires);
  // An invalid Expires (often "0") means already expired.
  if (Number.isNaN(at)) return 0;
  const date = Date.parse(headers.get('date') ?? '');
  const base = Number.isNaN(date) ? now : date;
  return Math.max(0, Math.floor((at - base) / 1000));
}
