/**
 * Options of `liveSmooth(root, options)`: defaults, validation and the frozen resolved form.
 */
import { createHash } from 'node:crypto';
import { MAX_LOOKAHEAD, SettingsOverrides, isMetaName, parseMeta } from './definition';
import { isSmoothError } from './errors';
import { SmoothError } from './errors';
import { smoothIngest } from './ingest/smooth';
import type { IngestParserFactory } from './ingest/types';
import { SmoothManifestFormatter } from './manifest/smooth';
import type { ManifestFormatter } from './manifest/types';
import { memoryStore } from './store/memory';
import type { FragmentStoreFactory } from './store/types';

/** A source of wall-clock time in ms; injected so tests can control time. */
export interface Clock {
  now(): number;
}

/** Settings for the publishing points below one route (folder), e.g. `{ path: '/sports', manifestWindowLength: 7200 }`. */
export type Mapping = { path: string } & SettingsOverrides;

/**
 * What the `ingestAuth.authorize` hook sees of an ingest request. At run time it is the Node
 * `IncomingMessage` (Express's `req`), typed by the parts this layer may name.
 */
export interface IngestRequest {
  readonly method?: string;
  /** Path and query below the mount point (the `?token=` query included). */
  readonly url?: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly socket: { readonly remoteAddress?: string };
}

/** What the `ingestAuth.authorize` hook sees of the publishing point (at run time the `PublishingPoint`). */
export interface IngestPointInfo {
  /** Path of the `.isml` relative to the root, e.g. `events/game1.isml`. */
  readonly path: string;
  readonly state: string;
}

/**
 * Who may push to the publishing points (ingest POSTs, the empty probe POST included). Any configured
 * method that accepts a request lets the encoder in; with none configured only loopback may push (a
 * request carrying `Forwarded`, `X-Forwarded-For` or `X-Real-IP` then counts as proxied and is refused).
 * Once any method is configured, loopback is not allowed by itself: list `127.0.0.1` and `::1` in
 * `allow` to keep it.
 */
export interface IngestAuthOptions {
  /**
   * Shared secrets (each at least 16 characters): the encoder sends one as `?token=<t>` on the ingest
   * URL or as an `Authorization: Bearer <t>` header. Compared in constant time.
   */
  tokens?: string[];
  /**
   * HTTP Basic users: the encoder sends `Authorization: Basic …` with its POST (ffmpeg sends the
   * `user:password@` of its URL only after a challenge, too late for a streamed POST: give it a token).
   */
  basic?: Array<{ user: string; password: string }>;
  /**
   * Addresses and CIDR ranges, IPv4 and IPv6 (`203.0.113.7`, `10.0.0.0/8`, `2001:db8::/32`); an
   * IPv4-mapped IPv6 peer (`::ffff:10.1.2.3`) matches IPv4 entries. Encoders matched by the same entry
   * count as one identity for redundant encoders: list single addresses to tell hosts apart.
   */
  allow?: string[];
  /**
   * Decides for requests no other method accepted. Only `true` (or a Promise of it) accepts; `false`,
   * another value, a throw or a rejection refuse (`403`, or `401` when tokens or Basic are configured).
   */
  authorize?: (req: IngestRequest, point: IngestPointInfo) => boolean | Promise<boolean>;
}

/** An IPv4 or IPv6 range: `bits` leading bits of `base`; IPv4-mapped IPv6 addresses are IPv4. */
export interface AddressRange {
  readonly v6: boolean;
  readonly base: bigint;
  readonly bits: number;
  /** The entry as written in the option. */
  readonly text: string;
}

/**
 * Parses an IPv4 or IPv6 address (an IPv6 zone `%eth0` is ignored). IPv4-mapped IPv6 addresses
 * (`::ffff:127.0.0.1`, `::ffff:7f00:1`) come back as IPv4.
 * @returns `undefined` when `text` is not an address
 */
