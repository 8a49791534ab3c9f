/**
 * Prometheus metrics of an origin, with `prom-client`: collectors registered on a Registry (a new one,
 * or the host's) that read the points' statistics when the registry is scraped, once per scrape. Most
 * values are ones the points keep anyway (the management API shows the same numbers); the responses
 * by status and the refused encoders are counted on the point by the HTTP edge where it writes each
 * status (one map update, no listener). No prom-client call happens outside a scrape.
 *
 * Labels stay bounded: `point` (the `.isml` path) on point metrics, plus `track` (its key), `type` and
 * `bitrate` on track metrics, so a registry holds at most points × tracks series per track metric
 * (a point holds at most 64 tracks). The other labels take closed sets of values: `state`, memory
 * `kind`, response `output` and `status` (the statuses the edge writes), refusal `code` (the error
 * codes). The HTTP edge that serves the text format is `http/metrics.ts`.
 */
import { Counter, Gauge, Registry } from 'prom-client';
import { SmoothError } from './errors';
import { Origin } from './origin';
import type { PointMemory, PointState, PublishingPoint } from './point';
import type { TrackStats } from './point/stats';

/** Options of {@link registerMetrics}. */
export interface MetricsOptions {
  /** The registry to register on (the host's, e.g. one with its own metrics). Default: a new `Registry`. */
  registry?: Registry;
}

/** Every state a point can be in: `live_smooth_point_state` has one series per state, 1 for the current one. */
const STATES: readonly PointState[] = ['Idle', 'Starting', 'Started', 'Stopping', 'Stopped', 'ShuttingDown', 'Error'];

const POINT_LABELS = ['point'] as const;
const TRACK_LABELS = ['point', 'track', 'type', 'bitrate'] as const;

type PointLabels = Record<(typeof POINT_LABELS)[number], string>;
type TrackLabels = Record<(typeof TRACK_LABELS)[number], string>;

/** What the point holds in process memory, by `kind` of `live_smooth_point_memory_bytes`. */
const MEMORY_KINDS = ['stored', 'held', 'cached', 'partial'] as const satisfies ReadonlyArray<keyof PointMemory>;

/** What one scrape reads of a point. */
interface PointSample {
  point: PublishingPoint;
  labels: PointLabels;
  /** Summed over the tracks on each read: read once per scrape. */
  memory: PointMemory;
  tracks: Array<{ stats: TrackStats; labels: TrackLabels }>;
}

/** What one scrape reads of the origin: each point's statistics are read once, whatever the number of metrics. */
interface Sample {
  now: number;
  memory: { used: number; max: number };
  points: PointSample[];
}

/** A metric read from a sample: its value for a point or a track, or `undefined` for no series. */
interface Definition<S> {
  name: string;
  help: string;
  kind: 'counter' | 'gauge';
  value: (s: S, now: number) => number | undefined;
}

/** Media time in seconds, exact to the tick for times up to 2^53 seconds (times exceed 2^53 ticks). */
function seconds(ticks: bigint, timescale: number): number {
  const ts = BigInt(timescale);
  return Number(ticks / ts) + Number(ticks % ts) / timescale;
}

const POINT_METRICS: ReadonlyArray<Definition<PointSample>> = [
  { name: 'live_smooth_point_store_bytes', kind: 'gauge', help: 'Bytes the store holds for the point.', value: (p) => p.point.bytes },
  {
    name: 'live_smooth_point_disk_bytes',
    kind: 'gauge',
    help: "Bytes the point's store keeps outside process memory (a disk store's files).",
    value: (p) => p.memory.disk,
  },
  {
    name: 'live_smooth_point_connections',
    kind: 'gauge',
    help: 'Open ingest connections of the point (over all its streams).',
    value: (p) => p.point.streams.reduce((n, s) => n + s.connections, 0),
  },
  {
    name: 'live_smooth_encoder_restarts_total',
    kind: 'counter',
    help: 'Encoders whose times went back beyond the resend window, whatever encoderRestart did with them.',
    value: (p) => p.point.encoderCounts.restarts,
  },
  {
    name: 'live_smooth_duplicate_fragments_dropped_total',
    kind: 'counter',
    help: 'Fragments dropped because the track already had that time or a later one (resends, redundant encoders).',
    value: (p) => p.point.encoderCounts.duplicatesDropped,
  },
  {
    name: 'live_smooth_encoders_refused_total',
    kind: 'counter',
    help: 'Encoders refused for their times: a refused restart, a redundant encoder that fell behind, a time jump.',
    value: (p) => p.point.encoderCounts.refused,
  },
  {
    name: 'live_smooth_manifest_builds_total',
    kind: 'counter',
    help: 'Manifests the point built (one per change a request saw), since it was created.',
    value: (p) => p.point.manifestBuilds.builds,
  },
  {
    name: 'live_smooth_manifest_build_seconds_total',
    kind: 'counter',
    help: 'Seconds the point spent building manifests, since it was created.',
    value: (p) => p.point.manifestBuilds.seconds,
  },
];

