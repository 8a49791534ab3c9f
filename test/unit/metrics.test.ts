/**
 * The Prometheus collectors against an origin whose point is fed the captured ffmpeg push (two video
 * bitrates + AAC, 1 s fragments) with an injected clock: the exposition text is parsed and every value
 * checked against what was pushed, asked for and done to the point. The values are read at scrape
 * time (nothing listens on the point), once per point per scrape, and the series follow the tracks the
 * point has now. The responses by status are counted on the point by the HTTP edge; here the counts are
 * made directly (the HTTP test makes them with requests).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Counter, Registry } from 'prom-client';
import { LiveSmoothOptions, METRIC_NAMES, Origin, PublishingPoint, createOrigin, diskStore, registerMetrics } from '../../lib';
import { SmoothIngestParser } from '../../lib/ingest/smooth';
import type { IngestSession } from '../../lib/point/session';
import { smoothErrorOf } from '../helpers/errors';
import { Series, parseExposition } from '../helpers/prometheus';
import { fixture, fragmentsOfRound } from '../helpers/raw-ingest';
import { isml } from '../helpers/server';

const F = fixture();
const SECOND = 10_000_000n;
/** Fragments per round of the fixture: video 100k, video 50k, audio; four times. */
const PER_ROUND = 12;
const KEYS = ['video/video/100000', 'video/video/50000', 'audio/audio/32000'];