export function parseAddress(text: string): { v6: boolean; value: bigint } | undefined {
  const v4 = (t: string): bigint | undefined => {
    const parts = t.split('.');
    if (parts.length !== 4) return undefined;
    let value = 0n;
    for (const p of parts) {
      if (!/^(0|[1-9]\d{0,2})$/.test(p) || Number(p) > 255) return undefined;
      value = (value << 8n) | BigInt(p);
    }
    return value;
  };
  const four = v4(text);
  if (four !== undefined) return { v6: false, value: four };
  let t = text.replace(/%[^%]*$/, '');
  if (t.startsWith('[') && t.endsWith(']')) t = t.slice(1, -1);
  if (!/^[0-9a-f:.]{2,45}$/i.test(t)) return undefined;
  // A dotted IPv4 tail stands for the last two groups.
  const tail = /:(\d+\.\d+\.\d+\.\d+)$/.exec(t);
  let groupsText = t;
  let tailValue: bigint | undefined;
  if (tail) {
    tailValue = v4(tail[1]!);
    if (tailValue === undefined) return undefined;
    groupsText = `${t.slice(0, tail.index + 1)}${(tailValue >> 16n).toString(16)}:${(tailValue & 0xffffn).toString(16)}`;
  }
  const halves = groupsText.split('::');
  if (halves.length > 2) return undefined;
  const split = (h: string): string[] | undefined => (h === '' ? [] : h.split(':'));
  const head = split(halves[0]!);
  const rest = halves.length === 2 ? split(halves[1]!) : [];
  if (!head || !rest) return undefined;
  const missing = 8 - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  let value = 0n;
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
    value = (value << 16n) | BigInt(`0x${g}`);
  }
  if (value >> 32n === 0xffffn) return { v6: false, value: value & 0xffffffffn };
  return { v6: true, value };
}

/**
 * Parses an allow-list entry: an address or `address/prefix` (CIDR). An IPv4-mapped IPv6 range
 * (`::ffff:10.0.0.0/104`) becomes the IPv4 range it covers.
 * @returns `undefined` when `text` is neither
 */
export function parseAddressRange(text: string): AddressRange | undefined {
  const slash = text.lastIndexOf('/');
  const addr = parseAddress(slash === -1 ? text : text.slice(0, slash));
  if (!addr) return undefined;
  const written = slash === -1 ? undefined : text.slice(slash + 1);
  if (written !== undefined && !/^(0|[1-9]\d{0,2})$/.test(written)) return undefined;
  let bits = written === undefined ? (addr.v6 ? 128 : 32) : Number(written);
  // An IPv4-mapped prefix written in IPv6 terms counts the 96 bits of `::ffff:`.
  const mapped = !addr.v6 && slash !== -1 && text.includes(':');
  if (mapped) {
    if (bits < 96) return undefined;
    bits -= 96;
  }
  if (bits > (addr.v6 ? 128 : 32)) return undefined;
  const width = BigInt(addr.v6 ? 128 : 32);
  const mask = bits === 0 ? 0n : ((1n << BigInt(bits)) - 1n) << (width - BigInt(bits));
  return Object.freeze({ v6: addr.v6, base: addr.value & mask, bits, text });
}

/** True when `address` (a peer's address as Node reports it) lies in `range`. */
export function inAddressRange(address: { v6: boolean; value: bigint }, range: AddressRange): boolean {
  if (address.v6 !== range.v6) return false;
  const width = BigInt(range.v6 ? 128 : 32);
  const shift = width - BigInt(range.bits);
  return address.value >> shift === range.base >> shift;
}

/** Loopback: 127.0.0.0/8 and ::1 (IPv4-mapped loopback is IPv4). */
export const LOOPBACK: readonly AddressRange[] = Object.freeze([parseAddressRange('127.0.0.0/8')!, parseAddressRange('::1')!]);

/** `ingestAuth` after validation: tokens and passwords kept as SHA-256 digests, ranges parsed. */
export interface ResolvedIngestAuth {
  /** At least one method is configured (else only loopback may push). */
  readonly configured: boolean;
  readonly tokens: readonly Buffer[];
  readonly basic: ReadonlyArray<{ readonly user: string; readonly digest: Buffer }>;
  readonly allow: readonly AddressRange[];
  readonly authorize: IngestAuthOptions['authorize'];
}

/** SHA-256 of a secret: fixed-length values for constant-time comparison. */
export function secretDigest(secret: string): Buffer {
  return createHash('sha256').update(secret, 'utf8').digest();
}

