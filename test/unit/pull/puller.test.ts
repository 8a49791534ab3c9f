/**
 * The puller of a `sourceType=Pull` point, over real publishing points and a fake `fetch` that answers
 * as an origin does (the upstream points are fed the captured ffmpeg push; their manifest and Smooth
 * fragment responses are what the middleware would send: 412 past the newest fragment while live, 404
 * once the stream ended). Shown:
 * - a pulled point follows an upstream to the same manifest, byte for byte, and the same samples, each
 *   fragment once, while its source goes connecting → pulling → ended and the point Starting → Started
 *   → Stopped; it follows a live upstream through 412s to its end; after the end it holds no ingest
 *   connection, and it pulls again when started again;
 * - tracks a manifest cannot describe are left out, and said so, while the others are pulled; a track
 *   the upstream stops listing is no longer pulled, and the end does not wait for it;
 * - failover: an upstream that answers 503, cannot be reached, does not answer in time, or sends bad
 *   data (malformed MP4, two track fragments, another fragment than asked for, a tfrf that does not go
 *   forward, a fragment the point refuses, a body or a manifest over its limit, declared or streamed)
 *   is reported with the reason, and the next one continues from the last fragment held, nothing
 *   missed or repeated, and is not blamed for the first one's failure;
 * - one upstream that keeps failing is retried and reported, the point left waiting;
 * - redirects are followed up to `maxRedirects`, then refused, as is one that leaves http(s);
 * - `close()` aborts every request and leaves no timer running, also between polls; a point that
 *   stops is no longer pulled.
 * Nothing reaches the process as an uncaught exception or an unhandled rejection.
 */
import { pullSources, resolveSettings } from '../../../lib/definition';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import type { LiveSmoothOptions } from '../../../lib/options';
import { resolveOptions } from '../../../lib/options';
import { PublishingPoint } from '../../../lib/point';
import type { PointEvents, PointState, SourceStatus } from '../../../lib/point/events';
import { UUID_TFRF } from '../../../lib/mp4/boxes';
import { children, childrenOf } from '../../../lib/mp4/reader';
import { Fetch, Puller, PullerOptions } from '../../../lib/pull';
import { box, mdat, u32 } from '../../helpers/fmp4';
import { fixture, sleep, until } from '../../helpers/raw-ingest';

const F = fixture();
const A = 'http://origin-a/live/ch1.isml';
const B = 'http://origin-b/live/ch1.isml';

/** Everything a test opened, closed after it (pullers before their points). */
const opened: Array<{ close(): void }> = [];

/** Nothing may escape to the process: collected here and asserted empty after each test. */
const escaped: unknown[] = [];
const onEscape = (err: unknown): void => void escaped.push(err);
beforeAll(() => {
  process.on('uncaughtException', onEscape);
  process.on('unhandledRejection', onEscape);
});
afterAll(() => {
  process.off('uncaughtException', onEscape);
  process.off('unhandledRejection', onEscape);
});
afterEach(async () => {
  for (const o of opened.splice(0)) o.close();
  // Let aborted requests and rejected Promises settle before judging.
  await sleep(20);
  expect(escaped.splice(0)).toEqual([]);
});

// ---- upstream origins ----

interface Upstream {
  point: PublishingPoint;
  /** Feeds the next `n` fragments of the fixture (in its stream order). */
  feed(n: number): void;
  /** Ends the stream (the fixture's empty mfra): the point stops, its last fragments get an empty tfrf. */
  end(): void;
}

