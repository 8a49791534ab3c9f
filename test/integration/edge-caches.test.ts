/**
 * live-smooth behind the edge caches people run: nginx (`proxy_cache`) and Varnish, each from its
 * example configuration in examples/edge/, and `liveSmooth.edge`. One origin, fed in real time by the
 * simulated encoder, listens on one port per edge and notes every request each edge made; 50 simulated
 * players (Smooth, DASH and HLS, at one bitrate or switching, plus probers that ask for fragments before
 * they exist) play 30 s through each edge, all three edges at once. Counts only, no timings: each
 * complete fragment or segment reached the origin at most once per edge, manifests no more often than
 * their lifetime allows, not-yet answers (412, 404) were never kept past a second, `no-store` answers
 * never came from a cache, players saw no error besides not-yet answers to the probers, and no encoder
 * can push through an edge. Meanwhile the examples' alternative (ingest passed through nginx and
 * Varnish) takes an authenticated push to another origin, and refuses one without credentials.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import express from 'express';
import { createOrigin, liveSmooth } from '../../lib';
import { startEncoder } from '../../lib/encoder';
import {
  AUDIENCE,
  type Audience,
  type EdgeAdapter,
  type EdgeRun,
  type OriginRecord,
  type Resource,
  cacheable,
  classify,
  immutable,
  maxAge,
  now,
  summarize,
  watch,
} from '../helpers/edge-load';
import { type RunningEdge, nginxPath, startHandler, startNginx, startVarnish, varnishdPath } from '../helpers/edges';
import { isml, liveServer } from '../helpers/server';
import { type Outcome, outcome, settle } from '../helpers/settle';
import { withTool } from '../helpers/tools';

const SECONDS = Number(process.env.EDGE_SECONDS ?? 30);
const SAMPLE = path.join(__dirname, '..', '..', 'examples', 'media', 'sample.ismv');
/** Longest a not-yet answer may be kept (what the examples promise), and what the edge needs to pass it on. */
const NOT_YET_MS = 1000;
const SLACK_MS = 500;

type Edge = EdgeAdapter & { tool: string; path: string | undefined };

const EDGES: Edge[] = [
  { name: 'nginx', tool: 'nginx', path: nginxPath(), start: (o) => startNginx(o) },
  { name: 'varnish', tool: 'varnishd', path: varnishdPath(), start: (o) => startVarnish(o) },
  {
    name: 'liveSmooth.edge',
    tool: 'liveSmooth.edge',
    path: 'lib', // part of the library: always there
    // Mounted as the README mounts it, in front of the origin's mount point.
    start: (o) => {
      const handler = liveSmooth.edge({ upstream: `http://${o.host}:${o.port}/live` });
      const app = express();
      app.use('/live', handler);
      return startHandler('liveSmooth.edge', app, () => handler.close());
    },
  },
];

/** The edges whose examples offer ingest through the edge, as their comments say to enable it. */
const PASSING: Edge[] = [
  { name: 'nginx', tool: 'nginx', path: nginxPath(), start: (o) => startNginx(o, { passIngest: true }) },
  { name: 'varnish', tool: 'varnishd', path: varnishdPath(), start: (o) => startVarnish(o, { passIngest: true }) },
];
const TOKEN = 'edge-ingest-token-0123456789';

interface Passed {
  /** The answer to a push without credentials. */
  refused: number;
  /** Fragments the origin stored from the push with a token. */
  stored: number;
}

/**
 * Encoders pushing through each edge configured to pass ingest, to an origin that wants a token: one
 * with it (some fragments must arrive), one without (refused by the origin, since the edge forwarded it).
 */
