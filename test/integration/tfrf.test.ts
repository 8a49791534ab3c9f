/**
 * The lookahead over HTTP (protocol doc §4.1): a fragment is listed once `lookaheadChunks` successors
 * exist but served as soon as it is ingested, its tfrf holding the successors there are. Until that tfrf
 * is full (or the fragment is final) it is cached for half a fragment under an ETag that counts the
 * entries; then it is immutable. RawFragments (sample bytes only) is immutable from the start. A stream
 * that ended while others keep the point Started may come back: its short tail stays growing until the
 * point stops. Every fragment a served tfrf announces can be fetched, during a live push and after its
 * end; every time the manifest lists can be fetched at each bitrate that has fragments, also while one
 * starts late. Starts above 2^53 can be named by their double rounding (dash.js keeps times in
 * doubles). Ingest replays the captured ffmpeg push fragment by fragment through a raw chunked POST.
 */
import { UUID_TFRF, UUID_TFXD, TfrfEntry, Tfxd, parseTfrf, parseTfxd } from '../../lib/mp4/boxes';
import { children, findChild } from '../../lib/mp4/reader';
import type { PublishingPoint } from '../../lib/point';
import { TrackSpec, fragment, ingestHeader, payload } from '../helpers/fmp4';
import { RawPost, Reply, fixture, fragmentsOfRound, get, parseManifest, replay, retime, tfxdOf, until } from '../helpers/raw-ingest';
import { TestServer, startServer } from '../helpers/server';
import type { LiveSmoothOptions } from '../../lib';

const F = fixture();
const FULL_CACHE = /^public, max-age=31536000, immutable$/;
/** The fixture's tracks, in the order of their fragments within each second of media. */
const TRACKS = [
  ['video', 100000],
  ['video', 50000],
  ['audio', 32000],
] as const;
/** An audio-like odd start above 2^53 (doubles there are 2 apart): a UTC-based encoder clock in 2025. */
const BIG = 17_640_000_599_253_333n;

/** One fragment of the push, with the track it belongs to and the start the point lists it at. */
interface Pushed {
  data: Buffer;
  /** `name/bitrate` */
  track: string;
  name: string;
  bitrate: number;
  time: bigint;
}

/**
 * `rounds` × 4 s of the fixture's fragments (an endless, contiguous live timeline), each time and
 * duration × `scale`, then + `offset`. The AAC fragment that opens each round starts before it (priming):
 * it is cut at the round's start, as the point lists the first one, so that no two fragments overlap.
 */
function timeline(rounds: number, o: { scale?: bigint; offset?: bigint } = {}): Pushed[] {
  const scale = o.scale ?? 1n;
  const offset = o.offset ?? 0n;
  const out: Pushed[] = [];
  for (let r = 0; r < rounds; r++) {
    const round = BigInt(r) * 40_000_000n;
    fragmentsOfRound(r).forEach((f, i) => {
      let { time, duration } = tfxdOf(f);
      if (time < round) {
        duration -= round - time;
        time = round;
      }
      const [name, bitrate] = TRACKS[i % TRACKS.length]!;
      const start = time * scale + offset;
      out.push({ data: retime(f, start, duration * scale), track: `${name}/${bitrate}`, name, bitrate, time: start });
    });
  }
  return out;
}

const fragmentUrl = (s: TestServer, point: string, name: string, bitrate: number, t: bigint | string, noun = 'Fragments'): string =>
  `${s.base}/${point}/QualityLevels(${bitrate})/${noun}(${name}=${t})`;

/**
 * A track sent on a POST of its own (its own stream id), built in code: its header, and its `i`-th
 * fragment (start `i` × `duration`).
 */
function ownStream(spec: TrackSpec & { bitrate: number }, duration: bigint): { header: Buffer; at: (i: number) => Pushed } {
  const name = spec.kind;
  return {
    header: ingestHeader([spec]),
    at: (i) => {
      const time = BigInt(i) * duration;
      const data = fragment(i + 1, [{ trackId: spec.trackId, time, duration, samples: [payload(64, spec.bitrate + i)] }]);
      return { data, track: `${name}/${spec.bitrate}`, name, bitrate: spec.bitrate, time };
    },
  };
}

/** The tfxd and the tfrf of a Smooth fragment response (one traf). */
function smoothBoxes(body: Buffer): { tfxd: Tfxd; tfrf: TfrfEntry[] } {
  const moof = [...children(body)].find((b) => b.type === 'moof');
  const traf = moof && findChild(moof, 'traf');
  const tfxd = traf && findChild(traf, 'uuid', UUID_TFXD);
  const tfrf = traf && findChild(traf, 'uuid', UUID_TFRF);
  if (!tfxd || !tfrf) throw new Error('no moof/traf with a tfxd and a tfrf');
  return { tfxd: parseTfxd(tfxd), tfrf: parseTfrf(tfrf) };
}