/** A point fed the fixture's header and its first `fragments` fragments, ended unless `end` is false. */
function upstream(o: { fragments?: number; end?: boolean; options?: LiveSmoothOptions } = {}): Upstream {
  const point = new PublishingPoint('ch1.isml', resolveSettings([{ startOnFirstRequest: true }]), resolveOptions({ stateFile: false, ...o.options }));
  opened.push(point);
  const session = point.openIngest('ch1', '127.0.0.1', new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
  session.write(F.header);
  let fed = 0;
  const u: Upstream = {
    point,
    feed: (n) => {
      for (const f of F.fragments.slice(fed, fed + n)) session.write(f);
      fed += n;
    },
    end: () => session.write(F.mfra),
  };
  u.feed(o.fragments ?? F.fragments.length);
  if (o.end ?? true) u.end();
  return u;
}

/** A promise that rejects as `fetch` does when its signal aborts (and never resolves). */
function aborted(signal: AbortSignal): Promise<never> {
  return new Promise((_, reject) => {
    if (signal.aborted) reject(signal.reason);
    else signal.addEventListener('abort', () => reject(signal.reason), { once: true });
  });
}

const status = (code: number, headers: Record<string, string> = {}): Response => new Response(null, { status: code, headers });

function fragmentResponse(bytes: Buffer): Response {
  return new Response(bytes, { status: 200, headers: { 'content-type': 'video/mp4', 'content-length': String(bytes.length) } });
}

const FRAGMENT_URL = /^QualityLevels\((\d+)(?:,([^)]*))?\)\/Fragments\((\w+)=(\d+)\)$/;

/**
 * What an origin's middleware answers for `rest` (the URL below the point) from `point`: the manifest;
 * a fragment as its moof head and stored data (held until the next fragment exists, as the origin holds
 * the newest fragment of a live track); 412 past the newest while live; 404 for what it does not have.
 */
async function answer(point: PublishingPoint, rest: string, signal: AbortSignal): Promise<Response> {
  if (rest === 'Manifest') {
    const m = point.manifest();
    return new Response(m.body, { status: 200, headers: { 'content-type': m.contentType, 'content-length': String(m.body.length) } });
  }
  const m = FRAGMENT_URL.exec(rest);
  if (!m) return status(404);
  const attributes = (m[2] ?? '').split(',').filter(Boolean).map((kv) => kv.split('=') as [string, string]);
  let found = point.lookup(m[3]!, Number(m[1]), attributes, BigInt(m[4]!));
  if (found.status === 'not-yet') return status(412);
  if (found.status === 'not-found') return status(404);
  const wait = point.awaitSuccessor(found);
  if (wait) {
    await Promise.race([wait, aborted(signal)]);
    found = point.again(found);
    if (found.status !== 'ok') return status(404);
  }
  const packaged = await point.smoothFragment(found);
  if (!packaged) return status(404);
  return fragmentResponse(Buffer.concat([packaged.head, packaged.data as Buffer]));
}

/** One request the fake `fetch` saw. */
interface Call {
  url: string;
  signal: AbortSignal;
  redirect: string;
  /** The status answered; undefined while pending or when it failed. */
  status?: number;
}

/**
 * A `fetch` that answers with `route(url)` (an origin answer, a failure, a hang), recording every call.
 * Like the real one, it rejects with the signal's reason as soon as the signal aborts.
 */
function fakeFetch(route: (url: string, signal: AbortSignal) => Response | Promise<Response>): { fetch: Fetch; calls: Call[] } {
  const calls: Call[] = [];
  const fetch: Fetch = async (url, init) => {
    const call: Call = { url, signal: init.signal, redirect: init.redirect };
    calls.push(call);
    const res = await Promise.race([Promise.resolve().then(() => route(url, init.signal)), aborted(init.signal)]);
    call.status = res.status;
    return res;
  };
  return { fetch, calls };
}

/** Routes requests below `base` to `up`'s point. */
function serve(base: string, up: Upstream): (url: string, signal: AbortSignal) => Promise<Response> | undefined {
  return (url, signal) => (url.startsWith(`${base}/`) ? answer(up.point, url.slice(base.length + 1), signal) : undefined);
}

/** The first route that answers, else 404 (an unknown host would fail differently; no test asks one). */
function routes(...list: Array<(url: string, signal: AbortSignal) => Response | Promise<Response> | undefined>) {
  return (url: string, signal: AbortSignal): Response | Promise<Response> => {
    for (const r of list) {
      const res = r(url, signal);
      if (res) return res;
    }
    return status(404);
  };
}

const isFragment = (url: string): boolean => /\/QualityLevels\(/.test(url);
const timeOf = (url: string): bigint => BigInt(/=(\d+)\)$/.exec(url)![1]!);

// ---- the pulled point ----

interface Pulled {
  point: PublishingPoint;
  puller: Puller;
  /** Every `source` event. */
  sources: SourceStatus[];
  states: PointState[];
  /** Every stored fragment, as `track@time`. */
  fragments: string[];
  rejected: Array<PointEvents['inputRejected'][0]>;
}