function ingestAuthOption(o: unknown): ResolvedIngestAuth {
  const name = 'options.ingestAuth';
  const fail = (what: string): never => {
    throw new SmoothError('ERR_INVALID_OPTION', `${name}${what}`);
  };
  if (o === undefined) return Object.freeze({ configured: false, tokens: [], basic: [], allow: [], authorize: undefined });
  if (typeof o !== 'object' || o === null || Array.isArray(o)) fail(' must be an object of tokens, basic, allow and authorize');
  const a = o as Record<string, unknown>;
  for (const key of Object.keys(a)) {
    if (!['tokens', 'basic', 'allow', 'authorize'].includes(key)) fail(`: unknown method "${key}" (tokens, basic, allow, authorize)`);
  }
  const list = (key: string): unknown[] => {
    const v = a[key];
    if (v === undefined) return [];
    if (!Array.isArray(v)) fail(`.${key} must be an array`);
    return v as unknown[];
  };
  const tokens = list('tokens').map((t, i) => {
    if (typeof t !== 'string' || t.length < 16 || /[\s\0-\x1f\x7f]/.test(t)) {
      fail(`.tokens[${i}] must be a string of at least 16 characters without spaces or control characters`);
    }
    return secretDigest(t as string);
  });
  const basic = list('basic').map((b, i) => {
    const e = b as { user?: unknown; password?: unknown } | null;
    if (!e || typeof e.user !== 'string' || !/^[^:\0-\x1f\x7f]+$/.test(e.user)) {
      fail(`.basic[${i}].user must be a non-empty string without ":" or control characters`);
    }
    if (typeof e!.password !== 'string' || e!.password === '' || /[\0-\x1f\x7f]/.test(e!.password)) {
      fail(`.basic[${i}].password must be a non-empty string without control characters`);
    }
    const user = e!.user as string;
    return Object.freeze({ user, digest: secretDigest(`${user}:${e!.password as string}`) });
  });
  const allow = list('allow').map((t, i) => {
    const range = typeof t === 'string' ? parseAddressRange(t.trim()) : undefined;
    if (!range) fail(`.allow[${i}] must be an IPv4 or IPv6 address or CIDR range (e.g. 10.0.0.0/8, 2001:db8::/32), got ${JSON.stringify(t)}`);
    return range!;
  });
  if (a.authorize !== undefined && typeof a.authorize !== 'function') fail('.authorize must be a function (req, point) => boolean | Promise<boolean>');
  const authorize = a.authorize as IngestAuthOptions['authorize'];
  return Object.freeze({
    configured: tokens.length + basic.length + allow.length > 0 || authorize !== undefined,
    tokens: Object.freeze(tokens),
    basic: Object.freeze(basic),
    allow: Object.freeze(allow),
    authorize,
  });
}