const tfrfTimes = (r: Reply): bigint[] => smoothBoxes(r.body).tfrf.map((e) => e.time);

/**
 * The parts of a fragment ETag: `"f<session>.<time>.<count>.<part>"` while its tfrf can grow,
 * `"f<session>.<time>.<part>"` (no count) once complete.
 */
function etagOf(r: Reply): { time: bigint; count: number | undefined; part: string } {
  const m = /^"f(\d+)\.[0-9a-z]+(?:\.(\d+))?\.(\w+)"$/.exec(r.headers.etag ?? '');
  if (!m) throw new Error(`unexpected ETag ${r.headers.etag}`);
  return { time: BigInt(m[1]!), count: m[2] === undefined ? undefined : Number(m[2]), part: m[3]! };
}

/** Listed start times per `name/bitrate` of the point's manifest. */
async function listed(s: TestServer, point: string): Promise<Map<string, bigint[]>> {
  const m = await get(`${s.base}/${point}/Manifest`);
  expect(m.status).toBe(200);
  const out = new Map<string, bigint[]>();
  for (const si of parseManifest(m.text).streams) {
    for (const b of si.bitrates) out.set(`${si.name}/${b}`, si.fragments.map((x) => x.t));
  }
  return out;
}

/**
 * An encoder POST that stays open; {@link Live.send} waits until the point has taken each fragment.
 * Several may feed one point (one stream id each, or a reconnect of the same one).
 */
class Live {
  readonly post: RawPost;
  /** Start times sent on this POST so far per `name/bitrate`. */
  readonly ingested = new Map<string, bigint[]>();

  private constructor(
    readonly s: TestServer,
    readonly path: string,
    stream: string,
  ) {
    this.post = new RawPost(`${s.base}/${path}/Streams(${stream})`);
  }

  static async open(s: TestServer, path: string, stream = 'ch', header: Buffer = F.header): Promise<Live> {
    const live = new Live(s, path, stream);
    await live.post.write(header);
    return live;
  }

  get point(): PublishingPoint | undefined {
    return this.s.handler.origin.points().find((p) => p.path === this.path);
  }

  async send(fragments: readonly Pushed[]): Promise<void> {
    for (const f of fragments) {
      await this.post.write(f.data);
      this.ingested.set(f.track, [...(this.ingested.get(f.track) ?? []), f.time]);
      const key = `/${f.track}`;
      await until(() => this.point?.trackStats.find((t) => t.key.endsWith(key))?.lastFragmentTime === f.time, 5000, 2);
    }
  }

  /** Sends the end-of-stream mfra and waits for the point to stop. */
  async end(): Promise<void> {
    await this.post.write(F.mfra);
    await until(() => this.point?.state === 'Stopped', 5000, 2);
    expect((await this.post.end()).status).toBe(200);
  }

  /** Sends the end-of-stream mfra and ends the POST, whatever the other streams of the point do. */
  async finish(): Promise<void> {
    await this.post.write(F.mfra);
    expect((await this.post.end()).status).toBe(200);
  }
}

let s: TestServer;
let posts: RawPost[] = [];
/** What the next server is started with; these tests look at the newest fragment as it is (no edge wait) unless they say so. */
let serverOptions: LiveSmoothOptions = {};
beforeEach(async () => {
  s = await startServer({ edgeWait: 0, ...serverOptions });
});
afterEach(async () => {
  for (const p of posts) p.destroy();
  posts = [];
  await s.close();
});

async function open(path: string, metas: Record<string, string>): Promise<Live> {
  s.define(path, metas);
  const live = await Live.open(s, path);
  posts.push(live.post);
  return live;
}