/** A Pull point of `sources`, started by a first client request, its puller using `fetch`. */
function pull(sources: string[], fetch: Fetch, options: PullerOptions = {}, pointOptions: LiveSmoothOptions = {}): Pulled {
  const point = new PublishingPoint(
    'pulled.isml',
    resolveSettings([{ sourceType: 'Pull', startOnFirstRequest: true }], sources),
    resolveOptions({ stateFile: false, ...pointOptions }),
  );
  const p: Pulled = { point, puller: undefined!, sources: [], states: [], fragments: [], rejected: [] };
  point.on('source', (e) => p.sources.push(e));
  point.on('state', (e) => p.states.push(e.state));
  point.on('fragment', (e) => p.fragments.push(`${e.track}@${e.fragment.time}`));
  point.on('inputRejected', (e) => p.rejected.push(e));
  p.puller = new Puller(point, pullSources(sources), { fetch, ...options });
  opened.push(p.puller, point);
  point.clientRequest();
  return p;
}

/** Every fragment of `up`'s point, as `track@time`, sorted. */
function fragmentsOf(up: Upstream): string[] {
  return up.point.headers.flatMap((h) => [...up.point.snapshot().streams.find((s) => s.name === h.info.name)!.fragments].map((f) => `${h.key}@${f.time}`)).sort();
}

const ended = (p: Pulled): Promise<true> => until(() => p.point.source?.state === 'ended', 8000, 10);

/** The pulled point holds what `up` holds: the same manifest, each fragment once, the same samples. */
function sameAs(p: Pulled, up: Upstream): void {
  expect(p.point.manifest().body.toString()).toBe(up.point.manifest().body.toString());
  expect([...p.fragments].sort()).toEqual(fragmentsOf(up));
  expect(p.point.encoderCounts).toEqual({ restarts: 0, duplicatesDropped: 0, refused: 0 });
  for (const h of up.point.headers) {
    for (const f of up.point.snapshot().streams.find((s) => s.name === h.info.name)!.fragments) {
      const theirs = up.point.lookup(h.info.name, h.info.bitrate, [], f.time);
      const mine = p.point.lookup(h.info.name, h.info.bitrate, [], f.time);
      if (theirs.status !== 'ok' || mine.status !== 'ok') throw new Error(`${h.key}@${f.time} missing`);
      expect((p.point.smoothFragment(mine) as { data: Buffer }).data.equals((up.point.smoothFragment(theirs) as { data: Buffer }).data)).toBe(true);
    }
  }
}