/** A scrape, with lookups of one value and of all series of a metric. */
async function scrape(registry: Registry): Promise<{
  text: string;
  types: Map<string, string>;
  all: (name: string) => Series[];
  value: (name: string, labels?: Record<string, string>) => number | undefined;
  track: (name: string, key: string) => number | undefined;
}> {
  const text = await registry.metrics();
  const { series, types } = parseExposition(text);
  const all = (name: string): Series[] => series.filter((s) => s.name === name);
  const value = (name: string, labels: Record<string, string> = {}): number | undefined => {
    const found = all(name).filter((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v));
    if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} series`);
    return found[0]?.value;
  };
  return { text, types, all, value, track: (name, key) => value(name, { point: 'ch1.isml', track: key }) };
}

/** Sample bytes of a fixture fragment (`moof` + `mdat`): the `mdat` payload. */
function sampleBytes(fragment: Buffer): number {
  const moof = fragment.readUInt32BE(0);
  return fragment.readUInt32BE(moof) - 8;
}

const root = mkdtempSync(path.join(tmpdir(), 'live-smooth-metrics-'));
writeFileSync(path.join(root, 'ch1.isml'), isml({ startOnFirstRequest: 'true' }));
writeFileSync(path.join(root, 'refuse.isml'), isml({ startOnFirstRequest: 'true', encoderRestart: 'refuse' }));
const made: Origin[] = [];
afterAll(() => {
  for (const o of made) o.close();
  rmSync(root, { recursive: true, force: true });
});

interface Harness {
  origin: Origin;
  registry: Registry;
  clock: { now: number };
  point(rel?: string): Promise<PublishingPoint>;
  open(p: PublishingPoint): IngestSession;
  /** Writes round `r` of the fixture; the clock moves one second per fragment time, after each second's three fragments. */
  round(s: IngestSession, r: number): void;
}

function harness(options: LiveSmoothOptions = {}): Harness {
  const clock = { now: 1_000_000 };
  const origin = createOrigin(root, { stateFile: false, clock: { now: () => clock.now }, ...options });
  made.push(origin);
  const registry = registerMetrics(origin);
  return {
    origin,
    registry,
    clock,
    point: async (rel = 'ch1.isml') => (await origin.resolve(rel))!,
    open: (p) => {
      const s = p.openIngest('ch1', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
      s.write(F.header);
      return s;
    },
    round: (s, r) => {
      fragmentsOfRound(r).forEach((f, i) => {
        if (i % 3 === 0 && i > 0) clock.now += 1000;
        s.write(f);
      });
    },
  };
}

describe('registerMetrics', () => {
  it('reports an origin with no point, then an Idle point with no track', async () => {
    const h = harness();
    let m = await scrape(h.registry);
    expect(m.value('live_smooth_points')).toBe(0);
    expect(m.value('live_smooth_origin_listener_failures_total')).toBe(0);
    expect(m.all('live_smooth_point_state')).toEqual([]);

    await h.point();
    m = await scrape(h.registry);
    expect(m.value('live_smooth_points')).toBe(1);
    const states = Object.fromEntries(m.all('live_smooth_point_state').map((s) => [s.labels.state, s.value]));
    expect(states).toEqual({ Idle: 1, Starting: 0, Started: 0, Stopping: 0, Stopped: 0, ShuttingDown: 0, Error: 0 });
    expect(m.value('live_smooth_point_store_bytes', { point: 'ch1.isml' })).toBe(0);
    expect(m.value('live_smooth_point_connections', { point: 'ch1.isml' })).toBe(0);
    expect(m.value('live_smooth_point_failures_total', { point: 'ch1.isml', source: 'listener' })).toBe(0);
    expect(m.value('live_smooth_point_failures_total', { point: 'ch1.isml', source: 'store' })).toBe(0);
    for (const name of ['live_smooth_encoder_restarts_total', 'live_smooth_duplicate_fragments_dropped_total', 'live_smooth_encoders_refused_total']) {
      expect([name, m.value(name, { point: 'ch1.isml' })]).toEqual([name, 0]);
    }
    expect(m.all('live_smooth_track_ingest_fragments_total')).toEqual([]);
    for (const kind of ['stored', 'held', 'cached', 'partial']) {
      expect([kind, m.value('live_smooth_point_memory_bytes', { point: 'ch1.isml', kind })]).toEqual([kind, 0]);
    }
    expect(m.value('live_smooth_point_disk_bytes', { point: 'ch1.isml' })).toBe(0);
    expect(m.value('live_smooth_memory_bytes')).toBe(0);
    expect(m.value('live_smooth_memory_max_bytes')).toBe(h.origin.options.maxBytes);
    expect(m.value('live_smooth_archive_queue_max_bytes')).toBe(h.origin.options.archiveQueueBytes);
    expect(m.value('live_smooth_archives_total', { state: 'failed' })).toBe(0);
    expect(m.value('live_smooth_manifest_builds_total', { point: 'ch1.isml' })).toBe(0);
    expect(m.value('live_smooth_manifest_build_seconds_total', { point: 'ch1.isml' })).toBe(0);
    // Nothing answered yet: no series (statuses and codes appear as they are counted).
    expect(m.all('live_smooth_responses_total')).toEqual([]);
    expect(m.all('live_smooth_ingest_refusals_total')).toEqual([]);
    // Every metric is there with its HELP and TYPE, counters as counters.
    for (const name of METRIC_NAMES) {
      expect([name, m.types.get(name)]).toEqual([name, name.endsWith('_total') ? 'counter' : 'gauge']);
      expect(m.text).toContain(`# HELP ${name} `);
    }
  });

  it('reads ingest, timing, requests, store and connections of every track from the fed point', async () => {
    const h = harness();
    const p = await h.point();
    const s = h.open(p);
    h.round(s, 0);
    h.round(s, 1);
    const lastArrival = h.clock.now;
    h.clock.now += 2500;

    // Requests: one found, one not a fragment start (404), one past the newest fragment (412), on the 100k video.
    expect(p.lookup('video', 100000, [], 7n * SECOND).status).toBe('ok');
    expect(p.lookup('video', 100000, [], 12345n).status).toBe('not-found');
    expect(p.lookup('video', 100000, [], 9n * SECOND).status).toBe('not-yet');
    expect(p.lookup('audio', 32000, [], 9n * SECOND).status).toBe('not-yet');

    const m = await scrape(h.registry);
    const pushed = [...fragmentsOfRound(0), ...fragmentsOfRound(1)];
    const stats = p.trackStats;
    expect(stats.map((t) => t.key).sort()).toEqual([...KEYS].sort());
    KEYS.forEach((key, i) => {
      const mine = pushed.filter((_, j) => j % 3 === i);
      const t = stats.find((x) => x.key === key)!;
      expect({
        key,
        fragments: m.track('live_smooth_track_ingest_fragments_total', key),
        bytes: m.track('live_smooth_track_ingest_bytes_total', key),
        incoming: m.track('live_smooth_track_incoming_bits_per_second', key),
        age: m.track('live_smooth_track_last_fragment_age_seconds', key),
      }).toEqual({
        key,
        fragments: 8,
        bytes: mine.reduce((n, f) => n + sampleBytes(f), 0),
        incoming: t.incomingBitrate,
        age: 2.5,
      });
      expect(t.incomingBitrate).toBeGreaterThan(0);
      expect(t.lastArrival).toBe(lastArrival);
      // The labels name the track: its key, type and declared bitrate.
      const [series] = m.all('live_smooth_track_requests_total').filter((x) => x.labels.track === key);
      expect(series!.labels).toEqual({ point: 'ch1.isml', track: key, type: key.split('/')[0], bitrate: key.split('/')[2] });
    });
    // The newest fragment's media time in seconds, to the tick (audio 70080000 ticks: 7.008 s).
    expect(m.track('live_smooth_track_last_fragment_time_seconds', 'video/video/100000')).toBe(7);
    expect(m.track('live_smooth_track_last_fragment_time_seconds', 'audio/audio/32000')).toBe(7.008);

    expect(m.track('live_smooth_track_requests_total', 'video/video/100000')).toBe(3);
    expect(m.track('live_smooth_track_not_found_total', 'video/video/100000')).toBe(1);
    expect(m.track('live_smooth_track_not_yet_available_total', 'video/video/100000')).toBe(1);
    expect(m.track('live_smooth_track_requests_total', 'audio/audio/32000')).toBe(1);
    expect(m.track('live_smooth_track_not_yet_available_total', 'audio/audio/32000')).toBe(1);
    expect(m.track('live_smooth_track_requests_total', 'video/video/50000')).toBe(0);

    expect(m.value('live_smooth_point_state', { point: 'ch1.isml', state: 'Started' })).toBe(1);
    expect(m.value('live_smooth_point_state', { point: 'ch1.isml', state: 'Idle' })).toBe(0);
    expect(m.value('live_smooth_point_store_bytes', { point: 'ch1.isml' })).toBe(p.bytes);
    expect(p.bytes).toBeGreaterThan(0);
    expect(m.value('live_smooth_point_connections', { point: 'ch1.isml' })).toBe(1);

    // The encoder goes: no connection, no incoming bitrate, the age keeps growing.
    s.abort('disconnected');
    h.clock.now += 1000;
    const after = await scrape(h.registry);
    expect(after.value('live_smooth_point_connections', { point: 'ch1.isml' })).toBe(0);
    expect(after.track('live_smooth_track_incoming_bits_per_second', 'video/video/100000')).toBe(0);
    expect(after.track('live_smooth_track_last_fragment_age_seconds', 'video/video/100000')).toBe(3.5);
  });

  it('counts duplicates dropped, restarts, refused encoders and failures', async () => {
    const h = harness();
    const p = await h.point('refuse.isml');
    expect(p.settings.encoderRestart).toBe('refuse');
    const a = h.open(p);
    h.round(a, 0);
    h.round(a, 1);
    a.abort('disconnected');
    // A reconnect resends its last two fragments of every track: 6 duplicates.
    const b = h.open(p);
    for (const f of fragmentsOfRound(1).slice(PER_ROUND - 6)) b.write(f);
    b.abort('disconnected');
    // A restart from 0: refused (encoderRestart=refuse), counted as a restart and as refused.
    h.clock.now += 3000;
    const c = h.open(p);
    try {
      h.round(c, 0);
      throw new Error('the restart was accepted');
    } catch (error) {
      c.abort('error', error as never);
    }
    // A listener of the point and one of the origin that throw.
    p.on('fragment', () => {
      throw new Error('point listener');
    });
    h.origin.on('fragment', () => {
      throw new Error('origin listener');
    });
    const d = h.open(p);
    d.write(fragmentsOfRound(2)[0]!);

    const m = await scrape(h.registry);
    const labels = { point: 'refuse.isml' };
    expect(p.encoderCounts).toEqual({ restarts: 1, duplicatesDropped: 6, refused: 1 });
    expect(m.value('live_smooth_duplicate_fragments_dropped_total', labels)).toBe(6);
    expect(m.value('live_smooth_encoder_restarts_total', labels)).toBe(1);
    expect(m.value('live_smooth_encoders_refused_total', labels)).toBe(1);
    expect(m.value('live_smooth_point_failures_total', { ...labels, source: 'listener' })).toBe(p.failures.listener);
    expect(p.failures.listener).toBeGreaterThanOrEqual(1);
    expect(m.value('live_smooth_origin_listener_failures_total')).toBe(h.origin.failures);
    expect(h.origin.failures).toBeGreaterThanOrEqual(1);
    d.abort('disconnected');
  });

  it('reports memory by kind, which adds up to what the point counts in the byte budget, and manifest builds', async () => {
    const h = harness({ maxBytes: 64 * 2 ** 20 });
    const p = await h.point();
    const s = h.open(p);
    h.round(s, 0);
    h.round(s, 1);
    // Two manifests of the same content: one build. Half a fragment: partial bytes.
    p.manifest();
    p.manifest();
    s.write(fragmentsOfRound(2)[0]!.subarray(0, 100));

    const m = await scrape(h.registry);
    const labels = { point: 'ch1.isml' };
    const kinds = Object.fromEntries(m.all('live_smooth_point_memory_bytes').map((x) => [x.labels.kind, x.value]));
    const memory = p.memory;
    expect(kinds).toEqual({ stored: memory.stored, held: memory.held, cached: memory.cached, partial: memory.partial });
    expect(kinds.stored! + kinds.cached! + kinds.partial!).toBe(memory.total);
    expect(kinds.held).toBeGreaterThan(0); // the lookahead holds the newest fragments back
    expect(kinds.held).toBeLessThan(kinds.stored!);
    expect(kinds.cached).toBeGreaterThan(0);
    expect(kinds.partial).toBe(100);
    expect(m.value('live_smooth_point_disk_bytes', labels)).toBe(0);
    // One point: the origin's budget holds what it counts.
    expect(m.value('live_smooth_memory_bytes')).toBe(h.origin.memory.used);
    expect(h.origin.memory.used).toBe(memory.total);
    expect(m.value('live_smooth_memory_max_bytes')).toBe(64 * 2 ** 20);

    expect(m.value('live_smooth_manifest_builds_total', labels)).toBe(1);
    expect(m.value('live_smooth_manifest_build_seconds_total', labels)).toBe(p.manifestBuilds.seconds);
    expect(p.manifestBuilds.seconds).toBeGreaterThan(0);
    s.abort('disconnected');
  });

  it("reports a disk store's files apart from what it holds in memory", async () => {
    const folder = mkdtempSync(path.join(tmpdir(), 'live-smooth-metrics-disk-'));
    try {
      const h = harness({ store: diskStore({ folder }) });
      const p = await h.point();
      const s = h.open(p);
      h.round(s, 0);
      // The write queue drains to the files.
      for (let i = 0; i < 100 && p.memory.disk < p.bytes; i++) await new Promise((ok) => setTimeout(ok, 10));
      const m = await scrape(h.registry);
      expect(m.value('live_smooth_point_disk_bytes', { point: 'ch1.isml' })).toBe(p.bytes);
      expect(m.value('live_smooth_point_store_bytes', { point: 'ch1.isml' })).toBe(p.bytes);
      expect(p.bytes).toBeGreaterThan(0);
      expect(m.value('live_smooth_point_memory_bytes', { point: 'ch1.isml', kind: 'stored' })).toBe(p.memory.stored);
      expect(p.memory.stored).toBeLessThan(p.bytes);
      s.abort('disconnected');
      p.close();
    } finally {
      rmSync(folder, { recursive: true, force: true });
    }
  });

  it('reports the responses and refusals the edge counted on the point, by output, status and code', async () => {
    const h = harness();
    const p = await h.point();
    const other = await h.point('refuse.isml');
    for (let i = 0; i < 3; i++) p.responses.count('fragment', 200);
    p.responses.count('fragment', 412);
    p.responses.count('fragment', 304);
    p.responses.count('manifest', 200);
    p.responses.count('fragment_info', 404);
    p.responses.count('raw_fragment', 200);
    p.responses.count('other', 405);
    p.responses.count('ingest', 400);
    p.responses.refused('ERR_BAD_BOX');
    p.responses.count('ingest', 503);
    p.responses.refused('ERR_TOO_MANY_CONNECTIONS');
    p.responses.count('ingest', 500);
    p.responses.refused('internal');
    p.responses.count('ingest', 400);
    p.responses.refused('ERR_BAD_BOX');
    other.responses.count('ingest', 200);

    const m = await scrape(h.registry);
    const rows = (name: string): string[] => m.all(name).map((x) => `${Object.values(x.labels).join(' ')} ${x.value}`);
    expect(rows('live_smooth_responses_total')).toEqual([
      'ch1.isml manifest 200 1',
      'ch1.isml fragment 200 3',
      'ch1.isml fragment 304 1',
      'ch1.isml fragment 412 1',
      'ch1.isml fragment_info 404 1',
      'ch1.isml raw_fragment 200 1',
      'ch1.isml ingest 400 2',
      'ch1.isml ingest 500 1',
      'ch1.isml ingest 503 1',
      'ch1.isml other 405 1',
      'refuse.isml ingest 200 1',
    ]);
    expect(m.all('live_smooth_responses_total')[0]!.labels).toEqual({ point: 'ch1.isml', output: 'manifest', status: '200' });
    expect(rows('live_smooth_ingest_refusals_total')).toEqual([
      'ch1.isml ERR_BAD_BOX 2',
      'ch1.isml ERR_TOO_MANY_CONNECTIONS 1',
      'ch1.isml internal 1',
    ]);
    // Counters: a later scrape reads the totals, not the increments since the last.
    p.responses.count('fragment', 200);
    expect((await scrape(h.registry)).value('live_smooth_responses_total', { point: 'ch1.isml', output: 'fragment', status: '200' })).toBe(4);
  });

  it('drops the series of tracks the point no longer has, and keeps the state current', async () => {
    const h = harness();
    const p = await h.point();
    const s = h.open(p);
    h.round(s, 0);
    expect((await scrape(h.registry)).all('live_smooth_track_ingest_bytes_total')).toHaveLength(3);
    p.command('shutdown');
    const m = await scrape(h.registry);
    expect(m.value('live_smooth_point_state', { point: 'ch1.isml', state: 'Idle' })).toBe(1);
    expect(m.value('live_smooth_point_state', { point: 'ch1.isml', state: 'Started' })).toBe(0);
    for (const name of METRIC_NAMES.filter((n) => n.startsWith('live_smooth_track_'))) expect([name, m.all(name)]).toEqual([name, []]);
    expect(m.value('live_smooth_point_store_bytes', { point: 'ch1.isml' })).toBe(0);
  });

  it('costs nothing until scraped: no listener added; a scrape reads each point once', async () => {
    const clock = { now: 1_000_000 };
    const origin = createOrigin(root, { stateFile: false, clock: { now: () => clock.now } });
    made.push(origin);
    const p = (await origin.resolve('ch1.isml'))!;
    const events = ['fragment', 'state', 'trackHeader', 'failure'] as const;
    const before = events.map((e) => [origin.listenerCount(e), p.listenerCount(e)]);
    const registry = registerMetrics(origin);
    expect(events.map((e) => [origin.listenerCount(e), p.listenerCount(e)])).toEqual(before);

    const reads = jest.spyOn(PublishingPoint.prototype, 'trackStats', 'get');
    // The memory is summed over the tracks on each read: once per scrape too, whatever the number of kinds.
    const memoryReads = jest.spyOn(PublishingPoint.prototype, 'memory', 'get');
    try {
      await registry.metrics();
      expect(reads).toHaveBeenCalledTimes(1);
      expect(memoryReads).toHaveBeenCalledTimes(1);
      await registry.metrics();
      expect(reads).toHaveBeenCalledTimes(2);
      expect(memoryReads).toHaveBeenCalledTimes(2);
    } finally {
      reads.mockRestore();
      memoryReads.mockRestore();
    }
  });

  it("registers on the host's registry beside its metrics; once per registry and origin", async () => {
    const origin = createOrigin(root, { stateFile: false });
    made.push(origin);
    const registry = new Registry();
    const mine = new Counter({ name: 'host_requests_total', help: 'the host', registers: [registry] });
    mine.inc(3);
    expect(registerMetrics(origin, { registry })).toBe(registry);
    expect(registerMetrics(origin, { registry })).toBe(registry);
    await origin.resolve('ch1.isml');
    const m = await scrape(registry);
    expect(m.value('host_requests_total')).toBe(3);
    expect(m.value('live_smooth_points')).toBe(1);

    const other = createOrigin(root, { stateFile: false });
    made.push(other);
    expect(smoothErrorOf(() => registerMetrics(other, { registry })).code).toBe('ERR_INVALID_OPTION');
    const taken = new Registry();
    new Counter({ name: 'live_smooth_points', help: 'a clash', registers: [taken] });
    expect(smoothErrorOf(() => registerMetrics(other, { registry: taken })).message).toContain('live_smooth_points');
    expect(smoothErrorOf(() => registerMetrics(root as never)).code).toBe('ERR_INVALID_OPTION');
  });
});