describe('held-back fragments', () => {
  it('answer 200 at once with the successors there are, cached for half a fragment under a counting ETag; once the tfrf is full, immutable', async () => {
    const live = await open('long.isml', { lookaheadChunks: '2' });
    const frags = timeline(1, { scale: 4n }); // 4 s fragments: half is 2 s
    const url = fragmentUrl(s, 'long.isml', 'video', 100000, 0n);

    await live.send(frags.slice(0, 3)); // 0 s of every track
    expect([...(await listed(s, 'long.isml')).values()].map((t) => t.length)).toEqual([0, 0, 0]);
    const first = await get(url);
    expect([first.status, first.headers['cache-control']]).toEqual([200, 'public, max-age=2']);
    expect(smoothBoxes(first.body)).toEqual({ tfxd: { version: 1, time: 0n, duration: 40_000_000n }, tfrf: [] });
    expect(etagOf(first)).toEqual({ time: 0n, count: 0, part: 'Fragments' });
    const same = await get(url, { 'If-None-Match': first.headers.etag! });
    expect([same.status, same.headers.etag, same.headers['cache-control']]).toEqual([304, first.headers.etag, 'public, max-age=2']);

    // A successor arrives: the old validator no longer matches; the tfrf has one entry.
    await live.send(frags.slice(3, 6));
    const second = await get(url, { 'If-None-Match': first.headers.etag! });
    expect([second.status, second.headers['cache-control']]).toEqual([200, 'public, max-age=2']);
    expect(tfrfTimes(second)).toEqual([40_000_000n]);
    expect(etagOf(second)).toEqual({ time: 0n, count: 1, part: 'Fragments' });
    // FragmentInfo of a growing fragment: the same tfrf, its own counting validator.
    const info = await get(fragmentUrl(s, 'long.isml', 'video', 100000, 0n, 'FragmentInfo'));
    expect([info.status, info.headers['cache-control'], etagOf(info)]).toEqual([200, 'public, max-age=2', { time: 0n, count: 1, part: 'FragmentInfo' }]);
    expect(tfrfTimes(info)).toEqual([40_000_000n]);

    // L successors: listed, the tfrf is full and will not change.
    await live.send(frags.slice(6, 9));
    expect((await listed(s, 'long.isml')).get('video/100000')).toEqual([0n]);
    const full = await get(url, { 'If-None-Match': second.headers.etag! });
    expect(full.status).toBe(200);
    expect(full.headers['cache-control']).toMatch(FULL_CACHE);
    expect(tfrfTimes(full)).toEqual([40_000_000n, 80_000_000n]);
    expect(etagOf(full)).toEqual({ time: 0n, count: undefined, part: 'Fragments' });
    const cached = await get(url, { 'If-None-Match': full.headers.etag! });
    expect([cached.status, cached.headers.etag]).toEqual([304, full.headers.etag]);
    expect(cached.headers['cache-control']).toMatch(FULL_CACHE);
    // The newer ones are still growing.
    const newer = await get(fragmentUrl(s, 'long.isml', 'video', 100000, 80_000_000n));
    expect([newer.status, newer.headers['cache-control'], etagOf(newer).count, tfrfTimes(newer)]).toEqual([200, 'public, max-age=2', 0, []]);
    const audio = await get(fragmentUrl(s, 'long.isml', 'audio', 32000, frags[5]!.time));
    expect([audio.status, audio.headers['cache-control'], tfrfTimes(audio)]).toEqual([200, 'public, max-age=2', [frags[8]!.time]]);
  });

  it('RawFragments of a growing fragment: immutable under one ETag without a count (its sample bytes never change)', async () => {
    const live = await open('raw.isml', { lookaheadChunks: '2' });
    const frags = timeline(1, { scale: 4n });
    await live.send(frags.slice(0, 3));
    const raw = (): Promise<Reply> => get(fragmentUrl(s, 'raw.isml', 'video', 100000, 0n, 'RawFragments'));
    const first = await raw();
    expect(first.status).toBe(200);
    expect(first.headers['cache-control']).toMatch(FULL_CACHE);
    expect(etagOf(first)).toEqual({ time: 0n, count: undefined, part: 'RawFragments' });
    // Its Fragments and FragmentInfo are growing at the same time.
    const smooth = await get(fragmentUrl(s, 'raw.isml', 'video', 100000, 0n));
    const info = await get(fragmentUrl(s, 'raw.isml', 'video', 100000, 0n, 'FragmentInfo'));
    expect([smooth.headers['cache-control'], etagOf(smooth).count]).toEqual(['public, max-age=2', 0]);
    expect([info.headers['cache-control'], etagOf(info).count]).toEqual(['public, max-age=2', 0]);
    // The moof and its tfrf come before the samples: the raw bytes are the tail of the Smooth body.
    expect(smooth.body.subarray(smooth.body.length - first.body.length).equals(first.body)).toBe(true);

    // Successors arrive: the Smooth response changed (a new validator), the raw one did not.
    await live.send(frags.slice(3, 6));
    const grown = await get(fragmentUrl(s, 'raw.isml', 'video', 100000, 0n), { 'If-None-Match': smooth.headers.etag! });
    expect([grown.status, etagOf(grown).count]).toEqual([200, 1]);
    const same = await raw();
    expect([same.status, same.headers.etag, same.body.equals(first.body)]).toEqual([200, first.headers.etag, true]);
    const revalidated = await get(fragmentUrl(s, 'raw.isml', 'video', 100000, 0n, 'RawFragments'), { 'If-None-Match': first.headers.etag! });
    expect([revalidated.status, revalidated.headers.etag, revalidated.body.length]).toEqual([304, first.headers.etag, 0]);
    expect(revalidated.headers['cache-control']).toMatch(FULL_CACHE);
    // The full tfrf: the raw validator still the same one.
    await live.send(frags.slice(6, 9));
    expect((await raw()).headers.etag).toBe(first.headers.etag);
  });

  it('412 only after the newest ingested fragment of the track; 404 for a time that is no fragment start', async () => {
    const live = await open('edge.isml', { lookaheadChunks: '2' });
    const frags = timeline(1);
    await live.send(frags.slice(0, 7)); // 0-2 s of video 100k, 0-1 s of the others
    const at = (bitrate: number, t: bigint): Promise<Reply> => get(fragmentUrl(s, 'edge.isml', 'video', bitrate, t));
    expect((await at(100000, 20_000_000n)).status).toBe(200);
    for (const [bitrate, t] of [[100000, 30_000_000n], [100000, 20_000_001n], [50000, 20_000_000n], [100000, 2n ** 60n]] as const) {
      const r = await at(bitrate, t);
      expect([bitrate, String(t), r.status, r.body.length, r.headers['cache-control']]).toEqual([bitrate, String(t), 412, 0, 'no-store']);
    }
    expect((await at(100000, 5_000_000n)).status).toBe(404);
    expect((await at(50000, 5_000_000n)).status).toBe(404);
    const stats = live.point!.trackStats.find((t) => t.key === 'video/video/100000')!;
    expect(stats).toMatchObject({ requests: 5, notYetAvailable: 3, notFound: 1 });
  });

  it('after end of stream the last fragment is final: an empty tfrf, immutable; later times 404', async () => {
    const live = await open('eos.isml', { lookaheadChunks: '2' });
    const frags = timeline(1);
    await live.send(frags);
    const url = fragmentUrl(s, 'eos.isml', 'video', 100000, 30_000_000n);
    const growing = await get(url);
    // 1 s fragments: half a fragment is no whole second.
    expect([growing.status, growing.headers['cache-control'], etagOf(growing).count, tfrfTimes(growing)]).toEqual([200, 'no-cache', 0, []]);
    await live.end();
    const last = await get(url, { 'If-None-Match': growing.headers.etag! });
    expect(last.status).toBe(200);
    expect(last.headers['cache-control']).toMatch(FULL_CACHE);
    expect(tfrfTimes(last)).toEqual([]);
    expect(etagOf(last)).toEqual({ time: 30_000_000n, count: undefined, part: 'Fragments' });
    const before = await get(fragmentUrl(s, 'eos.isml', 'video', 100000, 20_000_000n));
    expect(before.headers['cache-control']).toMatch(FULL_CACHE);
    expect(tfrfTimes(before)).toEqual([30_000_000n]);
    expect((await listed(s, 'eos.isml')).get('video/100000')).toEqual([0n, 10_000_000n, 20_000_000n, 30_000_000n]);
    expect((await get(fragmentUrl(s, 'eos.isml', 'video', 100000, 40_000_000n))).status).toBe(404);
  });
});