describe('following an upstream', () => {
  it('an ended upstream: the same manifest and fragments; connecting → pulling → ended; Starting → Started → Stopped', async () => {
    const up = upstream();
    const { fetch, calls } = fakeFetch(routes(serve(A, up)));
    const p = pull([A], fetch);
    await ended(p);
    sameAs(p, up);
    expect(p.sources.map((s) => s.state)).toEqual(['waiting', 'connecting', 'pulling', 'ended']);
    expect(p.sources.at(-1)).toMatchObject({ point: 'pulled.isml', upstream: A, reason: 'the upstream presentation ended' });
    expect(p.states).toEqual(['Starting', 'Started', 'Stopping', 'Stopped']);
    // Each fragment fetched once; after each track's last one (its tfrf empty), one 404 says it ended.
    const fetched = calls.filter((c) => isFragment(c.url) && c.status === 200).map((c) => c.url);
    expect(new Set(fetched).size).toBe(fetched.length);
    expect(fetched).toHaveLength(12);
    // Redirects are the puller's to follow (and count), not fetch's.
    expect(calls.every((c) => c.redirect === 'manual')).toBe(true);
    expect(calls.filter((c) => c.status === 404).map((c) => timeOf(c.url))).toEqual([40_000_000n, 40_000_000n, 40_000_000n]);
    // Like an encoder's POST after its mfra, the pulled stream is over: it holds no connection.
    expect(p.point.streams).toEqual([expect.objectContaining({ id: 'pull', state: 'ended', connections: 0 })]);
  });

  it('a live upstream: 412 past its newest fragment, then the end once it ends', async () => {
    // edgeWait 0: the upstream answers its newest fragment at once (empty tfrf), so the puller asks past it.
    const up = upstream({ fragments: 9, end: false, options: { edgeWait: 0 } });
    const { fetch, calls } = fakeFetch(routes(serve(A, up)));
    const p = pull([A], fetch);
    await until(() => calls.some((c) => c.status === 412), 5000, 10);
    expect(p.point.state).toBe('Started');
    expect(p.point.source?.state).toBe('pulling');
    up.feed(3);
    up.end();
    await ended(p);
    sameAs(p, up);
    expect(calls.filter((c) => c.status === 412).every((c) => timeOf(c.url) >= 30_000_000n)).toBe(true);
    expect(calls.filter((c) => c.status === 404).map((c) => timeOf(c.url))).toEqual([40_000_000n, 40_000_000n, 40_000_000n]);
    expect(p.states).toEqual(['Starting', 'Started', 'Stopping', 'Stopped']);
  });

  it('a point that ended pulls again when it is started again (it gave back its ingest connection)', async () => {
    const up = upstream();
    const { fetch } = fakeFetch(routes(serve(A, up)));
    // One ingest connection per point: a connection kept after the end would refuse the second run.
    const p = pull([A], fetch, {}, { maxIngestConnectionsPerPoint: 1 });
    await ended(p);
    p.point.command('shutdown');
    expect(p.point.state).toBe('Idle');
    p.fragments.length = 0;
    p.sources.length = 0;
    p.point.clientRequest();
    await ended(p);
    sameAs(p, up);
    expect(p.sources.map((s) => s.state)).toEqual(['connecting', 'pulling', 'ended']);
  });

  it('tracks the manifest cannot describe are left out, and said so; the others are pulled', async () => {
    const up = upstream();
    const extra = (text: string): string =>
      text
        // An audio level whose FourCC is a video codec, and a text stream: neither can be rebuilt.
        .replace(/(<QualityLevel Index="0" Bitrate="32000"[^>]*\/>)/, '$1<QualityLevel Index="1" Bitrate="16000" FourCC="H264" CodecPrivateData="1190" SamplingRate="44100" Channels="2"/>')
        .replace('</SmoothStreamingMedia>', '<StreamIndex Type="text" Name="captions" Url="QualityLevels({bitrate})/Fragments(captions={start time})"><QualityLevel Bitrate="1000" FourCC="TTML"/></StreamIndex></SmoothStreamingMedia>');
    const { fetch, calls } = fakeFetch(
      routes(
        (url) => (url === `${A}/Manifest` ? new Response(extra(up.point.manifest().body.toString()), { status: 200 }) : undefined),
        serve(A, up),
      ),
    );
    const p = pull([A], fetch);
    await ended(p);
    sameAs(p, up);
    const pulling = p.sources.find((s) => s.state === 'pulling')!;
    expect(pulling.reason).toMatch(/^not pulled: .*audio audio 16000: FourCC H264 .*; .*text captions 1000: FourCC TTML/);
    expect(calls.some((c) => /16000|captions/.test(c.url) && isFragment(c.url))).toBe(false);
  });
});

describe('a track the upstream stops listing', () => {
  it('is no longer pulled; the others go on, and the point still ends with the upstream', async () => {
    const up = upstream({ fragments: 9, end: false, options: { edgeWait: 0 } });
    let drop = false;
    let droppedSeen = 0;
    const without50k = (): Response => {
      droppedSeen++;
      return new Response(up.point.manifest().body.toString().replace(/ *<QualityLevel Index="0" Bitrate="50000"[^>]*\/>\n/, ''), { status: 200 });
    };
    const { fetch, calls } = fakeFetch(routes((url) => (drop && url === `${A}/Manifest` ? without50k() : undefined), serve(A, up)));
    const p = pull([A], fetch);
    await until(() => p.fragments.includes('video/video/50000@10000000') && calls.some((c) => c.status === 412), 5000, 10);
    drop = true;
    // The manifest is read again every 2 s.
    await until(() => droppedSeen > 0, 5000, 10);
    const asked = calls.length;
    up.feed(3);
    up.end();
    await ended(p);
    expect(p.states.slice(-2)).toEqual(['Stopping', 'Stopped']);
    // The other tracks to their end; the dropped one up to what it had before the drop (the fragment fed
    // after it, at 30 s, is not pulled).
    const is50k = (f: string): boolean => f.startsWith('video/video/50000@');
    const all = fragmentsOf(up);
    expect(p.fragments.filter((f) => !is50k(f)).sort()).toEqual(all.filter((f) => !is50k(f)));
    expect(p.fragments.filter(is50k)).toEqual(all.filter(is50k).slice(0, p.fragments.filter(is50k).length));
    expect(p.fragments).not.toContain('video/video/50000@30000000');
    expect(calls.slice(asked).some((c) => c.url.includes('QualityLevels(50000)'))).toBe(false);
    expect(p.rejected).toEqual([]);
  });
});

