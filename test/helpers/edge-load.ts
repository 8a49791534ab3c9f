/**
 * A live audience for edge caches: simulated Smooth, DASH and HLS players that behave like real ones
 * (they reload their manifest as its lifetime or the format says, and fetch what it lists near the live
 * edge, in order, at one bitrate or switching), probers that ask for fragments before they exist (as a
 * player whose clock runs ahead does), and a recorder around the origin's listener that notes every
 * request an edge made and what the origin answered. `watch` puts it together: one origin port per
 * edge, all edges watched at once. Nothing here imports the library: the edge test uses it with the
 * sources, the benchmark with the build.
 */
import * as http from 'node:http';
import { performance } from 'node:perf_hooks';
import type { RunningEdge, Upstream } from './edges';

export const now = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));

/** One request the origin answered. */
export interface OriginRecord {
  /** Which listener took it (one port per edge). */
  listener: string;
  method: string;
  url: string;
  status: number;
  cacheControl: string;
  /** Wall-clock ms when the request arrived, and when its answer was written (NaN while open). */
  received: number;
  finished: number;
}

/** `listener` with every request and its answer noted in `records` as taken by `label`. */
export function recording(listener: http.RequestListener, label: string, records: OriginRecord[]): http.RequestListener {
  return (req, res) => {
    const record: OriginRecord = {
      listener: label,
      method: req.method ?? '',
      url: req.url ?? '',
      status: 0,
      cacheControl: '',
      received: now(),
      finished: Number.NaN,
    };
    records.push(record);
    const writeHead = res.writeHead;
    // The status and headers as written, whichever writeHead form the handler uses.
    res.writeHead = function (this: http.ServerResponse, status: number, ...rest: unknown[]) {
      record.status = status;
      const headers = rest.find((x) => x !== null && typeof x === 'object' && !Array.isArray(x)) as Record<string, unknown> | undefined;
      const cc = headers && Object.entries(headers).find(([k]) => k.toLowerCase() === 'cache-control');
      record.cacheControl = String(cc ? cc[1] : (this.getHeader('cache-control') ?? ''));
      return (writeHead as (...a: unknown[]) => http.ServerResponse).call(this, status, ...rest);
    } as typeof res.writeHead;
    res.once('close', () => {
      record.finished = now();
      if (record.status === 0) record.status = res.statusCode;
    });
    listener(req, res);
  };
}

export type Resource = 'manifest' | 'mpd' | 'hls-master' | 'hls-media' | 'fragment' | 'segment' | 'init' | 'time' | 'ingest' | 'other';