describe('a stream that ended while another keeps the point Started', () => {
  /** 4 s fragments: a growing one is cached for 2 s. */
  const D = 40_000_000n;
  const VIDEO = ownStream({ trackId: 1, kind: 'video', bitrate: 100000 }, D);
  const AUDIO = ownStream({ trackId: 1, kind: 'audio', bitrate: 32000 }, D);
  const GROWING = 'public, max-age=2';

  it('its tail grows again if it comes back: a counting ETag and a short cache until the point stops (RawFragments immutable throughout)', async () => {
    s.define('two.isml', { lookaheadChunks: '2' });
    const video = await Live.open(s, 'two.isml', 'video', VIDEO.header);
    const audio = await Live.open(s, 'two.isml', 'audio', AUDIO.header);
    posts.push(video.post, audio.post);
    const at = (t: bigint, noun = 'Fragments', headers?: Record<string, string>): Promise<Reply> =>
      get(fragmentUrl(s, 'two.isml', 'video', 100000, t, noun), headers);

    await video.send([VIDEO.at(0), VIDEO.at(1)]);
    await audio.send([AUDIO.at(0), AUDIO.at(1), AUDIO.at(2)]);
    await video.finish();
    const point = video.point!;
    expect(point.streams.map((x) => [x.id, x.state])).toEqual([['video', 'ended'], ['audio', 'connected']]);
    expect(point.state).toBe('Started');
    // Nothing follows the video's tail now, so it is listed; but the stream may come back.
    expect(await listed(s, 'two.isml')).toEqual(new Map([['video/100000', [0n, D]], ['audio/32000', [0n]]]));
    const last = await at(D);
    expect([last.status, last.headers['cache-control'], etagOf(last), tfrfTimes(last)]).toEqual([200, GROWING, { time: D, count: 0, part: 'Fragments' }, []]);
    const first = await at(0n);
    expect([first.status, first.headers['cache-control'], etagOf(first), tfrfTimes(first)]).toEqual([200, GROWING, { time: 0n, count: 1, part: 'Fragments' }, [D]]);
    const info = await at(D, 'FragmentInfo');
    expect([info.status, info.headers['cache-control'], etagOf(info)]).toEqual([200, GROWING, { time: D, count: 0, part: 'FragmentInfo' }]);
    const raw = await at(D, 'RawFragments');
    expect([raw.status, etagOf(raw)]).toEqual([200, { time: D, count: undefined, part: 'RawFragments' }]);
    expect(raw.headers['cache-control']).toMatch(FULL_CACHE);
    // After its newest fragment: not yet (412), not gone (404).
    expect((await at(2n * D)).status).toBe(412);

    // It comes back and pushes on: the tfrf of its old tail grows, under new validators.
    const again = await Live.open(s, 'two.isml', 'video', VIDEO.header);
    posts.push(again.post);
    await again.send([VIDEO.at(2)]);
    expect(point.streams.find((x) => x.id === 'video')?.state).toBe('connected');
    const grown = await at(D, 'Fragments', { 'If-None-Match': last.headers.etag! });
    expect([grown.status, grown.headers['cache-control'], etagOf(grown), tfrfTimes(grown)]).toEqual([200, GROWING, { time: D, count: 1, part: 'Fragments' }, [2n * D]]);
    const grownInfo = await at(D, 'FragmentInfo', { 'If-None-Match': info.headers.etag! });
    expect([grownInfo.status, etagOf(grownInfo).count, tfrfTimes(grownInfo)]).toEqual([200, 1, [2n * D]]);
    const full = await at(0n, 'Fragments', { 'If-None-Match': first.headers.etag! });
    expect([full.status, etagOf(full), tfrfTimes(full)]).toEqual([200, { time: 0n, count: undefined, part: 'Fragments' }, [D, 2n * D]]);
    expect(full.headers['cache-control']).toMatch(FULL_CACHE);
    const sameRaw = await at(D, 'RawFragments', { 'If-None-Match': raw.headers.etag! });
    expect([sameRaw.status, sameRaw.headers.etag]).toEqual([304, raw.headers.etag]);
    expect(sameRaw.headers['cache-control']).toMatch(FULL_CACHE);

    // Every stream ends: the point stops, and the short tails are final.
    await again.finish();
    expect(point.state).toBe('Started');
    await audio.end();
    const final = await at(D, 'Fragments', { 'If-None-Match': grown.headers.etag! });
    expect([final.status, etagOf(final), tfrfTimes(final)]).toEqual([200, { time: D, count: undefined, part: 'Fragments' }, [2n * D]]);
    expect(final.headers['cache-control']).toMatch(FULL_CACHE);
    const tail = await at(2n * D);
    expect([tail.status, etagOf(tail).count, tfrfTimes(tail)]).toEqual([200, undefined, []]);
    expect(tail.headers['cache-control']).toMatch(FULL_CACHE);
    expect((await at(3n * D)).status).toBe(404);
    const audioTail = await get(fragmentUrl(s, 'two.isml', 'audio', 32000, 2n * D));
    expect([audioTail.status, etagOf(audioTail).count, tfrfTimes(audioTail)]).toEqual([200, undefined, []]);
    expect(audioTail.headers['cache-control']).toMatch(FULL_CACHE);
  });

  it('the stop command makes the ended stream\'s tail final while the other streams were still live', async () => {
    s.define('stop.isml', { lookaheadChunks: '2' });
    const video = await Live.open(s, 'stop.isml', 'video', VIDEO.header);
    const audio = await Live.open(s, 'stop.isml', 'audio', AUDIO.header);
    posts.push(video.post, audio.post);
    await video.send([VIDEO.at(0), VIDEO.at(1)]);
    await audio.send([AUDIO.at(0), AUDIO.at(1), AUDIO.at(2), AUDIO.at(3)]);
    await video.finish();
    const url = fragmentUrl(s, 'stop.isml', 'video', 100000, D);
    const growing = await get(url);
    expect([growing.status, growing.headers['cache-control'], etagOf(growing).count]).toEqual([200, GROWING, 0]);
    // The audio's held-back tail is growing too (it is live).
    const audioHeld = await get(fragmentUrl(s, 'stop.isml', 'audio', 32000, 2n * D));
    expect([audioHeld.status, audioHeld.headers['cache-control'], etagOf(audioHeld).count]).toEqual([200, GROWING, 1]);

    const point = video.point!;
    point.command('stop');
    expect(point.state).toBe('Stopped');
    const final = await get(url, { 'If-None-Match': growing.headers.etag! });
    expect([final.status, etagOf(final).count, tfrfTimes(final)]).toEqual([200, undefined, []]);
    expect(final.headers['cache-control']).toMatch(FULL_CACHE);
    const audioFinal = await get(fragmentUrl(s, 'stop.isml', 'audio', 32000, 2n * D), { 'If-None-Match': audioHeld.headers.etag! });
    expect([audioFinal.status, etagOf(audioFinal).count, tfrfTimes(audioFinal)]).toEqual([200, undefined, [3n * D]]);
    expect(audioFinal.headers['cache-control']).toMatch(FULL_CACHE);
    expect((await get(fragmentUrl(s, 'stop.isml', 'video', 100000, 2n * D))).status).toBe(404);
  });
});