async function passThrough(): Promise<Map<string, Outcome<Passed>>> {
  const dir = mkdtempSync(path.join(tmpdir(), 'live-smooth-edge-ingest-'));
  const edges = PASSING.filter((e) => e.path);
  for (const e of edges) writeFileSync(path.join(dir, `${e.name}.isml`), isml());
  const origin = createOrigin(dir, { stateFile: false, ingestAuth: { tokens: [TOKEN] } });
  const stored = new Map<string, number>();
  origin.on('fragment', (e) => stored.set(e.point, (stored.get(e.point) ?? 0) + 1));
  const app = express();
  app.use('/live', liveSmooth(origin));
  const server = liveServer(app);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const upstream = { host: '127.0.0.1', port: (server.address() as { port: number }).port };
  try {
    const results = await Promise.all(
      edges.map((e) =>
        settle(
          (async (): Promise<Passed> => {
            const edge = await e.start(upstream);
            try {
              const point = `${edge.url}/live/${e.name}.isml`;
              const anonymous = await fetch(`${point}/Streams(anonymous)`, { method: 'POST', body: Buffer.alloc(64) });
              await anonymous.arrayBuffer();
              const encoder = await startEncoder({ url: point, files: [SAMPLE], token: TOKEN, backlog: 8, streamId: 'through' });
              try {
                for (const end = Date.now() + 15_000; (stored.get(`${e.name}.isml`) ?? 0) < 12 && Date.now() < end; ) {
                  await new Promise((ok) => setTimeout(ok, 100));
                }
              } finally {
                await encoder.stop();
              }
              return { refused: anonymous.status, stored: stored.get(`${e.name}.isml`) ?? 0 };
            } finally {
              await edge.stop();
            }
          })(),
        ),
      ),
    );
    return new Map(edges.map((e, i) => [e.name, results[i]!]));
  } finally {
    origin.close();
    server.closeAllConnections();
    await new Promise((ok) => server.close(ok));
    rmSync(dir, { recursive: true, force: true });
  }
}

let passing: Promise<Outcome<Map<string, Outcome<Passed>>>> | undefined;
let audience: Audience | undefined;
let failure: unknown;
/** When the origin stored each fragment: `<track key>@<time>` → wall-clock ms. */
const stored = new Map<string, number>();
let root: string | undefined;
let closeOrigin = (): void => undefined;

beforeAll(async () => {
  // Beside the audience, not after it: the test's time stays the audience's.
  passing = settle(passThrough());
  try {
    root = mkdtempSync(path.join(tmpdir(), 'live-smooth-edges-'));
    writeFileSync(path.join(root, 'ch1.isml'), isml());
    const origin = createOrigin(root, { stateFile: false });
    closeOrigin = () => origin.close();
    origin.on('fragment', (e) => {
      const key = `${e.track}@${e.fragment.time}`;
      if (!stored.has(key)) stored.set(key, now());
    });
    const app = express();
    app.use('/live', liveSmooth(origin));
    audience = await watch({
      origin: app,
      async encode(point) {
        const encoder = await startEncoder({ url: point, files: [SAMPLE], backlog: 10, streamId: 'edge' });
        return () => encoder.stop();
      },
      edges: EDGES.filter((e) => e.path),
      players: AUDIENCE,
      duration: SECONDS * 1000,
      ramp: 3000,
    });
    report(audience);
  } catch (err) {
    failure = err;
  }
  await passing;
}, (SECONDS + 90) * 1000);

afterAll(async () => {
  await audience?.stop();
  closeOrigin();
  if (root) rmSync(root, { recursive: true, force: true });
}, 30_000);

const MANIFESTS = new Set<Resource>(['manifest', 'mpd', 'hls-master', 'hls-media']);
const MEDIA = new Set<Resource>(['fragment', 'segment']);

function records(): OriginRecord[] {
  if (failure) throw failure;
  return audience!.records;
}

/** The origin's GETs from `edge` of the `kinds` of resource, by URL. */
function byUrl(edge: string, kinds: Set<Resource>): Map<string, OriginRecord[]> {
  const out = new Map<string, OriginRecord[]>();
  for (const r of records()) {
    if (r.listener !== edge || r.method !== 'GET' || !kinds.has(classify(r.url))) continue;
    const list = out.get(r.url);
    if (list) list.push(r);
    else out.set(r.url, [r]);
  }
  return out;
}

/**
 * How many cacheable answers the edge may have fetched for one URL: one per lifetime over the span it
 * was fetched in, one more at each end, and one more after each answer that could not be kept (the
 * origin's lifetime for a URL may change from answer to answer).
 */
function allowed(list: OriginRecord[]): { count: number; limit: number } {
  const kept = list.filter(cacheable);
  if (kept.length === 0) return { count: 0, limit: 0 };
  const shortest = Math.min(...kept.map((r) => maxAge(r.cacheControl)));
  const span = kept[kept.length - 1]!.received - kept[0]!.received;
  return { count: kept.length, limit: Math.floor(span / (shortest * 1000)) + 2 + (list.length - kept.length) };
}