const TRACK_METRICS: ReadonlyArray<Definition<TrackStats>> = [
  {
    name: 'live_smooth_track_ingest_fragments_total',
    kind: 'counter',
    help: 'Fragments received for the track (held back or published) in the current session.',
    value: (t) => t.fragments,
  },
  {
    name: 'live_smooth_track_ingest_bytes_total',
    kind: 'counter',
    help: 'Sample bytes received for the track in the current session.',
    value: (t) => t.bytes,
  },
  {
    name: 'live_smooth_track_incoming_bits_per_second',
    kind: 'gauge',
    help: 'Measured arrival rate of the track over its last fragments, bits per second; 0 without an encoder.',
    value: (t) => t.incomingBitrate,
  },
  {
    name: 'live_smooth_track_last_fragment_time_seconds',
    kind: 'gauge',
    help: 'Media start time of the newest fragment received, seconds (ticks over the timescale).',
    value: (t) => (t.lastFragmentTime === undefined ? undefined : seconds(t.lastFragmentTime, t.info.timescale)),
  },
  {
    name: 'live_smooth_track_last_fragment_age_seconds',
    kind: 'gauge',
    help: 'Seconds since the newest fragment of the track arrived (wall clock).',
    value: (t, now) => (t.lastArrival === undefined ? undefined : Math.max(0, now - t.lastArrival) / 1000),
  },
  {
    name: 'live_smooth_track_requests_total',
    kind: 'counter',
    help: 'Fragment requests that named the track, whatever their answer.',
    value: (t) => t.requests,
  },
  {
    name: 'live_smooth_track_not_found_total',
    kind: 'counter',
    help: 'Fragment requests of the track answered 404 (outside the window, or not a fragment start).',
    value: (t) => t.notFound,
  },
  {
    name: 'live_smooth_track_not_yet_available_total',
    kind: 'counter',
    help: 'Fragment requests of the track answered 412 (past the newest fragment of a live track).',
    value: (t) => t.notYetAvailable,
  },
];

/** Every metric name {@link registerMetrics} registers. */
export const METRIC_NAMES: readonly string[] = [
  'live_smooth_points',
  'live_smooth_origin_listener_failures_total',
  'live_smooth_memory_bytes',
  'live_smooth_memory_max_bytes',
  'live_smooth_archive_queue_bytes',
  'live_smooth_archive_queue_max_bytes',
  'live_smooth_archive_written_bytes_total',
  'live_smooth_archives_writing',
  'live_smooth_archives_total',
  'live_smooth_point_state',
  'live_smooth_point_memory_bytes',
  ...POINT_METRICS.map((m) => m.name),
  'live_smooth_point_failures_total',
  'live_smooth_responses_total',
  'live_smooth_ingest_refusals_total',
  ...TRACK_METRICS.map((m) => m.name),
];

/** The origin each registry reports on: registering again with the same origin is a no-op. */
const registered = new WeakMap<Registry, Origin>();

/**
 * Registers the metrics of `origin` on a registry and returns it; the values are read from the points
 * each time the registry is scraped (`await registry.metrics()`). Registering the same origin on the
 * same registry again changes nothing.
 * @throws SmoothError ERR_INVALID_OPTION when `origin` is not an origin, or the registry already has
 *   one of the metrics (another origin's, or a host metric of the same name)
 */