describe('starts above 2^53', () => {
  const rounded = (t: bigint): bigint => BigInt(Number(t));

  it('a request by the double rounding of a start gets that fragment, whose tfxd and tfrf hold exact starts', async () => {
    s.define('utc.isml', { lookaheadChunks: '2' });
    const frags = timeline(1, { offset: BIG });
    expect((await replay(`${s.base}/utc.isml/Streams(ch)`, Buffer.concat([F.header, ...frags.map((f) => f.data), F.mfra]))).status).toBe(200);
    const lists = await listed(s, 'utc.isml');
    expect(lists.get('video/100000')).toEqual([BIG, BIG + 10_000_000n, BIG + 20_000_000n, BIG + 30_000_000n]);
    let byRounding = 0;
    for (const [name, bitrate] of TRACKS) {
      const times = lists.get(`${name}/${bitrate}`)!;
      for (const [i, t] of times.entries()) {
        if (rounded(t) !== t) byRounding++;
        const exact = await get(fragmentUrl(s, 'utc.isml', name, bitrate, t));
        const r = await get(fragmentUrl(s, 'utc.isml', name, bitrate, rounded(t)));
        expect([name, bitrate, String(t), r.status]).toEqual([name, bitrate, String(t), 200]);
        const { tfxd, tfrf } = smoothBoxes(r.body);
        expect(tfxd.time).toBe(t);
        expect(tfrf.map((e) => e.time)).toEqual(times.slice(i + 1, i + 3));
        // The same resource, whichever way it is named.
        expect([r.headers.etag, r.body.equals(exact.body)]).toEqual([exact.headers.etag, true]);
        expect(etagOf(r).time).toBe(t);
      }
    }
    expect(byRounding).toBeGreaterThan(6); // video starts are all odd; audio ones alternate
  });

  it('a time no start rounds to is 404 (fragments are at least 100 ms apart, so two starts never share a rounding here)', async () => {
    s.define('tie.isml', { lookaheadChunks: '2' });
    const frags = timeline(1, { offset: BIG });
    const body = Buffer.concat([F.header, ...frags.map((f) => f.data), F.mfra]);
    expect((await replay(`${s.base}/tie.isml/Streams(ch)`, body)).status).toBe(200);
    expect(rounded(BIG)).toBe(BIG - 1n);
    const unrelated = await get(fragmentUrl(s, 'tie.isml', 'video', 100000, BIG + 3n));
    expect(unrelated.status).toBe(404);
    expect(unrelated.headers['cache-control']).toBe('no-store');
    for (const t of [BIG, BIG - 1n]) {
      const r = await get(fragmentUrl(s, 'tie.isml', 'video', 100000, t));
      expect([String(t), r.status, smoothBoxes(r.body).tfxd.time]).toEqual([String(t), 200, BIG]);
    }
  });
});

