/**
 * Options of `liveSmooth(root, options)`: defaults, validation and the frozen resolved form.
 */
import { MAX_LOOKAHEAD, PointSettings } from './definition';
import { SmoothError } from './errors';
import type { IngestParserFactory } from './ingest/parser';
import { smoothIngest } from './ingest/parser';
import { SmoothManifestFormatter } from './manifest/smooth';
import type { ManifestFormatter } from './manifest/types';
import { memoryStore } from './store/memory';
import type { FragmentStoreFactory } from './store/types';

/** A source of wall-clock time in ms; injected so tests can control time. */
export interface Clock {
  now(): number;
}

/** Options of `liveSmooth(root, options)`. Every option is optional; defaults are listed per option. */
export interface LiveSmoothOptions {
  /** Default `lookaheadChunks` for points whose `.isml` does not set it. Default `2`. */
  lookaheadChunks?: number;
  /** Default `manifestWindowLength` (DVR window, seconds; 0 = whole event). Default `0`. */
  manifestWindowLength?: number;
  /** Default `estimatedTime` (seconds, written as manifest `Duration`). Default `0`. */
  estimatedTime?: number;
  /** Default `startOnFirstRequest`. Default `false`. */
  startOnFirstRequest?: boolean;
  /** Default `restartOnEncoderReconnect`. Default `false`. */
  restartOnEncoderReconnect?: boolean;
  /** Byte budget of the fragments one publishing point holds; the oldest go first. Default 512 MiB. */
  maxBytesPerPoint?: number;
  /** Largest ingest box accepted (a fragment's mdat, the moov…). Default 32 MiB. */
  maxBoxSize?: number;
  /** Manifest `MinorVersion`: `2` writes `r` runs, `0` one `c` per fragment (GStreamer needs 0). Default `0`. */
  minorVersion?: 0 | 2;
  /** `Access-Control-Allow-Origin` value, or `false` for no CORS headers. Default `'*'`. */
  cors?: string | false;
  /** `max-age` (seconds) of fragment responses, which never change once served. Default one year. */
  fragmentMaxAge?: number;
  /** Close an ingest POST that sends nothing for this many ms (0 = never). Default `60000`. */
  ingestIdleTimeout?: number;
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
  readonly defaults: Readonly<PointSettings>;
  readonly maxBytesPerPoint: number;
  readonly maxBoxSize: number;
  readonly cors: string | false;
  readonly fragmentMaxAge: number;
  readonly ingestIdleTimeout: number;
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

function boolean(name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new SmoothError('ERR_INVALID_OPTION', `options.${name} must be a boolean`);
  return value;
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
  return Object.freeze({
    defaults: Object.freeze({
      title: undefined,
      lookaheadChunks: integer('lookaheadChunks', o.lookaheadChunks, 0, MAX_LOOKAHEAD, 2),
      manifestWindowLength: integer('manifestWindowLength', o.manifestWindowLength, 0, 0xffffffff, 0),
      estimatedTime: integer('estimatedTime', o.estimatedTime, 0, 0xffffffff, 0),
      startOnFirstRequest: boolean('startOnFirstRequest', o.startOnFirstRequest, false),
      restartOnEncoderReconnect: boolean('restartOnEncoderReconnect', o.restartOnEncoderReconnect, false),
    }),
    maxBytesPerPoint: integer('maxBytesPerPoint', o.maxBytesPerPoint, 1, Number.MAX_SAFE_INTEGER, 512 * 2 ** 20),
    maxBoxSize: integer('maxBoxSize', o.maxBoxSize, 1024, 2 ** 31, 32 * 2 ** 20),
    cors: o.cors ?? '*',
    fragmentMaxAge: integer('fragmentMaxAge', o.fragmentMaxAge, 0, 2 ** 31, 31536000),
    ingestIdleTimeout: integer('ingestIdleTimeout', o.ingestIdleTimeout, 0, 2 ** 31, 60000),
    definitionCheckInterval: integer('definitionCheckInterval', o.definitionCheckInterval, 0, 2 ** 31, 1000),
    clock: o.clock ?? Date,
    store: o.store ?? memoryStore,
    manifest: o.manifest ?? new SmoothManifestFormatter({ minorVersion: o.minorVersion ?? 0 }),
    ingest: o.ingest ?? smoothIngest,
  });
}