describe('failover', () => {
  /**
   * Twin upstreams fed the same stream; `a` answers the manifest and the first fragment of each track,
   * then `fail(url)` for every later fragment; `b` answers as an origin.
   */
  async function failover(
    fail: (url: string, signal: AbortSignal) => Response | Promise<Response>,
    options: PullerOptions = {},
    rejected = (p: Pulled): void => expect(p.rejected).toEqual([]),
  ) {
    const ua = upstream();
    const ub = upstream();
    const { fetch, calls } = fakeFetch(
      routes(
        (url, signal) => (url.startsWith(`${A}/`) && isFragment(url) && timeOf(url) > 0n ? fail(url, signal) : undefined),
        serve(A, ua),
        serve(B, ub),
      ),
    );
    const p = pull([A, B], fetch, options);
    await ended(p);
    sameAs(p, ub);
    const failing = p.sources.filter((s) => s.state === 'failing');
    expect(failing.length).toBeGreaterThan(0);
    expect(failing[0]!.upstream).toBe(A);
    // A gave the fragments at 0, B the rest, each once: B went on from what A had given.
    expect(calls.some((c) => c.url.startsWith(A) && isFragment(c.url) && timeOf(c.url) === 0n && c.status === 200)).toBe(true);
    const fromB = calls.filter((c) => c.url.startsWith(B) && isFragment(c.url) && c.status === 200).map((c) => c.url);
    expect(fromB.length).toBeGreaterThan(0);
    expect(fromB.every((url) => timeOf(url) > 0n)).toBe(true);
    expect(new Set(fromB).size).toBe(fromB.length);
    expect(p.sources.at(-1)).toMatchObject({ state: 'ended', upstream: B });
    expect(failing.filter((s) => s.upstream === B)).toEqual([]);
    rejected(p);
    return failing[0]!.reason!;
  }

  it('an upstream that answers 503: reported, and the next one continues', async () => {
    expect(await failover(() => status(503))).toMatch(/upstream 503/);
  });

  it('an upstream that cannot be reached (a network error): reported with its code', async () => {
    const refused = (): never => {
      throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:80'), { code: 'ECONNREFUSED' }) });
    };
    expect(await failover(refused)).toMatch(/upstream unreachable: connection refused/);
  });

  it('an upstream that does not answer in time', async () => {
    // The request never gets an answer; the puller's timeout (plus two fragment durations) aborts it.
    const hang = (_url: string, signal: AbortSignal): Promise<Response> => aborted(signal);
    expect(await failover(hang, { timeout: 300 })).toMatch(/^upstream did not answer within \d+ ms$/);
  });

  it('an upstream whose manifest request does not answer in time: the next one is used from the start', async () => {
    const ub = upstream();
    const { fetch, calls } = fakeFetch(routes((url, signal) => (url.startsWith(`${A}/`) ? aborted(signal) : undefined), serve(B, ub)));
    const p = pull([A, B], fetch, { timeout: 300 });
    await ended(p);
    sameAs(p, ub);
    expect(p.sources.find((s) => s.state === 'failing')).toMatchObject({ upstream: A, reason: 'upstream did not answer within 300 ms' });
    expect(calls.filter((c) => c.url.startsWith(A)).every((c) => c.signal.aborted && c.status === undefined)).toBe(true);
  });

  /** A fragment response of the fixture's first video fragment whose moof holds its traf twice. */
  function twoTrafs(): Buffer {
    const moof = children(F.fragments[0]!).next().value!;
    const inner = [...childrenOf(moof)];
    const traf = inner.find((b) => b.type === 'traf')!.data;
    return Buffer.concat([box('moof', ...inner.map((b) => b.data), traf), mdat(Buffer.alloc(16))]);
  }

  it.each<[string, (url: string) => Response, PullerOptions, RegExp]>([
    ['garbage bytes', () => fragmentResponse(Buffer.from('<html>502 Bad Gateway</html>')), {}, /^the upstream sent malformed MP4: box '.*' overruns its parent$/],
    ['a box that overruns the response', () => fragmentResponse(Buffer.concat([u32(1000), Buffer.from('moof'), Buffer.alloc(8)])), {}, /^the upstream sent malformed MP4: box 'moof' overruns/],
    ['a truncated box header', () => fragmentResponse(Buffer.from([0, 0, 0])), {}, /^the upstream sent malformed MP4: truncated box header/],
    ['a moof without its mdat', () => fragmentResponse(F.fragments[0]!.subarray(0, F.fragments[0]!.readUInt32BE(0))), {}, /not one moof and one mdat/],
    ['a moof with two track fragments', () => fragmentResponse(twoTrafs()), {}, /2 track fragments/],
    ['the fragment of another time', (url) => (timeOf(url) > 0n ? fragmentResponse(F.fragments[0]!) : status(500)), {}, /asked for the fragment at \d+, got the one at 0/],
    [
      'a body over maxFragmentBytes, declared',
      () => new Response(new ReadableStream({ pull: (c) => c.enqueue(new Uint8Array(65536)) }), { status: 200, headers: { 'content-length': '1000000000' } }),
      { maxFragmentBytes: 100_000 },
      /answer of 1000000000 bytes is over the limit of 100000/,
    ],
  ])('an upstream that sends %s: refused with the reason, and the next one continues', async (_name, bad, options, reason) => {
    const message = await failover(bad, options);
    expect(message).toMatch(reason);
    expect(message).not.toMatch(/internal error/);
  });

  it('a tfrf that does not go forward (it would have the same fragment asked for again and again): refused', async () => {
    const ua = upstream();
    /** A's answer for the fragment at `time`, its tfrf announcing `time` itself as the next one. */
    const standingStill = async (url: string, signal: AbortSignal): Promise<Response> => {
      const res = await answer(ua.point, url.slice(A.length + 1), signal);
      if (res.status !== 200) return res;
      const bytes = Buffer.from(await res.arrayBuffer());
      const traf = [...childrenOf(children(bytes).next().value!)].find((b) => b.type === 'traf')!;
      const tfrf = [...childrenOf(traf)].find((b) => b.type === 'uuid' && b.uuid === UUID_TFRF)!;
      const version = tfrf.data[tfrf.headerSize]!;
      const count = tfrf.data[tfrf.headerSize + 4]!;
      expect([version, count > 0]).toEqual([1, true]);
      for (let i = 0; i < count; i++) tfrf.data.writeBigUInt64BE(timeOf(url), tfrf.headerSize + 5 + 16 * i);
      return fragmentResponse(bytes);
    };
    expect(await failover(standingStill)).toMatch(/^the fragment at \d+ announces the next at \d+ \(its tfrf or tfxd does not go forward\)$/);
  });

  it('a fragment the point refuses (its samples overrun its mdat): the stream is taken again, from the next upstream', async () => {
    const ua = upstream();
    const short = async (url: string, signal: AbortSignal): Promise<Response> => {
      const res = await answer(ua.point, url.slice(A.length + 1), signal);
      if (res.status !== 200) return res;
      const moof = children(Buffer.from(await res.arrayBuffer())).next().value!;
      return fragmentResponse(Buffer.concat([moof.data, mdat(Buffer.alloc(8))]));
    };
    // The point's own refusal is the reason; B, which continues, is not blamed for the closed session.
    expect(await failover(short, {}, (p) => expect(p.rejected.map((r) => r.code)).toEqual(['ERR_BAD_FRAGMENT']))).toMatch(
      /^track \d+: the fragment declares \d+ samples but its mdat holds 8 bytes$/,
    );
  });

  it('a body over maxFragmentBytes sent without a length: refused after reading no more than the limit', async () => {
    const streams: Array<{ sent: number; cancelled: boolean }> = [];
    const endless = (): Response => {
      const s = { sent: 0, cancelled: false };
      streams.push(s);
      const body = new ReadableStream<Uint8Array>({
        pull: (c) => {
          s.sent += 16384;
          c.enqueue(new Uint8Array(16384));
        },
        cancel: () => void (s.cancelled = true),
      });
      return new Response(body, { status: 200 });
    };
    expect(await failover(endless, { maxFragmentBytes: 100_000 })).toMatch(/answer is over the limit of 100000 bytes/);
    expect(streams.length).toBeGreaterThan(0);
    for (const s of streams) {
      expect(s.cancelled).toBe(true);
      // The stream may have queued a chunk or two ahead of the reader (its high-water mark).
      expect(s.sent).toBeLessThanOrEqual(100_000 + 3 * 16384);
    }
  });

  it.each<[string, boolean]>([
    ['declared', true],
    ['streamed', false],
  ])('a manifest over maxManifestBytes (%s): refused, and the next upstream is used', async (_name, declared) => {
    const ua = upstream();
    const ub = upstream();
    const padded = (): Response => {
      const text = Buffer.from(`${ua.point.manifest().body.toString()}<!--${' '.repeat(20_000)}-->`);
      return new Response(text, { status: 200, headers: declared ? { 'content-length': String(text.length) } : {} });
    };
    const { fetch } = fakeFetch(routes((url) => (url === `${A}/Manifest` ? padded() : undefined), serve(A, ua), serve(B, ub)));
    const p = pull([A, B], fetch, { maxManifestBytes: 10_000 });
    await ended(p);
    sameAs(p, ub);
    expect(p.sources.find((s) => s.state === 'failing')).toMatchObject({ upstream: A, reason: expect.stringMatching(/over the limit of 10000/) });
  });
});