/**
 * Fetches every listed fragment of every quality level, then every fragment a served tfrf announces,
 * transitively. Each must answer 200 with its own start in the tfxd and a tfrf of the next fragments
 * (contiguous, at most `lookahead`); it is immutable exactly when that tfrf is full or the stream has
 * ended. While live, a listed fragment's tfrf is full once every track has published a fragment (until
 * then a bitrate that has published nothing caps the listing of its StreamIndex at its newest fragment,
 * not a published one, so a listed fragment may still be short there). From the first listed fragment
 * on, the walk reaches every fragment ingested.
 */
async function walk(live: Live, lookahead: number, ended: boolean): Promise<number> {
  const published = live.ingested.size === TRACKS.length && [...live.ingested.values()].every((t) => t.length > lookahead);
  let fetched = 0;
  for (const [track, times] of await listed(live.s, live.path)) {
    const [name, bitrate] = track.split('/') as [string, string];
    const seen = new Set(times);
    const queue = [...times];
    while (queue.length > 0) {
      const t = queue.shift()!;
      const r = await get(fragmentUrl(live.s, live.path, name, Number(bitrate), t));
      fetched++;
      expect([track, String(t), r.status]).toEqual([track, String(t), 200]);
      const { tfxd, tfrf } = smoothBoxes(r.body);
      expect(tfxd.time).toBe(t);
      expect(tfrf.length).toBeLessThanOrEqual(lookahead);
      if (!ended && published && times.includes(t)) expect([track, String(t), tfrf.length]).toEqual([track, String(t), lookahead]);
      let next = t + tfxd.duration;
      for (const e of tfrf) {
        expect([track, String(t), e.time]).toEqual([track, String(t), next]);
        next += e.duration;
        if (!seen.has(e.time)) {
          seen.add(e.time);
          queue.push(e.time);
        }
      }
      const complete = ended || tfrf.length === lookahead;
      expect([track, String(t), r.headers['cache-control']]).toEqual([track, String(t), complete ? expect.stringMatching(FULL_CACHE) : 'no-cache']);
    }
    if (times.length > 0) {
      const sorted = [...seen].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      expect([track, sorted]).toEqual([track, live.ingested.get(track)!.filter((t) => t >= times[0]!)]);
    }
  }
  return fetched;
}