/** The stored-fragment key of a video fragment or segment URL, for the not-yet checks. */
function fragmentKey(url: string): string | undefined {
  const smooth = /QualityLevels\((\d+)\)\/Fragments\(video=(\d+)\)/.exec(url);
  if (smooth) return `video/video/${smooth[1]}@${smooth[2]}`;
  const cmaf = /cmaf\/video=(\d+)\/(\d+)\.m4s/.exec(url);
  if (cmaf) return `video/video/${cmaf[1]}@${BigInt(cmaf[2]!) - audience!.cmafDelta}`;
  return undefined;
}

function runOf(name: string): EdgeRun & { edge: RunningEdge } {
  records();
  const run = audience!.runs.get(name);
  if (!run) throw new Error(`${name} did not run`);
  if (!run.edge) throw run.error instanceof Error ? run.error : new Error(String(run.error));
  return run as EdgeRun & { edge: RunningEdge };
}

/** Per edge: what the players asked for and what reached the origin, by resource and answer (printed for the record). */
function report(a: Audience): void {
  const lines = [`edge caches: ${SECONDS} s, ${AUDIENCE.reduce((s, m) => s + m.count, 0)} players per edge, load ${((a.ended - a.started) / 1000).toFixed(1)} s`];
  for (const [name, run] of a.runs) if (!run.edge) lines.push(`${name}: did not start: ${String(run.error)}`);
  for (const s of summarize(a)) {
    const cells = Object.entries(s.byResource)
      .filter(([, v]) => v.players > 0)
      .map(([k, v]) => `${k} ${v.players}→${v.origin}`);
    lines.push(
      `${s.edge}: requests players→origin ${s.players}→${s.origin} (${cells.join(', ')})`,
      `  fragments and segments at the origin: ${s.complete} complete (${s.completeUrls} URLs, most per URL ${s.mostPerUrl}), ${s.growing} still growing, ` +
        `${s.notYet} not yet; the probers got ${s.probeNotYet} not-yet answers of ${s.probes} probes`,
      `  manifests at the origin: ${s.manifestsKept} kept by their max-age, ${s.manifestsUncacheable} not cacheable (no-cache); ` +
        `players retried ${s.retried} requests on a closed keep-alive connection; ingest POST → ${s.ingest}`,
      `  players' waits ms p50/p99/max: ${Object.entries(s.byResource)
        .filter(([, v]) => v.players > 0)
        .map(([k, v]) => `${k} ${v.wait.map((w) => w.toFixed(0)).join('/')}`)
        .join(', ')}`,
    );
  }
  const lifetimes = new Map<string, number>();
  for (const r of a.records) if (MANIFESTS.has(classify(r.url)) && r.status === 200) lifetimes.set(r.cacheControl, (lifetimes.get(r.cacheControl) ?? 0) + 1);
  lines.push(`origin manifest and playlist answers by Cache-Control: ${[...lifetimes].map(([k, v]) => `${k} ×${v}`).join(', ')}`);
  console.log(lines.join('\n'));
}

