/**
 * Options of the edge cache (`liveSmooth.edge(options)`): defaults, validation and the frozen resolved
 * form. Every memory and time bound has a finite default and a finite ceiling: the edge faces clients
 * and an origin it does not control, and configuration must not be able to make it unbounded.
 */
import { SmoothError } from '../errors';

/** A source of wall-clock time in ms (the origin's `Clock`): injected so tests can move time. */
export interface EdgeClock {
  now(): number;
}

/** The `fetch` the edge calls (the global one by default): injectable for a custom agent or a test. */
export type EdgeFetch = (input: string, init: RequestInit) => Promise<Response>;

/** Options of `liveSmooth.edge(options)`. Only `upstream` is required; each bound lists its default. */
export interface EdgeOptions {
  /**
   * The origin(s): `http(s)://host[:port][/path]`, the URL the request's path (below the edge's mount
   * point) is appended to, e.g. `http://origin:3000/live`. Several are tried in order: the edge sticks
   * to the first that answers, moves to the next on a network error, a timeout or a 5xx, and skips a
   * failed one for `coolDown` ms. At most 16; no credentials, query or fragment in the URL (send
   * credentials with `upstreamHeaders`).
   */
  upstream: string | string[];
  /** Bytes the cache holds at most: bodies, kept headers, URL and 512 bytes of bookkeeping per entry. Default 256 MiB. */
  maxSize?: number;
  /** Entries the cache holds at most. Default `10000`. */
  max?: number;
  /**
   * Largest body the edge buffers and caches. A larger one is streamed to each client that asks,
   * uncached and uncoalesced (one upstream request per client). Default 8 MiB; at most `maxSize`.
   */
  maxEntrySize?: number;
  /**
   * Largest body the edge passes on at all; past it the client gets `502` (or, once the body is under
   * way, a cut connection). Default 256 MiB; at least `maxEntrySize`.
   */
  maxResponseSize?: number;
  /**
   * ms an upstream request may take, from sending it to the last byte of a buffered body (a streamed
   * one: between two chunks). Keep it above the origin's `edgeWait` (10 s): the origin holds a request
   * for the newest fragment that long. Default `15000`.
   */
  timeout?: number;
  /** ms a failed upstream is skipped (tried only when every other failed too). Default `10000`. */
  coolDown?: number;
  /** Longest any response is kept fresh, ms, whatever its `max-age` says. Default one day. */
  maxTtl?: number;
  /**
   * ms a 404, 410 or 412 is kept (at most 1000; 0 keeps none): content that is not there yet must not
   * be remembered as missing for long. Default `1000`.
   */
  errorTtl?: number;
  /**
   * Longest an expired manifest (Smooth `Manifest`, `.mpd`, `.m3u8`) is served stale while one
   * background request refreshes it, ms; other responses get the upstream's `stale-while-revalidate`
   * up to the same bound. `0` never serves stale. At most 60000. Default `2000`.
   */
  staleWhileRevalidate?: number;
  /**
   * Upstream requests in flight at once (requests that join one in flight do not count). Past it
   * clients get `503`. With `maxEntrySize` it bounds the bodies being buffered. Default `64`.
   */
  maxUpstreamRequests?: number;
  /** Headers sent with every upstream request (e.g. `Authorization` for an origin behind auth). */
  upstreamHeaders?: Record<string, string>;
  /** Clock of freshness, `Age` and cool-downs. Default `Date`. */
  clock?: EdgeClock;
  /** `fetch` implementation. Default the global `fetch`. */
  fetch?: EdgeFetch;
}

/** One upstream after validation: its origin and the path every request path is appended to. */
export interface UpstreamBase {
  /** As given (for stats and events). */
  readonly url: string;
  /** `http://host:port` */
  readonly origin: string;
  /** Path without a trailing slash (`''` for the root). */
  readonly prefix: string;
}

/** Options after defaults and validation. */
export interface ResolvedEdgeOptions {
  readonly upstreams: readonly UpstreamBase[];
  readonly maxSize: number;
  readonly max: number;
  readonly maxEntrySize: number;
  readonly maxResponseSize: number;
  readonly timeout: number;
  readonly coolDown: number;
  readonly maxTtl: number;
  readonly errorTtl: number;
  readonly staleWhileRevalidate: number;
  readonly maxUpstreamRequests: number;
  readonly upstreamHeaders: Readonly<Record<string, string>>;
  readonly clock: EdgeClock;
  readonly fetch: EdgeFetch;
}

const MIB = 2 ** 20;

/** Request headers the edge sets itself (or that would change what the upstream answers per client). */
const RESERVED_HEADERS = new Set(['host', 'connection', 'content-length', 'transfer-encoding', 'if-none-match', 'if-modified-since', 'range', 'accept-encoding', 'cookie']);