/** What a URL of a live point addresses. */
export function classify(url: string): Resource {
  const p = url.split('?')[0]!;
  if (/\/Manifest$/i.test(p)) return 'manifest';
  if (/\.isml\/\.mpd$/i.test(p)) return 'mpd';
  if (/\.isml\/\.m3u8$/i.test(p)) return 'hls-master';
  if (/\/index\.m3u8$/i.test(p)) return 'hls-media';
  if (/\/Fragments\(/i.test(p)) return 'fragment';
  if (/\/cmaf\/[^/]+\/\d+\.m4s$/i.test(p)) return 'segment';
  if (/\/init\.mp4$/i.test(p)) return 'init';
  if (/\/time$/i.test(p)) return 'time';
  if (/\/Streams\(/i.test(p)) return 'ingest';
  return 'other';
}

/** `max-age` of a Cache-Control value in seconds, 0 for none (`no-cache`, `no-store`). */
export function maxAge(cacheControl: string): number {
  if (/no-store|no-cache|private/i.test(cacheControl)) return 0;
  const m = /max-age=(\d+)/i.exec(cacheControl);
  return m ? Number(m[1]) : 0;
}

export type PlayerKind = 'smooth' | 'dash' | 'hls' | 'smooth-probe' | 'dash-probe';

/** One request a player made through the edge. */
export interface PlayerRequest {
  player: number;
  kind: PlayerKind;
  url: string;
  resource: Resource;
  /** 0 when the request failed (the error is in `error`). */
  status: number;
  error?: string;
  /** A prober's request for content it expects may not exist yet. */
  probe: boolean;
  bytes: number;
  /** Sent again after a reused keep-alive connection closed under it. */
  retried: boolean;
  sent: number;
  done: number;
}

export interface PlayerMix {
  kind: PlayerKind;
  count: number;
  /** Players that change bitrate every two fragments (the others keep one, chosen at random). */
  switching?: number;
}

/** The audience of the edge test and benchmark: 50 players, of every kind. */
export const AUDIENCE: readonly PlayerMix[] = [
  { kind: 'smooth', count: 18, switching: 9 },
  { kind: 'dash', count: 12, switching: 6 },
  { kind: 'hls', count: 14, switching: 7 },
  { kind: 'smooth-probe', count: 4 },
  { kind: 'dash-probe', count: 2 },
];

export interface LoadOptions {
  /** The point through the edge, e.g. `http://127.0.0.1:8080/live/ch1.isml`. */
  point: string;
  players: readonly PlayerMix[];
  /** How long each player plays, ms. */
  duration: number;
  /** Players join spread over this many ms. */
  ramp: number;
  /** How often a prober asks again for what is not there yet, ms. */
  probeInterval?: number;
  /** Seeds the players' choices (bitrates, join times). */
  seed?: number;
}

/** A small deterministic random source, so a failing run can be told apart from an unlucky one. */
function random(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 2 ** 32;
  };
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

/** A player's HTTP side: one keep-alive agent (two connections, as players fetch audio beside video), every request noted. */
class Client {
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 2 });
  constructor(
    readonly id: number,
    readonly kind: PlayerKind,
    readonly log: PlayerRequest[],
  ) {}

  get(url: string, probe = false): Promise<Answer | undefined> {
    const entry: PlayerRequest = { player: this.id, kind: this.kind, url, resource: classify(url), status: 0, probe, bytes: 0, retried: false, sent: now(), done: Number.NaN };
    this.log.push(entry);
    return this.#send(url, entry);
  }

  #send(url: string, entry: PlayerRequest): Promise<Answer | undefined> {
    return new Promise((ok) => {
      const failed = (err: Error, reused: boolean): void => {
        // A keep-alive connection the server closed as the request went out: browsers send it again on a new one.
        if (reused && !entry.retried && entry.bytes === 0) {
          entry.retried = true;
          ok(this.#send(url, entry));
          return;
        }
        entry.error = err.message;
        entry.done = now();
        ok(undefined);
      };
      const req = http.get(url, { agent: this.#agent, timeout: 30_000 }, (res) => {
        const parts: Buffer[] = [];
        res.on('data', (c: Buffer) => {
          parts.push(c);
          entry.bytes += c.length;
        });
        res.on('end', () => {
          const body = Buffer.concat(parts);
          entry.done = now();
          const length = res.headers['content-length'];
          if (length !== undefined && Number(length) !== body.length) {
            entry.error = `body ${body.length} bytes of ${length}`;
            return ok(undefined);
          }
          entry.status = res.statusCode ?? 0;
          ok({ status: entry.status, headers: res.headers, body });
        });
        res.on('error', (err) => failed(err, false));
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', (err) => failed(err, req.reusedSocket));
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** One stream of a Smooth manifest: its URL template, bitrates and listed fragment times. */
interface SmoothStream {
  type: string;
  template: string;
  bitrates: number[];
  times: bigint[];
  durations: bigint[];
}

function attr(attrs: string, name: string): string | undefined {
  return new RegExp(`\\b${name}="([^"]*)"`).exec(attrs)?.[1];
}

export function parseSmooth(xml: string): { lookahead: number; streams: SmoothStream[] } {
  const lookahead = Number(attr(/<SmoothStreamingMedia\b([^>]*)>/.exec(xml)?.[1] ?? '', 'LookAheadFragmentCount') ?? 0);
  const streams: SmoothStream[] = [];
  for (const m of xml.matchAll(/<StreamIndex\b([^>]*)>([\s\S]*?)<\/StreamIndex>/g)) {
    const s: SmoothStream = { type: attr(m[1]!, 'Type') ?? '', template: attr(m[1]!, 'Url') ?? '', bitrates: [], times: [], durations: [] };
    for (const q of m[2]!.matchAll(/<QualityLevel\b([^>]*)\/?>/g)) s.bitrates.push(Number(attr(q[1]!, 'Bitrate')));
    let t = 0n;
    for (const c of m[2]!.matchAll(/<c\b([^>]*)\/>/g)) {
      const start = attr(c[1]!, 't');
      if (start !== undefined) t = BigInt(start);
      const d = BigInt(attr(c[1]!, 'd') ?? '0');
      for (let r = Number(attr(c[1]!, 'r') ?? 1); r > 0; r--) {
        s.times.push(t);
        s.durations.push(d);
        t += d;
      }
    }
    streams.push(s);
  }
  return { lookahead, streams };
}

/** One AdaptationSet of an MPD: its templates, representations and listed segment times. */
interface DashSet {
  type: string;
  media: string;
  init: string;
  reps: string[];
  times: bigint[];
  durations: bigint[];
}

export function parseMpd(xml: string): { updatePeriod: number; utcTiming: string | undefined; sets: DashSet[] } {
  const mup = /minimumUpdatePeriod="PT([\d.]+)S"/.exec(xml);
  const sets: DashSet[] = [];
  for (const m of xml.matchAll(/<AdaptationSet\b([^>]*)>([\s\S]*?)<\/AdaptationSet>/g)) {
    const tpl = /<SegmentTemplate\b([^>]*)>/.exec(m[2]!)?.[1] ?? '';
    const set: DashSet = {
      type: attr(m[1]!, 'contentType') ?? '',
      media: attr(tpl, 'media') ?? '',
      init: attr(tpl, 'initialization') ?? '',
      reps: [...m[2]!.matchAll(/<Representation\b([^>]*)\/?>/g)].map((r) => attr(r[1]!, 'id') ?? ''),
      times: [],
      durations: [],
    };
    let t = 0n;
    for (const s of m[2]!.matchAll(/<S\b([^>]*)\/>/g)) {
      const start = attr(s[1]!, 't');
      if (start !== undefined) t = BigInt(start);
      const d = BigInt(attr(s[1]!, 'd') ?? '0');
      // DASH's r counts the repeats after the first.
      for (let r = Number(attr(s[1]!, 'r') ?? 0); r >= 0; r--) {
        set.times.push(t);
        set.durations.push(d);
        t += d;
      }
    }
    sets.push(set);
  }
  return { updatePeriod: mup ? Number(mup[1]) * 1000 : 2000, utcTiming: /<UTCTiming\b[^>]*value="([^"]*)"/.exec(xml)?.[1], sets };
}

/** An HLS media playlist: target duration (ms), its init segment and segments (URI, start time from the name). */
export function parseMedia(text: string): { target: number; map: string | undefined; segments: Array<{ uri: string; time: bigint }> } {
  const target = Number(/#EXT-X-TARGETDURATION:(\d+)/.exec(text)?.[1] ?? 2) * 1000;
  const map = /#EXT-X-MAP:URI="([^"]*)"/.exec(text)?.[1];
  const segments = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'))
    .map((uri) => ({ uri, time: BigInt(/(\d+)\.m4s$/.exec(uri)?.[1] ?? '0') }));
  return { target, map, segments };
}

/** The HLS master playlist: video variants' and the audio rendition's playlist URIs. */
export function parseMaster(text: string): { variants: string[]; audio: string | undefined } {
  const lines = text.split('\n').map((l) => l.trim());
  const variants: string[] = [];
  lines.forEach((l, i) => {
    if (l.startsWith('#EXT-X-STREAM-INF') && lines[i + 1]) variants.push(lines[i + 1]!);
  });
  return { variants, audio: /#EXT-X-MEDIA:TYPE=AUDIO[^\n]*URI="([^"]*)"/.exec(text)?.[1] };
}

/** The first listed time after `after` (or the one `back` from the end when nothing was fetched yet). */
function nextTime(times: bigint[], after: bigint | undefined, back = 3): bigint | undefined {
  if (times.length === 0) return undefined;
  if (after === undefined) return times[Math.max(0, times.length - back)];
  return times.find((t) => t > after);
}

interface Player {
  client: Client;
  rand: () => number;
  switching: boolean;
  end: number;
  point: string;
  probeInterval: number;
}

/** Picks the bitrate (or representation) to fetch next: kept, or changed every second fragment when switching. */
function chooser<T>(p: Player, choices: () => T[]): () => T {
  let current: T | undefined;
  let count = 0;
  return () => {
    const list = choices();
    if (current === undefined || !list.includes(current) || (p.switching && count % 2 === 0)) {
      current = list[Math.floor(p.rand() * list.length)]!;
    }
    count++;
    return current;
  };
}

/** Waits until `at` or the end of the player's time, whichever comes first. */
async function until(p: Player, at: number): Promise<boolean> {
  const wait = Math.min(at, p.end) - now();
  if (wait > 0) await sleep(wait);
  return now() < p.end;
}

/** A Smooth player (dash.js MSS, GStreamer): reloads the manifest when its max-age runs out, fetches what it lists. */
async function smoothPlayer(p: Player): Promise<void> {
  const after = new Map<string, bigint>();
  const pickers = new Map<string, () => number>();
  for (;;) {
    const fetched = now();
    const a = await p.client.get(`${p.point}/Manifest`);
    if (!a || a.status !== 200) {
      if (!(await until(p, fetched + 1000))) return;
      continue;
    }
    const m = parseSmooth(a.body.toString());
    await Promise.all(
      m.streams.map(async (s) => {
        let pick = pickers.get(s.type);
        if (!pick) pickers.set(s.type, (pick = chooser(p, () => s.bitrates)));
        for (let t = nextTime(s.times, after.get(s.type)); t !== undefined && now() < p.end; t = nextTime(s.times, t)) {
          const url = `${p.point}/${s.template.replace('{bitrate}', String(pick())).replace('{start time}', String(t))}`;
          await p.client.get(url);
          after.set(s.type, t);
        }
      }),
    );
    const life = maxAge(String(a.headers['cache-control'] ?? '')) * 1000 || 1000;
    if (!(await until(p, fetched + life + p.rand() * 100))) return;
  }
}

/** A DASH player (dash.js, Shaka): syncs its clock once, reloads the MPD every minimumUpdatePeriod, fetches the listed segments. */
async function dashPlayer(p: Player): Promise<void> {
  const after = new Map<string, bigint>();
  const pickers = new Map<string, () => string>();
  const inits = new Set<string>();
  let synced = false;
  for (;;) {
    const fetched = now();
    const a = await p.client.get(`${p.point}/.mpd`);
    if (!a || a.status !== 200) {
      if (!(await until(p, fetched + 1000))) return;
      continue;
    }
    const mpd = parseMpd(a.body.toString());
    if (!synced && mpd.utcTiming) {
      synced = true;
      await p.client.get(new URL(mpd.utcTiming, `${p.point}/`).href);
    }
    await Promise.all(
      mpd.sets.map(async (set) => {
        let pick = pickers.get(set.type);
        if (!pick) pickers.set(set.type, (pick = chooser(p, () => set.reps)));
        for (let t = nextTime(set.times, after.get(set.type)); t !== undefined && now() < p.end; t = nextTime(set.times, t)) {
          const rep = pick();
          const init = set.init.replace('$RepresentationID$', rep);
          if (!inits.has(init)) {
            inits.add(init);
            await p.client.get(`${p.point}/${init}`);
          }
          await p.client.get(`${p.point}/${set.media.replace('$RepresentationID$', rep).replace('$Time$', String(t))}`);
          after.set(set.type, t);
        }
      }),
    );
    if (!(await until(p, fetched + mpd.updatePeriod + p.rand() * 100))) return;
  }
}

/**
 * An HLS player (hls.js, AVPlayer): the master once, then each media playlist it plays reloaded after
 * the target duration when it changed and half of it when it did not (RFC 8216 §6.3.4); a switching
 * player moves to another variant's playlist, continuing after the last segment it fetched.
 */
async function hlsPlayer(p: Player): Promise<void> {
  let master: ReturnType<typeof parseMaster> | undefined;
  while (!master) {
    const a = await p.client.get(`${p.point}/.m3u8`);
    if (a?.status === 200) master = parseMaster(a.body.toString());
    else if (!(await until(p, now() + 1000))) return;
  }
  const { variants, audio } = master;
  const pick = chooser(p, () => variants);
  const inits = new Set<string>();
  const follow = async (choose: () => string): Promise<void> => {
    let after: bigint | undefined;
    let last = '';
    for (;;) {
      const uri = choose();
      const base = `${p.point}/${uri.slice(0, uri.lastIndexOf('/') + 1)}`;
      const fetched = now();
      const a = await p.client.get(`${p.point}/${uri}`);
      if (!a || a.status !== 200) {
        if (!(await until(p, fetched + 1000))) return;
        continue;
      }
      const text = a.body.toString();
      const media = parseMedia(text);
      const times = media.segments.map((s) => s.time);
      for (let t = nextTime(times, after); t !== undefined && now() < p.end; t = nextTime(times, t)) {
        if (media.map && !inits.has(base + media.map)) {
          inits.add(base + media.map);
          await p.client.get(base + media.map);
        }
        await p.client.get(base + media.segments.find((s) => s.time === t)!.uri);
        after = t;
      }
      const changed = text !== last;
      last = text;
      if (!(await until(p, fetched + (changed ? media.target : media.target / 2)))) return;
    }
  };
  await Promise.all([follow(pick), ...(audio ? [follow(() => audio)] : [])]);
}

/**
 * A Smooth prober: asks for the video fragment after the newest one (by the manifest's lookahead) until
 * it answers, then for the one two further on, again and again: each target is asked for before it
 * exists (412), then answers once it does (held by the origin until its successor, as the newest one).
 */
async function smoothProbe(p: Player): Promise<void> {
  let target: bigint | undefined;
  let step = 0n;
  let template = '';
  let bitrate = 0;
  while (now() < p.end) {
    if (target === undefined) {
      const a = await p.client.get(`${p.point}/Manifest`);
      const video = a?.status === 200 ? parseSmooth(a.body.toString()) : undefined;
      const s = video?.streams.find((x) => x.type === 'video');
      if (!video || !s || s.times.length === 0) {
        if (!(await until(p, now() + 1000))) return;
        continue;
      }
      step = s.durations[s.durations.length - 1]!;
      template = s.template;
      bitrate = s.bitrates[0]!;
      target = s.times[s.times.length - 1]! + step * BigInt(video.lookahead + 1);
    }
    const polled = now();
    const a = await p.client.get(`${p.point}/${template.replace('{bitrate}', String(bitrate)).replace('{start time}', String(target))}`, true);
    if (a?.status === 200) target += 2n * step;
    else if (a?.status !== 412) target = undefined;
    else if (!(await until(p, polled + p.probeInterval))) return;
  }
}

/** A DASH prober: asks for the segment after the newest one until it answers (404 before), then for the next. */
async function dashProbe(p: Player): Promise<void> {
  let target: bigint | undefined;
  let step = 0n;
  let media = '';
  while (now() < p.end) {
    if (target === undefined) {
      const a = await p.client.get(`${p.point}/.mpd`);
      const mpd = a?.status === 200 ? parseMpd(a.body.toString()) : undefined;
      const set = mpd?.sets.find((x) => x.type === 'video');
      if (!mpd || !set || set.times.length === 0) {
        if (!(await until(p, now() + 1000))) return;
        continue;
      }
      step = set.durations[set.durations.length - 1]!;
      media = set.media.replace('$RepresentationID$', set.reps[0]!);
      // Listed fragments have their lookahead (2 by default) behind them: the third after the last listed is not there yet.
      target = set.times[set.times.length - 1]! + step * 3n;
    }
    const polled = now();
    const a = await p.client.get(`${p.point}/${media.replace('$Time$', String(target))}`, true);
    if (a?.status === 200) target += step;
    else if (a?.status !== 404) target = undefined;
    else if (!(await until(p, polled + p.probeInterval))) return;
  }
}

const PLAYERS: Record<PlayerKind, (p: Player) => Promise<void>> = {
  smooth: smoothPlayer,
  dash: dashPlayer,
  hls: hlsPlayer,
  'smooth-probe': smoothProbe,
  'dash-probe': dashProbe,
};

/** Runs the players through one edge; resolves with every request they made once all have played `duration`. */
export async function runPlayers(o: LoadOptions): Promise<PlayerRequest[]> {
  const log: PlayerRequest[] = [];
  const rand = random(o.seed ?? 1);
  const start = now();
  const runs: Promise<void>[] = [];
  let id = 0;
  for (const mix of o.players) {
    for (let i = 0; i < mix.count; i++) {
      const joins = start + rand() * o.ramp;
      const client = new Client(id++, mix.kind, log);
      const player: Player = {
        client,
        rand: random(Math.floor(rand() * 2 ** 31) + 1),
        switching: i < (mix.switching ?? 0),
        end: joins + o.duration,
        point: o.point,
        probeInterval: o.probeInterval ?? 250,
      };
      runs.push(
        (async () => {
          await sleep(joins - now());
          try {
            await PLAYERS[mix.kind](player);
          } finally {
            client.close();
          }
        })(),
      );
    }
  }
  await Promise.all(runs);
  return log;
}

/** One edge an audience watches through. */
export interface EdgeAdapter {
  name: string;
  start(upstream: Upstream): Promise<RunningEdge>;
}

/** How one edge's audience went. */
export interface EdgeRun {
  edge?: RunningEdge;
  /** Why the edge did not start. */
  error?: unknown;
  players: PlayerRequest[];
  /** The edge's answer to an encoder's POST. */
  ingest?: number;
}

export interface AudienceOptions {
  /** The origin's request listener; the point is `/live/ch1.isml` below it. */
  origin: http.RequestListener;
  /** Starts an encoder pushing in real time to the point's URL at the origin; resolves with how to stop it. */
  encode(point: string): Promise<() => Promise<void>>;
  edges: EdgeAdapter[];
  players: readonly PlayerMix[];
  /** How long each player plays, ms. */
  duration: number;
  /** Players join spread over this many ms. */
  ramp: number;
}

export interface Audience {
  /** Every request the origin answered, by listener: `encoder`, or the edge's name. */
  records: OriginRecord[];
  runs: Map<string, EdgeRun>;
  /** CMAF output time minus Smooth time of the same fragment (the anchor's base). */
  cmafDelta: bigint;
  started: number;
  ended: number;
  /** Stops the encoder, the edges and the origin's listeners. */
  stop(): Promise<void>;
}

/**
 * The origin on one port per edge (each noting what it answered), the encoder on another, every edge
 * started in front of its port, then `players` playing through each edge at once. Resolves when all
 * have played; an edge that did not start is reported in its run, not thrown.
 */
export async function watch(o: AudienceOptions): Promise<Audience> {
  const records: OriginRecord[] = [];
  const servers: http.Server[] = [];
  const runs = new Map<string, EdgeRun>();
  let stopEncoder: (() => Promise<void>) | undefined;
  const listen = async (listener: http.RequestListener): Promise<Upstream> => {
    const server = http.createServer({ requestTimeout: 0, headersTimeout: 10_000, keepAliveTimeout: 5_000 }, listener);
    server.maxConnections = 1000;
    servers.push(server);
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    return { host: '127.0.0.1', port: (server.address() as { port: number }).port };
  };
  const stop = async (): Promise<void> => {
    await stopEncoder?.().catch(() => undefined);
    await Promise.all([...runs.values()].map((r) => r.edge?.stop()));
    for (const s of servers) s.closeAllConnections();
    await Promise.all(servers.map((s) => new Promise((ok) => s.close(ok))));
  };
  try {
    const ingest = await listen(recording(o.origin, 'encoder', records));
    const upstreams = await Promise.all(o.edges.map((e) => listen(recording(o.origin, e.name, records))));
    const started = Promise.allSettled(o.edges.map((e, i) => e.start(upstreams[i]!)));
    const direct = `http://127.0.0.1:${ingest.port}/live/ch1.isml`;
    stopEncoder = await o.encode(direct);
    (await started).forEach((r, i) => runs.set(o.edges[i]!.name, r.status === 'fulfilled' ? { edge: r.value, players: [] } : { error: r.reason, players: [] }));

    // Players join once a few fragments are listed; the first listed one gives the CMAF times of all.
    let cmafDelta = 0n;
    for (const end = now() + 20_000; ; ) {
      const m = await fetch(`${direct}/Manifest`);
      const text = await m.text();
      const video = m.status === 200 ? parseSmooth(text).streams.find((s) => s.type === 'video') : undefined;
      if (video && video.times.length >= 3) {
        const mpd = parseMpd(await (await fetch(`${direct}/.mpd`)).text()).sets.find((s) => s.type === 'video');
        cmafDelta = mpd!.times[0]! - video.times[0]!;
        break;
      }
      if (now() > end) throw new Error(`the origin listed ${video?.times.length ?? 0} video fragments in 20 s`);
      await sleep(100);
    }

    const playing = now();
    await Promise.all(
      [...runs.entries()].map(async ([name, run], i) => {
        if (!run.edge) return;
        const point = `${run.edge.url}/live/ch1.isml`;
        run.players = await runPlayers({ point, players: o.players, duration: o.duration, ramp: o.ramp, seed: 7 + i });
        // An encoder that tries to push through the edge.
        const r = await fetch(`${point}/Streams(through-${name.replace(/\W/g, '')})`, { method: 'POST', body: Buffer.alloc(64) });
        run.ingest = r.status;
        await r.arrayBuffer();
      }),
    );
    return { records, runs, cmafDelta, started: playing, ended: now(), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

const MANIFESTS = new Set<Resource>(['manifest', 'mpd', 'hls-master', 'hls-media']);
const MEDIA = new Set<Resource>(['fragment', 'segment']);
/** An answer a cache may keep for its max-age (a 304 renews one). */
export const cacheable = (r: OriginRecord): boolean => (r.status === 200 || r.status === 304) && maxAge(r.cacheControl) > 0;
/** A complete fragment or segment: never changes. */
export const immutable = (r: OriginRecord): boolean => r.status === 200 && /immutable/.test(r.cacheControl);

/** What players asked one edge for and what reached the origin. */
export interface EdgeSummary {
  edge: string;
  /** Requests by players, and by the edge at the origin. */
  players: number;
  origin: number;
  /** Per resource: requests by players and at the origin, and the players' wait for answers in ms (p50, p99, max; for the record). */
  byResource: Record<Resource, { players: number; origin: number; wait: [number, number, number] }>;
  /** Origin answers for fragments and segments: complete ones, the most of those for one URL, growing ones (tfrf), not-yet ones. */
  complete: number;
  completeUrls: number;
  mostPerUrl: number;
  growing: number;
  notYet: number;
  /** Prober requests, and how many of them got a not-yet answer. */
  probes: number;
  probeNotYet: number;
  /** Origin answers for manifests and playlists that a cache may keep, and ones it may not (`no-cache`). */
  manifestsKept: number;
  manifestsUncacheable: number;
  ingest: number | undefined;
  retried: number;
}

export function summarize(a: Audience): EdgeSummary[] {
  const out: EdgeSummary[] = [];
  for (const [edge, run] of a.runs) {
    if (!run.edge) continue;
    const fetched = a.records.filter((r) => r.listener === edge && r.method === 'GET');
    const byResource = {} as EdgeSummary['byResource'];
    for (const k of ['manifest', 'mpd', 'hls-master', 'hls-media', 'fragment', 'segment', 'init', 'time', 'ingest', 'other'] as Resource[]) {
      const asked = run.players.filter((p) => p.resource === k);
      const waits = asked.map((p) => p.done - p.sent).filter((w) => Number.isFinite(w)).sort((x, y) => x - y);
      const at = (q: number): number => waits[Math.min(waits.length - 1, Math.ceil(q * waits.length) - 1)] ?? Number.NaN;
      byResource[k] = { players: asked.length, origin: fetched.filter((r) => classify(r.url) === k).length, wait: [at(0.5), at(0.99), at(1)] };
    }
    const media = fetched.filter((r) => MEDIA.has(classify(r.url)));
    const perUrl = new Map<string, number>();
    for (const r of media.filter(immutable)) perUrl.set(r.url, (perUrl.get(r.url) ?? 0) + 1);
    const manifests = fetched.filter((r) => MANIFESTS.has(classify(r.url)));
    out.push({
      edge,
      players: run.players.length,
      origin: fetched.length,
      byResource,
      complete: media.filter(immutable).length,
      completeUrls: perUrl.size,
      mostPerUrl: Math.max(0, ...perUrl.values()),
      growing: media.filter((r) => (r.status === 200 || r.status === 304) && !immutable(r)).length,
      notYet: media.filter((r) => r.status === 412 || r.status === 404).length,
      probes: run.players.filter((p) => p.probe).length,
      probeNotYet: run.players.filter((p) => p.probe && p.status !== 200).length,
      manifestsKept: manifests.filter(cacheable).length,
      manifestsUncacheable: manifests.filter((r) => !cacheable(r)).length,
      ingest: run.ingest,
      retried: run.players.filter((p) => p.retried).length,
    });
  }
  return out;
}