describe('one upstream failing', () => {
  it('is retried, reported as failing with the reason, and nothing crashes', async () => {
    const { fetch, calls } = fakeFetch(() => status(503));
    const p = pull([A], fetch);
    await until(() => calls.length >= 2, 5000, 10);
    expect(p.point.source).toMatchObject({ state: 'failing', upstream: A, reason: 'upstream 503 for the manifest' });
    expect(p.point.state).toBe('Starting');
    expect(p.point.streams).toEqual([]);
  });

  it('a manifest that is not one: ERR_BAD_UPSTREAM reason', async () => {
    const { fetch, calls } = fakeFetch(() => new Response('<html><body>maintenance</body></html>', { status: 200 }));
    const p = pull([A], fetch);
    await until(() => calls.length >= 1 && p.point.source?.state === 'failing', 5000, 10);
    expect(p.point.source!.reason).toMatch(/^upstream manifest: no SmoothStreamingMedia/);
  });
});

describe('redirects', () => {
  /** A → A2 → A3 → … → B: `hops` redirects (302, relative and absolute locations) before B answers. */
  function chain(hops: number, up: Upstream) {
    return fakeFetch(
      routes((url) => {
        const m = /^http:\/\/origin-a\/(r(\d+)\/)?live\/ch1\.isml\/(.*)$/.exec(url);
        if (!m) return undefined;
        const hop = Number(m[2] ?? 0) + 1;
        // Relative (absolute-path) locations, then the last one absolute to the other host.
        const location = hop >= hops ? `${B}/${m[3]}` : `/r${hop}/live/ch1.isml/${m[3]}`;
        return status(302, { location });
      }, serve(B, up)),
    );
  }

  it('are followed up to maxRedirects', async () => {
    const up = upstream();
    const { fetch, calls } = chain(2, up);
    const p = pull([A], fetch, { maxRedirects: 2 });
    await ended(p);
    sameAs(p, up);
    expect(calls.slice(0, 3).map((c) => [c.url, c.status])).toEqual([
      [`${A}/Manifest`, 302],
      ['http://origin-a/r1/live/ch1.isml/Manifest', 302],
      [`${B}/Manifest`, 200],
    ]);
  });

  it('one more is refused', async () => {
    const up = upstream();
    const { fetch, calls } = chain(3, up);
    const p = pull([A], fetch, { maxRedirects: 2 });
    await until(() => p.point.source?.state === 'failing', 5000, 10);
    expect(p.point.source!.reason).toBe('more than 2 redirects');
    expect(calls.map((c) => c.url)).not.toContain(`${B}/Manifest`);
    expect(p.point.state).toBe('Starting');
  });

  it('one that leaves http(s) is refused', async () => {
    const { fetch, calls } = fakeFetch(() => status(301, { location: 'file:///etc/passwd' }));
    const p = pull([A], fetch);
    await until(() => p.point.source?.state === 'failing', 5000, 10);
    expect(p.point.source!.reason).toMatch(/leaves http/);
    expect(calls.every((c) => c.url.startsWith('http://'))).toBe(true);
  });
});