/**
 * Fetches every time the manifest lists at every bitrate of its StreamIndex: 200 at each bitrate that
 * has a fragment there. A bitrate that has no fragment yet does not hold the listing back (it would
 * empty it): it answers 412 until it starts; one whose timeline starts later answers 404 before its
 * first fragment. Never 412 at a bitrate that has fragments.
 * @returns the times listed per StreamIndex name
 */
async function listedServed(live: Live): Promise<Map<string, bigint[]>> {
  const m = await get(`${live.s.base}/${live.path}/Manifest`);
  expect(m.status).toBe(200);
  const out = new Map<string, bigint[]>();
  for (const si of parseManifest(m.text).streams) {
    out.set(si.name, si.fragments.map((f) => f.t));
    for (const bitrate of si.bitrates) {
      const ingested = live.ingested.get(`${si.name}/${bitrate}`) ?? [];
      for (const { t } of si.fragments) {
        const r = await get(fragmentUrl(live.s, live.path, si.name, bitrate, t));
        const want = ingested.length === 0 ? 412 : t < ingested[0]! ? 404 : 200;
        expect([si.name, bitrate, String(t), r.status]).toEqual([si.name, bitrate, String(t), want]);
      }
    }
  }
  return out;
}

describe.each([1, 2, 3])('lookaheadChunks %i: a bitrate whose encoder starts late', (lookahead) => {
  /**
   * The 50k bitrate's fragments go `lag` seconds after the others' (the most its hold-back allows
   * before it counts as stalled), from second `join` of the timeline on; the others push 3 × 4 s.
   * Returns how many steps listed fewer video times than the 100k bitrate has published: the late
   * bitrate held the listing back.
   */
  async function push(path: string, join: number): Promise<number> {
    const live = await open(path, { lookaheadChunks: String(lookahead) });
    const lag = lookahead + 1;
    const frags = timeline(3);
    const late = frags.filter((f) => f.track === 'video/50000');
    const others = frags.filter((f) => f.track !== 'video/50000');
    const steps: Pushed[] = [];
    for (let k = 0; k < late.length; k++) {
      steps.push(others[2 * k]!, others[2 * k + 1]!);
      if (k - lag >= join) steps.push(late[k - lag]!);
    }
    steps.push(...late.slice(Math.max(join, late.length - lag)));
    let heldBack = 0;
    for (const f of steps) {
      await live.send([f]);
      const video = (await listedServed(live)).get('video')!;
      const leader = live.ingested.get('video/100000')!;
      const published = leader.length > lookahead ? leader[leader.length - 1 - lookahead]! : undefined;
      if (published !== undefined && live.ingested.has('video/50000') && (video.at(-1) ?? -1n) < published) heldBack++;
    }
    await live.end();
    const video = (await listedServed(live)).get('video')!;
    expect(video).toEqual(live.ingested.get('video/100000'));
    return heldBack;
  }

  // Known gap: the manifest is rendered again only when a fragment is published, so right after the
  // late bitrate's first (held-back) fragment it still lists times that bitrate answers 412 for (see
  // the lifecycle test "the rendered manifest follows at once when its first fragment arrives"). Flip
  // both to `it` once that first fragment invalidates the manifest.
  it('from the start of the timeline: every listed time answers 200 at every bitrate, at every step', async () => {
    expect(await push('late.isml', 0)).toBeGreaterThan(0);
  });

  it('from the middle of the timeline: 200 from its first fragment on, 404 before it, at every step', async () => {
    expect(await push('join.isml', 5)).toBeGreaterThan(0);
  });
});