function fail(message: string): never {
  throw new SmoothError('ERR_INVALID_OPTION', message);
}

function integer(o: Record<string, unknown>, name: string, min: number, max: number, fallback: number): number {
  const value = o[name];
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    fail(`options.${name} must be an integer between ${min} and ${max}`);
  }
  return value as number;
}

function upstreamOption(value: unknown): UpstreamBase[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 || list.length > 16) {
    fail('options.upstream must be an origin URL (http://host:port/path) or an array of 1 to 16 of them');
  }
  return (list as unknown[]).map((u, i) => {
    const where = Array.isArray(value) ? `options.upstream[${i}]` : 'options.upstream';
    if (typeof u !== 'string') fail(`${where} must be a URL string`);
    let url: URL;
    try {
      url = new URL(u as string);
    } catch {
      return fail(`${where} is not a URL: ${JSON.stringify(u)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`${where} must be an http: or https: URL`);
    if (url.username || url.password) fail(`${where} must not carry credentials (send them with options.upstreamHeaders)`);
    if (url.search || url.hash || (u as string).includes('?') || (u as string).includes('#')) fail(`${where} must not have a query or fragment`);
    return Object.freeze({ url: u as string, origin: url.origin, prefix: url.pathname.replace(/\/+$/, '') });
  });
}

function headersOption(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('options.upstreamHeaders must be an object of header names and values');
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) fail(`options.upstreamHeaders: ${JSON.stringify(name)} is not a header name`);
    if (RESERVED_HEADERS.has(name.toLowerCase())) fail(`options.upstreamHeaders: the edge sets ${name} itself`);
    if (typeof v !== 'string' || /[\0\r\n]/.test(v)) fail(`options.upstreamHeaders.${name} must be a string without line breaks`);
    out[name.toLowerCase()] = v as string;
  }
  return out;
}

/**
 * Applies defaults and validates.
 * @throws SmoothError ERR_INVALID_OPTION naming the option
 */
export function resolveEdgeOptions(options: EdgeOptions): ResolvedEdgeOptions {
  if (typeof options !== 'object' || options === null) fail('liveSmooth.edge() needs options with an upstream URL');
  const o = options as unknown as Record<string, unknown>;
  const known = [
    'upstream', 'maxSize', 'max', 'maxEntrySize', 'maxResponseSize', 'timeout', 'coolDown', 'maxTtl', 'errorTtl',
    'staleWhileRevalidate', 'maxUpstreamRequests', 'upstreamHeaders', 'clock', 'fetch',
  ];
  // A misspelt bound would silently leave the default in force.
  for (const key of Object.keys(o)) if (!known.includes(key)) fail(`options.${key} is not an edge option (${known.join(', ')})`);
  const upstreams = upstreamOption(o.upstream);
  const maxSize = integer(o, 'maxSize', 64 * 1024, Number.MAX_SAFE_INTEGER, 256 * MIB);
  const maxEntrySize = integer(o, 'maxEntrySize', 1024, maxSize, Math.min(8 * MIB, maxSize));
  if (o.clock !== undefined && typeof (o.clock as EdgeClock | null)?.now !== 'function') fail('options.clock must have a now() method');
  if (o.fetch !== undefined && typeof o.fetch !== 'function') fail('options.fetch must be a function (url, init) => Promise<Response>');
  const globalFetch = globalThis.fetch as EdgeFetch | undefined;
  if (o.fetch === undefined && typeof globalFetch !== 'function') fail('options.fetch is required where there is no global fetch');
  return Object.freeze({
    upstreams: Object.freeze(upstreams),
    maxSize,
    max: integer(o, 'max', 1, 1_000_000, 10_000),
    maxEntrySize,
    maxResponseSize: integer(o, 'maxResponseSize', maxEntrySize, Number.MAX_SAFE_INTEGER, Math.max(256 * MIB, maxEntrySize)),
    timeout: integer(o, 'timeout', 100, 300_000, 15_000),
    coolDown: integer(o, 'coolDown', 0, 3_600_000, 10_000),
    maxTtl: integer(o, 'maxTtl', 1000, 365 * 86_400_000, 86_400_000),
    errorTtl: integer(o, 'errorTtl', 0, 1000, 1000),
    staleWhileRevalidate: integer(o, 'staleWhileRevalidate', 0, 60_000, 2000),
    maxUpstreamRequests: integer(o, 'maxUpstreamRequests', 1, 10_000, 64),
    upstreamHeaders: Object.freeze(headersOption(o.upstreamHeaders)),
    clock: (o.clock as EdgeClock | undefined) ?? Date,
    fetch: (o.fetch as EdgeFetch | undefined) ?? ((input, init) => globalFetch!(input, init)),
  });
}