/** Options of `liveSmooth(root, options)`. Every option is optional; defaults are listed per option. */
export interface LiveSmoothOptions {
  /** Default `lookaheadChunks` for points whose `.isml` does not set it. Default `2`. */
  lookaheadChunks?: number;
  /** Default `manifestWindowLength` (DVR window, seconds; 0 = whole event). Default `0`. */
  manifestWindowLength?: number;
  /** Default `estimatedTime` (seconds, written as manifest `Duration`). Default `0`. */
  estimatedTime?: number;
  /**
   * Default `startOnFirstRequest`. Default `true` (IIS: `False`): without a management call a fresh point
   * then accepts its first encoder, as most deployments want.
   */
  startOnFirstRequest?: boolean;
  /** Default `restartOnEncoderReconnect`. Default `false`. */
  restartOnEncoderReconnect?: boolean;
  /**
   * Default `formats`: the outputs besides Smooth, e.g. `'m3u8-aapl'` for HLS alone, `'smooth'` for
   * neither DASH nor HLS (see `outputFormats`). Default `''`: DASH and HLS.
   */
  formats?: string;
  /** Site-wide defaults for any `.isml` meta (by meta name); the top-level options above win. */
  settings?: SettingsOverrides;
  /**
   * Per-route overrides: each applies to the points below its `path` (relative to the mount point);
   * the most specific path wins, and a point's `.isml` overrides them all.
   */
  mappings?: Mapping[];
  /**
   * File that remembers which points were started, so they come back `Starting` after a restart;
   * `false` to keep no state. Default `<root>/.live-smooth-state.json`.
   */
  stateFile?: string | false;
  /** Folder of the live archives of points whose definition names no `archivePath`. Default `<root>/archives`. */
  archiveRoot?: string;
  /**
   * Bytes of archive writes that may wait for the disk, over every point. A disk that falls this far
   * behind stops the archives it cannot take (the points go on serving). Default 64 MiB.
   */
  archiveQueueBytes?: number;
  /**
   * ms between `fdatasync`s of an archive file being written: with the queue, what a power cut can lose.
   * Default `5000`.
   */
  archiveSyncInterval?: number;
  /**
   * How long a Started point whose encoders all disconnected (without end-of-stream) waits for a
   * reconnect before it stops, in ms; `0` waits forever. Default `60000`.
   */
  sourceLostTimeout?: number;
  /**
   * Byte budget of the fragments one publishing point holds, each counted with its bookkeeping
   * (1 KiB a fragment); the oldest go first. A disk store keeps this many bytes on disk, unless given
   * its own budget. Default 512 MiB.
   */
  maxBytesPerPoint?: number;
  /**
   * Byte budget of the whole origin in memory: stored fragments (with their bookkeeping), fragments
   * held back for the lookahead, packaged headers and manifests, and partly received ingest boxes, all
   * points together. Past it, the points holding the most let go of their oldest fragments; a box that
   * still cannot be held is refused (`503 ERR_BUDGET_EXCEEDED`). A disk store's files are not counted.
   * Default 1 GiB.
   */
  maxBytes?: number;
  /** Largest ingest box accepted (a fragment's mdat, the moov…). Default 32 MiB. */
  maxBoxSize?: number;
  /**
   * Ingest connections (encoder POSTs) the origin takes at once, over all points; more get `503`.
   * With `maxBoxSize` it bounds what partly received boxes can hold. Default `64`.
   */
  maxIngestConnections?: number;
  /** Ingest connections one publishing point takes at once; more get `503`. Default `16`. */
  maxIngestConnectionsPerPoint?: number;
  /**
   * Who may push (see {@link IngestAuthOptions}): tokens, HTTP Basic users, an address allow-list and a
   * hook; any that accepts lets the encoder in. Default: none, so only loopback may push and other peers
   * get `403`.
   */
  ingestAuth?: IngestAuthOptions;
  /** Manifest `MinorVersion`: `2` writes `r` runs, `0` one `c` per fragment (GStreamer needs 0). Default `0`. */
  minorVersion?: 0 | 2;
  /** `Access-Control-Allow-Origin` value, or `false` for no CORS headers. Default `'*'`. */
  cors?: string | false;
  /** `max-age` (seconds) of fragment responses, which never change once served. Default one year. */
  fragmentMaxAge?: number;
  /**
   * Close an ingest POST that sends nothing for this many ms (0 = never). Default `60000`. A POST of only
   * sparse tracks (captions, ad markers) is closed the same way but quietly: as Azure's encoders do
   * between events, it is expected to reopen with its header, and it never counts as a lost source.
   */
  ingestIdleTimeout?: number;
  /**
   * Longest a request for the newest fragment of a live track waits for the next one, in ms, so that its
   * tfrf announces it (VLC follows a live stream only through tfrf, and stops at an empty one). The wait
   * also ends three fragment durations after the newest fragment arrived, and when the track ends;
   * `0` answers at once. Default `10000`.
   */
  edgeWait?: number;
  /**
   * How long a `.isml` lookup (or an on-demand `.ism` presentation) is trusted before its files are
   * checked again, in ms. Default `1000`.
   */
  definitionCheckInterval?: number;
  /**
   * File handles the on-demand presentations (`.ism`) keep open at most, over all of them; the least
   * recently used idle one closes first, and a read waits when all are busy. Keep it well below the
   * process's descriptor limit (`ulimit -n`). Default `256`.
   */
  maxOpenFiles?: number;
  /**
   * On-demand presentations (`.ism`) kept open at most (their fragment index and client manifest in
   * memory); the least recently used closes first and is reopened on its next request. Default `256`.
   */
  maxOnDemandPresentations?: number;
  /** Clock for availability and Last-Modified times and the `Date` header of point responses. Default `Date`. */
  clock?: Clock;
  /** Store module: creates the fragment store of each publishing point. Default in-memory. */
  store?: FragmentStoreFactory;
  /** Manifest module. Default the Smooth client manifest with `minorVersion`. */
  manifest?: ManifestFormatter;
  /** Ingest module: creates a parser per ingest POST. Default the Smooth live ingest parser. */
  ingest?: IngestParserFactory;
}