describe('close()', () => {
  afterEach(() => jest.restoreAllMocks());

  /**
   * The timers created from now on that are still pending and keep the process alive (unref'd ones, such
   * as the point's source-lost timer, are left out).
   */
  function pendingTimers(): () => NodeJS.Timeout[] {
    const pending = new Set<NodeJS.Timeout>();
    const realSet = global.setTimeout;
    const realClear = global.clearTimeout;
    jest.spyOn(global, 'setTimeout').mockImplementation(((fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => {
      const t = realSet(() => {
        pending.delete(t);
        fn(...args);
      }, ms);
      pending.add(t);
      return t;
    }) as typeof setTimeout);
    jest.spyOn(global, 'clearTimeout').mockImplementation((t) => {
      pending.delete(t as NodeJS.Timeout);
      realClear(t);
    });
    return () => [...pending].filter((t) => t.hasRef());
  }

  it('aborts every request in flight, sends no more, clears the source and leaves no timer', async () => {
    const up = upstream();
    // The manifest answers; every fragment request hangs until it is aborted.
    const { fetch, calls } = fakeFetch(routes((url, signal) => (isFragment(url) ? aborted(signal) : undefined), serve(A, up)));
    const p = pull([A], fetch);
    const timers = pendingTimers();
    await until(() => calls.filter((c) => isFragment(c.url)).length >= 1, 5000, 10);
    const pending = calls.filter((c) => c.status === undefined);
    expect(pending.length).toBeGreaterThan(0);
    expect(pending.some((c) => c.signal.aborted)).toBe(false);
    p.puller.close();
    expect(calls.every((c) => c.signal.aborted || c.status !== undefined)).toBe(true);
    expect(p.point.source).toBeUndefined();
    const seen = calls.length;
    await sleep(300);
    expect(calls.length).toBe(seen);
    expect(timers()).toEqual([]);
    p.puller.close(); // twice: nothing more happens
  });

  it('while it waits between polls of a live upstream: the wait ends, no request follows', async () => {
    const up = upstream({ fragments: 9, end: false, options: { edgeWait: 0 } });
    const { fetch, calls } = fakeFetch(routes(serve(A, up)));
    const timers = pendingTimers();
    const p = pull([A], fetch);
    await until(() => calls.filter((c) => c.status === 412).length >= 3, 5000, 10);
    // It is waiting to poll again (or about to): its timer is pending.
    expect(timers().length).toBeGreaterThan(0);
    p.puller.close();
    const seen = calls.length;
    await sleep(300);
    expect(calls.length).toBe(seen);
    expect(timers()).toEqual([]);
    expect(p.point.source).toBeUndefined();
  });

  it('a point that stops is no longer pulled; its source says why', async () => {
    const up = upstream({ fragments: 9, end: false, options: { edgeWait: 0 } });
    const { fetch, calls } = fakeFetch(routes(serve(A, up)));
    const p = pull([A], fetch);
    await until(() => calls.some((c) => c.status === 412), 5000, 10);
    p.point.command('stop');
    expect(p.point.state).toBe('Stopped');
    // Said as the point passed through Stopping (no report follows for Stopped itself).
    expect(p.point.source).toMatchObject({ state: 'waiting', upstream: A, reason: expect.stringMatching(/^the point is Stopp/) });
    const seen = calls.length;
    await sleep(300);
    expect(calls.length).toBe(seen);
  });
});