describe.each(EDGES.map((e) => [e.name, e] as const))('behind %s', (name, e) => {
  const test = withTool(e.tool, e.path);

  test('players get only what they asked for: 200, or a not-yet answer when they asked too early', () => {
    const run = runOf(name);
    const kinds = new Set(run.players.map((p) => p.kind));
    expect([...kinds].sort()).toEqual(AUDIENCE.map((m) => m.kind).sort());
    const bad = run.players.filter((p) => {
      if (p.status === 200) return false;
      if (!p.probe) return true;
      return p.status !== (p.resource === 'fragment' ? 412 : 404);
    });
    expect(bad.map((p) => `${p.kind} ${p.url} → ${p.status} ${p.error ?? ''}`).slice(0, 10)).toEqual([]);
    // Every kind of player fetched media through the edge.
    for (const kind of kinds) expect(run.players.some((p) => p.kind === kind && p.status === 200 && MEDIA.has(p.resource))).toBe(true);
  });

  test('each complete fragment and segment reached the origin at most once', () => {
    const run = runOf(name);
    const media = byUrl(name, MEDIA);
    const fetched = run.players.filter((p) => MEDIA.has(p.resource) && p.status === 200);
    expect(fetched.length).toBeGreaterThan(media.size * 2);
    const twice = [...media].filter(([, list]) => list.filter(immutable).length > 1).map(([u, l]) => `${u} ×${l.filter(immutable).length}`);
    expect(twice).toEqual([]);
    // A fragment whose tfrf may still grow is kept for its max-age, and fetched again after.
    const growing = [...media]
      .map(([u, list]) => ({ u, ...allowed(list.filter((r) => !immutable(r) && (r.status === 200 || r.status === 304))) }))
      .filter((x) => x.count > x.limit);
    expect(growing).toEqual([]);
  });

  test('manifests, MPDs and playlists reached the origin no more often than their lifetime allows', () => {
    const run = runOf(name);
    const manifests = byUrl(name, MANIFESTS);
    expect(manifests.size).toBeGreaterThanOrEqual(4);
    const over = [...manifests].map(([u, list]) => ({ u, ...allowed(list) })).filter((x) => x.count > x.limit);
    expect(over).toEqual([]);
    // The players asked far more often than that.
    const asked = run.players.filter((p) => MANIFESTS.has(p.resource)).length;
    const reached = [...manifests.values()].reduce((s, l) => s + l.length, 0);
    expect(reached * 2).toBeLessThan(asked);
  });

  test('not-yet answers (412, 404) are never kept longer than a second, and the fragment arrives once it exists', () => {
    const run = runOf(name);
    const probes = run.players.filter((p) => p.probe);
    const notYet = probes.filter((p) => p.status === 412 || p.status === 404);
    expect(notYet.length).toBeGreaterThan(0);
    // A request sent more than a second after the origin stored the fragment got a not-yet answer: a kept one.
    const stale = notYet.filter((p) => {
      const at = stored.get(fragmentKey(p.url) ?? '');
      return at !== undefined && p.sent > at + NOT_YET_MS + SLACK_MS;
    });
    expect(stale.map((p) => `${p.url} sent ${(p.sent - stored.get(fragmentKey(p.url)!)!).toFixed(0)} ms after it was stored`)).toEqual([]);
    // Every fragment a prober waited for and that arrived well before the prober stopped, it got.
    const last = new Map<number, number>();
    for (const p of probes) last.set(p.player, Math.max(last.get(p.player) ?? 0, p.sent));
    const missed = notYet.filter((p) => {
      const at = stored.get(fragmentKey(p.url) ?? '');
      if (at === undefined || at > last.get(p.player)! - 10_000) return false;
      return !probes.some((q) => q.player === p.player && q.url === p.url && q.status === 200);
    });
    expect([...new Set(missed.map((p) => p.url))]).toEqual([]);
    // The not-yet answers came from the origin again and again, not once and then from a cache.
    const fresh = records().filter((r) => r.listener === name && (r.status === 412 || r.status === 404) && fragmentKey(r.url));
    expect(fresh.length).toBeGreaterThan(new Set(fresh.map((r) => r.url)).size);
  });

  test('answers the origin marks no-store (the DASH clock) are never served from the cache', () => {
    const run = runOf(name);
    const asked = run.players.filter((p) => p.resource === 'time');
    expect(asked.length).toBe(AUDIENCE.find((m) => m.kind === 'dash')!.count);
    // Each answer was the origin's while the player waited: its own request, or one in flight that it joined.
    const answered = records().filter((r) => r.listener === name && classify(r.url) === 'time' && r.status === 200);
    const kept = asked.filter((p) => !answered.some((r) => r.received <= p.done && r.finished >= p.sent));
    expect(kept.map((p) => `player ${p.player} at ${p.sent.toFixed(0)}`)).toEqual([]);
  });

  test('an encoder cannot push through the edge', () => {
    const run = runOf(name);
    expect([403, 405]).toContain(run.ingest);
    expect(records().filter((r) => r.listener === name && r.method === 'POST')).toEqual([]);
  });
});

describe.each(PASSING.map((e) => [e.name, e] as const))("ingest through %s, as its example's alternative", (name, e) => {
  withTool(e.tool, e.path)('passes an authenticated push as it comes, and the origin refuses a forwarded one without credentials', async () => {
    const result = (await outcome(passing)).get(name);
    if (!result) throw new Error(`${name} was not tried`);
    if (!result.ok) throw result.error;
    const r = result.value;
    expect(r.refused).toBe(401);
    expect(r.stored).toBeGreaterThanOrEqual(12);
  });
});