/** Options after defaults and validation. */
export interface ResolvedOptions {
  /** Site-wide settings layer (over the IIS defaults). */
  readonly defaults: Readonly<SettingsOverrides>;
  /** Route layers, least specific first; `segments` are the folder names of `path`. */
  readonly mappings: ReadonlyArray<{ readonly segments: readonly string[]; readonly settings: Readonly<SettingsOverrides> }>;
  readonly stateFile: string | false | undefined;
  readonly archiveRoot: string | undefined;
  readonly archiveQueueBytes: number;
  readonly archiveSyncInterval: number;
  readonly sourceLostTimeout: number;
  readonly maxBytesPerPoint: number;
  readonly maxBytes: number;
  readonly maxBoxSize: number;
  readonly maxIngestConnections: number;
  readonly maxIngestConnectionsPerPoint: number;
  readonly ingestAuth: ResolvedIngestAuth;
  readonly cors: string | false;
  readonly fragmentMaxAge: number;
  readonly ingestIdleTimeout: number;
  readonly edgeWait: number;
  readonly definitionCheckInterval: number;
  readonly maxOpenFiles: number;
  readonly maxOnDemandPresentations: number;
  readonly clock: Clock;
  readonly store: FragmentStoreFactory;
  readonly manifest: ManifestFormatter;
  readonly ingest: IngestParserFactory;
}

function integer(name: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new SmoothError('ERR_INVALID_OPTION', `options.${name} must be an integer between ${min} and ${max}`);
  }
  return value;
}

function boolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new SmoothError('ERR_INVALID_OPTION', `options.${name} must be a boolean`);
  return value;
}

/** Validates a settings object (meta name → value) given as an option. */
function settingsOption(where: string, o: Record<string, unknown>, skip: readonly string[] = []): SettingsOverrides {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(o)) {
    if (skip.includes(name) || value === undefined) continue;
    if (!isMetaName(name)) throw new SmoothError('ERR_INVALID_OPTION', `${where}: unknown setting "${name}"`);
    try {
      out[name] = parseMeta(name, value);
    } catch (err) {
      throw new SmoothError('ERR_INVALID_OPTION', `${where}: ${isSmoothError(err) ? err.message : String(err)}`);
    }
  }
  return out as SettingsOverrides;
}

function mappingsOption(list: unknown): ResolvedOptions['mappings'] {
  if (list === undefined) return [];
  if (!Array.isArray(list)) throw new SmoothError('ERR_INVALID_OPTION', 'options.mappings must be an array');
  const out = list.map((m: unknown, i) => {
    const where = `options.mappings[${i}]`;
    if (!m || typeof m !== 'object' || typeof (m as Mapping).path !== 'string') {
      throw new SmoothError('ERR_INVALID_OPTION', `${where} needs a path`);
    }
    const segments = (m as Mapping).path.split('/').filter(Boolean);
    if (segments.some((seg) => seg === '..' || seg === '.' || /[\\\0]/.test(seg))) {
      throw new SmoothError('ERR_INVALID_OPTION', `${where}.path must be a plain folder path`);
    }
    return Object.freeze({ segments: Object.freeze(segments), settings: Object.freeze(settingsOption(where, m as Record<string, unknown>, ['path'])) });
  });
  // Least specific first, so later layers override earlier ones.
  return Object.freeze(out.sort((a, b) => a.segments.length - b.segments.length));
}

/**
 * The settings layers of the point at `rel` (`dirs/name.isml`): site defaults, then every mapping whose
 * path contains it, least specific first. The point's own `.isml` goes on top.
 */
export function layersFor(options: ResolvedOptions, rel: string): SettingsOverrides[] {
  const dirs = rel.split('/').slice(0, -1);
  const layers: SettingsOverrides[] = [options.defaults];
  for (const m of options.mappings) {
    if (m.segments.every((seg, i) => dirs[i] === seg)) layers.push(m.settings);
  }
  return layers;
}

/**
 * Applies defaults and validates. Unbounded memory cannot be configured: `maxBytes`,
 * `maxBytesPerPoint` and `maxBoxSize` must be finite and positive.
 * @throws SmoothError ERR_INVALID_OPTION naming the option
 */