describe.each([1, 2, 3])('lookaheadChunks %i: every fragment a tfrf announces can be fetched', (lookahead) => {
  it('at every step of a live push of 3 tracks, and after end of stream', async () => {
    const live = await open('walk.isml', { lookaheadChunks: String(lookahead) });
    let fetched = 0;
    for (const f of timeline(3)) {
      await live.send([f]);
      fetched += await walk(live, lookahead, false);
    }
    await live.end();
    const last = await walk(live, lookahead, true);
    expect(last).toBe(3 * 12); // every fragment of every track is listed now
    expect(fetched).toBeGreaterThan(last);
  });
});

describe('the newest fragment of a live track waits for the next (edgeWait)', () => {
  beforeAll(() => (serverOptions = { edgeWait: 10_000 }));
  afterAll(() => (serverOptions = {}));

  it('answers once the next fragment arrives, with a tfrf that announces it (VLC has somewhere to go)', async () => {
    const live = await open('wait.isml', { lookaheadChunks: '2' });
    const pushed = timeline(2);
    await live.send(pushed.slice(0, 6)); // 0 s and 1 s of every track
    let answered = false;
    const arrived = new Promise((ok) => s.server.once('request', ok));
    const pending = get(fragmentUrl(s, 'wait.isml', 'video', 100000, 10_000_000n)).then((r) => ((answered = true), r));
    await arrived;
    // Not before its successor exists: the server handled the request and holds it.
    await new Promise((ok) => setImmediate(ok));
    expect(answered).toBe(false);
    await live.send(pushed.slice(6, 7)); // 2 s of video 100k
    const r = await pending;
    expect(r.status).toBe(200);
    expect(tfrfTimes(r)).toEqual([20_000_000n]);
    expect(etagOf(r).count).toBe(1);
  });

  it('answers at once for a fragment that already has a successor, for RawFragments, and when the point is not live', async () => {
    const live = await open('now.isml', { lookaheadChunks: '2' });
    const pushed = timeline(1);
    await live.send(pushed.slice(0, 6));
    expect(tfrfTimes(await get(fragmentUrl(s, 'now.isml', 'video', 100000, 0n)))).toEqual([10_000_000n]);
    expect((await get(fragmentUrl(s, 'now.isml', 'video', 100000, 10_000_000n, 'RawFragments'))).status).toBe(200);
    await live.end();
    const r = await get(fragmentUrl(s, 'now.isml', 'video', 100000, 10_000_000n));
    expect([r.status, tfrfTimes(r).length, r.headers['cache-control']]).toEqual([200, 0, 'public, max-age=31536000, immutable']);
  });

  it('a waiting request is answered when the stream ends, with the final (empty) tfrf', async () => {
    const live = await open('end.isml', { lookaheadChunks: '2' });
    await live.send(timeline(1).slice(0, 6));
    const arrived = new Promise((ok) => s.server.once('request', ok));
    const pending = get(fragmentUrl(s, 'end.isml', 'video', 100000, 10_000_000n));
    await arrived;
    await live.end();
    const r = await pending;
    expect([r.status, tfrfTimes(r).length, r.headers['cache-control']]).toEqual([200, 0, 'public, max-age=31536000, immutable']);
  });
});
