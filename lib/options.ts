/**
 * Options of `liveSmooth(root, options)`: defaults, validation and the frozen resolved form.
 */
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
  /**
   * How long a Started point whose encoders all disconnected (without end-of-stream) waits for a
   * reconnect before it stops, in ms; `0` waits forever. Default `60000`.
   */
  sourceLostTimeout?: number;
  /** Byte budget of the fragments one publishing point holds; the oldest go first. Default 512 MiB. */
  maxBytesPerPoint?: number;
  /** Largest ingest box accepted (a fragment's mdat, the moov…). Default 32 MiB. */
  maxBoxSize?: number;
  /**
   * Ingest connections (encoder POSTs) the origin takes at once, over all points; more get `503`.
   * With `maxBoxSize` it bounds what partly received boxes can hold. Default `64`.
   */
  maxIngestConnections?: number;
  /** Ingest connections one publishing point takes at once; more get `503`. Default `16`. */
  maxIngestConnectionsPerPoint?: number;
  /** Manifest `MinorVersion`: `2` writes `r` runs, `0` one `c` per fragment (GStreamer needs 0). Default `0`. */
  minorVersion?: 0 | 2;
  /** `Access-Control-Allow-Origin` value, or `false` for no CORS headers. Default `'*'`. */
  cors?: string | false;
  /** `max-age` (seconds) of fragment responses, which never change once served. Default one year. */
  fragmentMaxAge?: number;
  /** Close an ingest POST that sends nothing for this many ms (0 = never). Default `60000`. */
  ingestIdleTimeout?: number;
  /**
   * Longest a request for the newest fragment of a live track waits for the next one, in ms, so that its
   * tfrf announces it (VLC follows a live stream only through tfrf, and stops at an empty one). The wait
   * also ends three fragment durations after the newest fragment arrived, and when the track ends;
   * `0` answers at once. Default `10000`.
   */
  edgeWait?: number;
  /** How long a `.isml` lookup is trusted before the file is checked again, in ms. Default `1000`. */
  definitionCheckInterval?: number;
  /** Clock for availability and Last-Modified times. Default `Date`. */
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
  readonly sourceLostTimeout: number;
  readonly maxBytesPerPoint: number;
  readonly maxBoxSize: number;
  readonly maxIngestConnections: number;
  readonly maxIngestConnectionsPerPoint: number;
  readonly cors: string | false;
  readonly fragmentMaxAge: number;
  readonly ingestIdleTimeout: number;
  readonly edgeWait: number;
  readonly definitionCheckInterval: number;
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
 * Applies defaults and validates. Unbounded memory cannot be configured: `maxBytesPerPoint` and
 * `maxBoxSize` must be finite and positive.
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
  };
  return Object.freeze({
    defaults: Object.freeze(settingsOption('options', top)),
    mappings: mappingsOption(o.mappings),
    stateFile: o.stateFile,
    sourceLostTimeout: integer('sourceLostTimeout', o.sourceLostTimeout, 0, 2 ** 31, 60000),
    maxBytesPerPoint: integer('maxBytesPerPoint', o.maxBytesPerPoint, 1, Number.MAX_SAFE_INTEGER, 512 * 2 ** 20),
    maxBoxSize: integer('maxBoxSize', o.maxBoxSize, 1024, 2 ** 31, 32 * 2 ** 20),
    maxIngestConnections: integer('maxIngestConnections', o.maxIngestConnections, 1, 100_000, 64),
    maxIngestConnectionsPerPoint: integer('maxIngestConnectionsPerPoint', o.maxIngestConnectionsPerPoint, 1, 100_000, 16),
    cors: o.cors ?? '*',
    fragmentMaxAge: integer('fragmentMaxAge', o.fragmentMaxAge, 0, 2 ** 31, 31536000),
    ingestIdleTimeout: integer('ingestIdleTimeout', o.ingestIdleTimeout, 0, 2 ** 31, 60000),
    edgeWait: integer('edgeWait', o.edgeWait, 0, 60000, 10000),
    definitionCheckInterval: integer('definitionCheckInterval', o.definitionCheckInterval, 0, 2 ** 31, 1000),
    clock: o.clock ?? Date,
    store: o.store ?? memoryStore,
    manifest: o.manifest ?? new SmoothManifestFormatter({ minorVersion: o.minorVersion ?? 0 }),
    ingest: o.ingest ?? smoothIngest,
  });
}