export function resolveOptions(o: LiveSmoothOptions = {}): ResolvedOptions {
  if (o.minorVersion !== undefined && o.minorVersion !== 0 && o.minorVersion !== 2) {
    throw new SmoothError('ERR_INVALID_OPTION', 'options.minorVersion must be 0 or 2');
  }
  if (o.cors !== undefined && o.cors !== false && (typeof o.cors !== 'string' || /[\r\n]/.test(o.cors))) {
    throw new SmoothError('ERR_INVALID_OPTION', 'options.cors must be an origin string or false');
  }
  for (const name of ['store', 'ingest'] as const) {
    if (o[name] !== undefined && typeof o[name] !== 'function') {
      throw new SmoothError('ERR_INVALID_OPTION', `options.${name} must be a factory function`);
    }
  }
  // `?.`: plain-JS callers may pass null, which must fail here with the option's name, not as a TypeError.
  if (o.manifest !== undefined && typeof o.manifest?.render !== 'function') {
    throw new SmoothError('ERR_INVALID_OPTION', 'options.manifest must have a render(snapshot) method');
  }
  // Checked now: a bad clock would otherwise fail later, on the first request, as a bare TypeError.
  if (o.clock !== undefined && typeof o.clock?.now !== 'function') {
    throw new SmoothError('ERR_INVALID_OPTION', 'options.clock must have a now() method');
  }
  if (o.settings !== undefined && (typeof o.settings !== 'object' || o.settings === null)) {
    throw new SmoothError('ERR_INVALID_OPTION', 'options.settings must be an object of .isml settings');
  }
  if (o.formats !== undefined && typeof o.formats !== 'string') {
    throw new SmoothError('ERR_INVALID_OPTION', "options.formats must be a string of format names (e.g. 'mpd-time-csf m3u8-aapl')");
  }
  if (o.stateFile !== undefined && o.stateFile !== false && (typeof o.stateFile !== 'string' || o.stateFile === '')) {
    throw new SmoothError('ERR_INVALID_OPTION', 'options.stateFile must be a file path or false');
  }
  // The top-level shortcuts are typed options (numbers and booleans, not .isml text) and errors name them.
  const top = {
    startOnFirstRequest: true,
    ...(o.settings ?? {}),
    ...Object.fromEntries(
      (['lookaheadChunks', 'manifestWindowLength', 'estimatedTime'] as const)
        .filter((k) => o[k] !== undefined)
        .map((k) => [k, integer(k, o[k], 0, k === 'lookaheadChunks' ? MAX_LOOKAHEAD : 0xffffffff, 0)]),
    ),
    ...Object.fromEntries(
      (['startOnFirstRequest', 'restartOnEncoderReconnect'] as const)
        .filter((k) => o[k] !== undefined)
        .map((k) => [k, boolean(k, o[k])]),
    ),
    ...(o.formats !== undefined ? { formats: o.formats } : {}),
  };
  return Object.freeze({
    defaults: Object.freeze(settingsOption('options', top)),
    mappings: mappingsOption(o.mappings),
    stateFile: o.stateFile,
    archiveRoot: o.archiveRoot,
    archiveQueueBytes: integer('archiveQueueBytes', o.archiveQueueBytes, 1, Number.MAX_SAFE_INTEGER, 64 * 2 ** 20),
    archiveSyncInterval: integer('archiveSyncInterval', o.archiveSyncInterval, 0, 2 ** 31, 5000),
    sourceLostTimeout: integer('sourceLostTimeout', o.sourceLostTimeout, 0, 2 ** 31, 60000),
    maxBytesPerPoint: integer('maxBytesPerPoint', o.maxBytesPerPoint, 1, Number.MAX_SAFE_INTEGER, 512 * 2 ** 20),
    maxBytes: integer('maxBytes', o.maxBytes, 1, Number.MAX_SAFE_INTEGER, 2 ** 30),
    maxBoxSize: integer('maxBoxSize', o.maxBoxSize, 1024, 2 ** 31, 32 * 2 ** 20),
    maxIngestConnections: integer('maxIngestConnections', o.maxIngestConnections, 1, 100_000, 64),
    maxIngestConnectionsPerPoint: integer('maxIngestConnectionsPerPoint', o.maxIngestConnectionsPerPoint, 1, 100_000, 16),
    ingestAuth: ingestAuthOption(o.ingestAuth),
    cors: o.cors ?? '*',
    fragmentMaxAge: integer('fragmentMaxAge', o.fragmentMaxAge, 0, 2 ** 31, 31536000),
    ingestIdleTimeout: integer('ingestIdleTimeout', o.ingestIdleTimeout, 0, 2 ** 31, 60000),
    edgeWait: integer('edgeWait', o.edgeWait, 0, 60000, 10000),
    definitionCheckInterval: integer('definitionCheckInterval', o.definitionCheckInterval, 0, 2 ** 31, 1000),
    maxOpenFiles: integer('maxOpenFiles', o.maxOpenFiles, 1, 1_000_000, 256),
    maxOnDemandPresentations: integer('maxOnDemandPresentations', o.maxOnDemandPresentations, 1, 1_000_000, 256),
    clock: o.clock ?? Date,
    store: o.store ?? memoryStore,
    manifest: o.manifest ?? new SmoothManifestFormatter({ minorVersion: o.minorVersion ?? 0 }),
    ingest: o.ingest ?? smoothIngest,
  });
}