export function registerMetrics(origin: Origin, options?: MetricsOptions): Registry {
  if (!(origin instanceof Origin)) {
    throw new SmoothError('ERR_INVALID_OPTION', 'the metrics need the origin (createOrigin(root)) or the liveSmooth handler that serves it');
  }
  const registry = options?.registry ?? new Registry();
  if (!(registry instanceof Registry)) throw new SmoothError('ERR_INVALID_OPTION', 'options.registry must be a prom-client Registry');
  const known = registered.get(registry);
  if (known === origin) return registry;
  if (known) throw new SmoothError('ERR_INVALID_OPTION', 'options.registry already reports on another origin');
  const taken = METRIC_NAMES.find((name) => registry.getSingleMetric(name) !== undefined);
  if (taken) throw new SmoothError('ERR_INVALID_OPTION', `options.registry already has a metric named ${taken}`);

  // One reading of the points per scrape: prom-client calls every collect function in the same
  // synchronous pass, so the sample is dropped at the next microtask, before any later scrape.
  let sample: Sample | undefined;
  const read = (): Sample => {
    if (sample) return sample;
    const points = origin.points().map((point): PointSample => {
      const labels = { point: point.path };
      return {
        point,
        labels,
        memory: point.memory,
        tracks: point.trackStats.map((stats) => ({
          stats,
          labels: { point: point.path, track: stats.key, type: stats.info.type, bitrate: String(stats.info.bitrate) },
        })),
      };
    });
    sample = { now: origin.options.clock.now(), memory: origin.memory, points };
    queueMicrotask(() => (sample = undefined));
    return sample;
  };

  const registers = [registry];
  /** A counter or gauge whose series are set anew from the sample at each scrape. */
  const metric = <L extends string>(
    kind: 'counter' | 'gauge',
    name: string,
    help: string,
    labelNames: readonly L[],
    fill: (set: (labels: Record<L, string>, value: number) => void, s: Sample) => void,
  ): void => {
    if (kind === 'counter') {
      new Counter<L>({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          fill((labels, value) => this.inc(labels, value), read());
        },
      });
    } else {
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          fill((labels, value) => this.set(labels, value), read());
        },
      });
    }
  };

  new Gauge({
    name: 'live_smooth_points',
    help: 'Publishing points the origin has loaded (requested, pushed to or managed since it started).',
    registers,
    collect() {
      this.set(read().points.length);
    },
  });
  new Counter({
    name: 'live_smooth_origin_listener_failures_total',
    help: "Listeners of the origin's events that threw or rejected (those of a point count in live_smooth_point_failures_total).",
    registers,
    collect() {
      this.reset();
      this.inc(origin.failures);
    },
  });
  metric('gauge', 'live_smooth_memory_bytes', "Bytes the origin's points hold in memory, as its byte budget counts them.", [], (set, s) => {
    set({}, s.memory.used);
  });
  metric('gauge', 'live_smooth_memory_max_bytes', "The origin's byte budget (the maxBytes option).", [], (set, s) => {
    set({}, s.memory.max);
  });
  metric('gauge', 'live_smooth_archive_queue_bytes', 'Bytes of live archive writes waiting for the disk.', [], (set) => {
    set({}, origin.archiver.queue.pending);
  });
  metric('gauge', 'live_smooth_archive_queue_max_bytes', 'Bound of the archive write queue (the archiveQueueBytes option).', [], (set) => {
    set({}, origin.archiver.queue.max);
  });
  metric('counter', 'live_smooth_archive_written_bytes_total', 'Bytes the live archives wrote to disk.', [], (set) => {
    set({}, origin.archiver.queue.written);
  });
  metric('gauge', 'live_smooth_archives_writing', 'Live archive presentations being written.', [], (set) => {
    set({}, origin.archiver.counts.writing);
  });
  metric('counter', 'live_smooth_archives_total', 'Live archive presentations that ended, by state: finished or failed.', ['state'], (set) => {
    const c = origin.archiver.counts;
    set({ state: 'finished' }, c.finished);
    set({ state: 'failed' }, c.failed);
  });
  metric('gauge', 'live_smooth_point_state', 'State of the point: 1 for the current state, 0 for the others.', ['point', 'state'], (set, s) => {
    for (const p of s.points) {
      const current = p.point.state;
      for (const state of STATES) set({ point: p.labels.point, state }, state === current ? 1 : 0);
    }
  });
  metric(
    'gauge',
    'live_smooth_point_memory_bytes',
    'Bytes the point holds in process memory, by kind: stored fragments (stored), of them those held back for the lookahead (held), ' +
      'packaged headers and the manifest (cached), boxes received in part (partial).',
    ['point', 'kind'],
    (set, s) => {
      for (const p of s.points) for (const kind of MEMORY_KINDS) set({ point: p.labels.point, kind }, p.memory[kind]);
    },
  );
  for (const m of POINT_METRICS) {
    metric(m.kind, m.name, m.help, POINT_LABELS, (set, s) => {
      for (const p of s.points) {
        const v = m.value(p, s.now);
        if (v !== undefined) set(p.labels, v);
      }
    });
  }
  metric(
    'counter',
    'live_smooth_point_failures_total',
    'Failures outside the media path: listeners of the point that threw (source="listener"), store calls that failed (source="store").',
    ['point', 'source'],
    (set, s) => {
      for (const p of s.points) {
        const f = p.point.failures;
        set({ point: p.labels.point, source: 'listener' }, f.listener);
        set({ point: p.labels.point, source: 'store' }, f.store);
      }
    },
  );
  metric(
    'counter',
    'live_smooth_responses_total',
    'Responses to requests that reached the point, by output (manifest, fragment, fragment_info, raw_fragment, ingest, other) and status.',
    ['point', 'output', 'status'],
    (set, s) => {
      for (const p of s.points) {
        for (const r of p.point.responses.responses()) set({ point: p.labels.point, output: r.output, status: String(r.status) }, r.count);
      }
    },
  );
  metric(
    'counter',
    'live_smooth_ingest_refusals_total',
    'Encoder POSTs the point refused, by error code (internal for an unexpected failure).',
    ['point', 'code'],
    (set, s) => {
      for (const p of s.points) for (const r of p.point.responses.refusals()) set({ point: p.labels.point, code: r.code }, r.count);
    },
  );
  for (const m of TRACK_METRICS) {
    metric(m.kind, m.name, m.help, TRACK_LABELS, (set, s) => {
      for (const p of s.points) {
        for (const t of p.tracks) {
          const v = m.value(t.stats, s.now);
          if (v !== undefined) set(t.labels, v);
        }
      }
    });
  }
  registered.set(registry, origin);
  return registry;
}
