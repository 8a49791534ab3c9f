/**
 * The HTTP edge as a host application sees it: ways of mounting the handler, coexistence with the
 * host's session and body parsers, URL routing and traversal, states, headers, and the fragment and
 * manifest responses. Ingest here replays the captured ffmpeg push as a chunked POST (fast and
 * deterministic); the live-push behaviour is covered by the ffmpeg tests.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import express from 'express';
import session from 'express-session';
import { LiveSmoothHandler, LiveSmoothOptions, isIngest, liveSmooth } from '../../lib';
import { isml, liveServer } from '../helpers/server';
import {
  RawPost,
  Reply,
  fixture,
  fragmentsOfRound,
  get,
  parseManifest,
  replay,
  request,
  retime,
  tfxdOf,
} from '../helpers/raw-ingest';

type Kind = 'app.use(handler)' | "app.use('/live', handler)" | 'express.Router at a prefix' | 'node:http server';

interface Host {
  /** URL of the folder the handler serves, e.g. `http://127.0.0.1:1234/live`. */
  base: string;
  /** `http://127.0.0.1:1234` */
  origin: string;
  /** Path prefix of `base` (`''`, `/live`, `/tv/media`). */
  prefix: string;
  /** The media root; its parent folder holds `secret.isml`, which must never be reachable. */
  root: string;
  handler: LiveSmoothHandler;
  /** URLs that reached the host's own routes after the handler (i.e. went to next()). */
  hostHits: string[];
  define(rel: string, metas?: Record<string, string>): void;
  write(rel: string, text: string): void;
  close(): Promise<void>;
}

/**
 * Starts a host server. `before` mounts host middleware ahead of the handler; every request that the
 * handler passes on reaches a final host route answering `200 host: <url>`.
 */
async function host(
  kind: Kind = "app.use('/live', handler)",
  options: LiveSmoothOptions = {},
  before?: (app: express.Express) => void,
  after?: (app: express.Express) => void,
): Promise<Host> {
  const outer = mkdtempSync(path.join(tmpdir(), 'live-smooth-mw-'));
  const root = path.join(outer, 'media');
  mkdirSync(root);
  writeFileSync(path.join(outer, 'secret.isml'), isml());
  const handler = liveSmooth(root, options);
  const hostHits: string[] = [];
  let prefix = '';
  let server: http.Server;
  if (kind === 'node:http server') {
    server = liveServer(handler);
  } else {
    const app = express();
    before?.(app);
    if (kind === 'app.use(handler)') app.use(handler);
    else if (kind === "app.use('/live', handler)") {
      app.use('/live', handler);
      prefix = '/live';
    } else {
      const router = express.Router();
      router.use('/media', handler);
      app.use('/tv', router);
      prefix = '/tv/media';
    }
    after?.(app);
    app.use((req, res) => {
      hostHits.push(req.originalUrl);
      res.status(200).type('text/plain').send(`host: ${req.originalUrl}`);
    });
    server = liveServer(app);
  }
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const write = (rel: string, text: string): void => {
    const file = path.join(root, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, text);
  };
  return {
    base: origin + prefix,
    origin,
    prefix,
    root,
    handler,
    hostHits,
    define: (rel, metas) => write(rel, isml(metas)),
    write,
    async close() {
      handler.origin.close();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      rmSync(outer, { recursive: true, force: true });
    },
  };
}

/** Pushes the whole fixture (ending with the EOS mfra) to `point`; the point ends Stopped with every fragment published. */
async function pushFixture(h: Host, point: string, body: Buffer = fixture().all): Promise<Reply> {
  return replay(`${h.base}/${point}/Streams(all)`, body);
}

const FULL_CACHE = /^public, max-age=31536000, immutable$/;

describe('mounting', () => {
  const kinds: Kind[] = ['app.use(handler)', "app.use('/live', handler)", 'express.Router at a prefix', 'node:http server'];

  it.each(kinds)('%s: ingest, manifest and fragments work; other URLs go to the host', async (kind) => {
    const h = await host(kind);
    try {
      h.define('ch.isml');
      const ingest = await pushFixture(h, 'ch.isml');
      expect(ingest.status).toBe(200);
      const m = await get(`${h.base}/ch.isml/Manifest`);
      expect(m.status).toBe(200);
      expect(m.headers['content-type']).toBe('application/vnd.ms-sstr+xml; charset=utf-8');
      const manifest = parseManifest(m.text);
      expect(manifest.streams.map((s) => [s.type, s.bitrates, s.fragments.length])).toEqual([
        ['video', [50000, 100000], 4],
        ['audio', [32000], 4],
      ]);
      const frag = await get(`${h.base}/ch.isml/QualityLevels(100000)/Fragments(video=10000000)`);
      expect(frag.status).toBe(200);
      expect(frag.headers['content-type']).toBe('video/mp4');

      const other = await get(`${h.origin}${h.prefix}/index.html`);
      const missing = await get(`${h.base}/missing.isml/Manifest`);
      if (kind === 'node:http server') {
        // No next(): the handler answers 404 itself.
        expect([other.status, other.text]).toEqual([404, 'not found\n']);
        expect([missing.status, missing.text]).toEqual([404, 'not found\n']);
      } else {
        expect([other.status, other.text]).toEqual([200, `host: ${h.prefix}/index.html`]);
        expect([missing.status, missing.text]).toEqual([200, `host: ${h.prefix}/missing.isml/Manifest`]);
        expect(h.hostHits).toEqual([`${h.prefix}/index.html`, `${h.prefix}/missing.isml/Manifest`]);
      }
    } finally {
      await h.close();
    }
  });

  it('a prefix mount does not answer the same URL outside its prefix', async () => {
    const h = await host('express.Router at a prefix');
    try {
      h.define('ch.isml');
      const outside = await get(`${h.origin}/ch.isml/Manifest`);
      expect([outside.status, outside.text]).toEqual([200, 'host: /ch.isml/Manifest']);
      const idle = await get(`${h.origin}/tv/media/ch.isml/Manifest`);
      expect(idle.status).toBe(404);
    } finally {
      await h.close();
    }
  });
});

describe('host middleware mounted before the handler', () => {
  it('express-session, express.json() and express.urlencoded(): ingest works and none of our responses sets a cookie', async () => {
    const h = await host("app.use('/live', handler)", {}, (app) => {
      app.use(session({ secret: 'test secret', resave: false, saveUninitialized: false }));
      app.use(express.json());
      app.use(express.urlencoded({ extended: false }));
      app.get('/login', (req, res) => {
        (req.session as unknown as { user: string }).user = 'alice';
        res.send('ok');
      });
    });
    try {
      h.define('ch.isml');
      // Control: the session middleware works and does set cookies on host routes.
      const login = await get(`${h.origin}/login`);
      expect(login.headers['set-cookie']?.[0]).toMatch(/^connect\.sid=/);
      const cookie = login.headers['set-cookie']![0]!.split(';')[0]!;

      const probe = await request(h.origin, '/live/ch.isml/Streams(all)', { method: 'POST', headers: { 'Content-Length': '0' } });
      expect(probe.status).toBe(200);
      // A chunked POST without Content-Type, like ffmpeg's.
      const ingest = await pushFixture(h, 'ch.isml');
      expect(ingest.status).toBe(200);
      const withCookie = { Cookie: cookie };
      const m = await get(`${h.base}/ch.isml/Manifest`, withCookie);
      const f = await get(`${h.base}/ch.isml/QualityLevels(32000)/Fragments(audio=0)`, withCookie);
      const notFound = await get(`${h.base}/ch.isml/QualityLevels(1)/Fragments(audio=0)`);
      expect([m.status, f.status, notFound.status]).toEqual([200, 200, 404]);
      for (const r of [probe, ingest, m, f, notFound]) expect(r.headers['set-cookie']).toBeUndefined();
      expect(parseManifest(m.text).streams[0]!.fragments).toHaveLength(4);
    } finally {
      await h.close();
    }
  });

  it("express.raw({ type: '*/*' }) before it: an ingest with a Content-Type is consumed -> 500 naming the body parser", async () => {
    const h = await host("app.use('/live', handler)", {}, (app) => app.use(express.raw({ type: '*/*' })));
    try {
      h.define('ch.isml');
      // Small enough for raw's 100 kB limit, so raw reads it all and calls next().
      const f = fixture();
      const body = Buffer.concat([f.header, f.fragments[0]!]);
      const r = await replay(`${h.base}/ch.isml/Streams(all)`, body, { 'Content-Type': 'application/octet-stream' });
      expect(r.status).toBe(500);
      expect(r.text).toMatch(/body parser/);
      expect(r.text).toMatch(/isIngest/);
      expect((await get(`${h.base}/ch.isml/Manifest`)).status).toBe(404); // still Idle: nothing was ingested
      // type-is matches nothing without a Content-Type, so ffmpeg's header-less POST gets through '*/*'.
      const ffmpegLike = await replay(`${h.base}/ch.isml/Streams(all)`, body);
      expect(ffmpegLike.status).toBe(200);
    } finally {
      await h.close();
    }
  });

  it('express.raw({ type: () => true }) consumes even a POST without Content-Type -> 500', async () => {
    const h = await host("app.use('/live', handler)", {}, (app) => app.use(express.raw({ type: () => true })));
    try {
      h.define('ch.isml');
      const f = fixture();
      const r = await replay(`${h.base}/ch.isml/Streams(all)`, Buffer.concat([f.header, f.fragments[0]!]));
      expect(r.status).toBe(500);
      expect(r.text).toMatch(/consumed by a body parser/);
    } finally {
      await h.close();
    }
  });

  it('express.raw({ type: (req) => !isIngest(req) }) leaves ingest alone and still parses other bodies', async () => {
    const h = await host(
      "app.use('/live', handler)",
      {},
      (app) => {
        app.use(express.raw({ type: (req) => !isIngest(req as IncomingMessage) }));
        app.post('/echo', (req, res) => {
          res.send(`raw ${(req.body as Buffer).length}`);
        });
      },
    );
    try {
      h.define('ch.isml');
      const r = await pushFixture(h, 'ch.isml');
      expect(r.status).toBe(200);
      expect(parseManifest((await get(`${h.base}/ch.isml/Manifest`)).text).streams).toHaveLength(2);
      const echo = await request(h.origin, '/echo', { method: 'POST', headers: { 'Content-Type': 'application/octet-stream' }, body: 'abcde' });
      expect(echo.text).toBe('raw 5');
    } finally {
      await h.close();
    }
  });

  it('isIngest() truth table', () => {
    const req = (method: string, url: string, originalUrl?: string): IncomingMessage =>
      ({ method, url, originalUrl, headers: {} }) as unknown as IncomingMessage;
    const table: Array<[string, string, boolean, string?]> = [
      ['POST', '/live/ch.isml/Streams(ch1)', true],
      ['POST', '/ch.isml/Streams(ch1)', true],
      ['POST', '/ch.isml/streams(ch1)', true],
      ['POST', '/CH.ISML/STREAMS(ch1)', true],
      ['POST', '/a/b/ch.isml/Events(e1)/Streams(ch1)', true],
      ['POST', '/ch.isml/Streams(ch1)/', true],
      ['POST', '/ch.isml/Streams(ch1)?token=x', true],
      ['POST', '/ch.isml/Streams%28ch1%29', true],
      ['POST', '/x', true, '/live/ch.isml/Streams(ch1)'], // mounted: originalUrl decides
      ['GET', '/ch.isml/Streams(ch1)', false],
      ['PUT', '/ch.isml/Streams(ch1)', false],
      ['POST', '/ch.isml/Manifest', false],
      ['POST', '/ch.ism/Streams(ch1)', false],
      ['POST', '/ch.isml/Streams(ch1)/more', false],
      ['POST', '/ch.isml/QualityLevels(1)/Streams(ch1)', false],
      ['POST', '/ch.isml/Streams(ch1)%', false],
      ['POST', '/api/upload', false],
      ['PUT', '/live/ch.isml/manifest.mpd', true],
      ['POST', '/live/ch.isml/chunk-stream0-00001.m4s', true],
      ['PUT', '/live/ch.isml/v/init.mp4?x=1', true],
      ['PUT', '/live/ch.isml/Manifest', false],
      ['PUT', '/live/upload.mp4', false],
      ['POST', '/Streams(ch1)', false],
    ];
    const got = table.map(([m, u, , o]) => [m, u, isIngest(req(m, u, o))]);
    expect(got).toEqual(table.map(([m, u, want]) => [m, u, want]));
    expect(liveSmooth.isIngest).toBe(isIngest);
  });
});

describe('routing, states and headers', () => {
  let h: Host;
  beforeAll(async () => {
    h = await host("app.use('/live', handler)", { definitionCheckInterval: 0 });
    h.define('ch.isml');
    h.define('events/game1.isml');
    h.define('idle.isml');
    expect((await pushFixture(h, 'ch.isml')).status).toBe(200);
  });
  afterAll(() => h.close());

  it('non-.isml URLs and URLs of a missing .isml go to next()', async () => {
    h.hostHits.length = 0;
    for (const target of ['/live/', '/live/readme.txt', '/live/ch.ism/Manifest', '/live/nope.isml/Manifest', '/live/events/game2.isml/Manifest', '/live/game1.isml/Manifest', '/live/media%20file.mp4']) {
      const r = await request(h.origin, target);
      expect([target, r.status, r.text]).toEqual([target, 200, `host: ${target}`]);
    }
    expect(h.hostHits).toHaveLength(7);
  });

  it('an encoder pushing to a missing .isml gets 404 with the reason at once, its body still open (not next(), which would wait for the body to end)', async () => {
    h.hostHits.length = 0;
    const post = new RawPost(`${h.origin}/live/nope.isml/Streams(ch1)`);
    await post.write(fixture().header);
    const r = await post.response;
    expect([r.status, r.text, r.headers.connection]).toEqual([404, 'no publishing point nope.isml\n', 'close']);
    expect(h.hostHits).toEqual([]);
    post.destroy();
  });

  it.each([
    '/live/..%2f..%2fetc/x.isml/Manifest',
    '/live/..%2fsecret.isml/Manifest',
    '/live/%2e%2e/secret.isml/Manifest',
    '/live/%2E%2E/secret.isml/Manifest',
    '/live/../secret.isml/Manifest',
    '/live/%2e%2e%2fsecret%2eisml/Manifest',
    '/live/..%5csecret.isml/Manifest',
    '/live/..\\secret.isml/Manifest',
    '/live/x%00.isml/Manifest',
    '/live/ch.isml/QualityLevels(100000)/Fragments(video=0%00)',
    '/live/ch.isml/QualityLevels(100000)/Fragments(video%2f..=0)',
    '/live/./ch.isml/Manifest',
    '/live//ch.isml/Manifest',
    '/live/c%3A/x.isml/Manifest',
  ])('traversal %s -> 400, never next()', async (target) => {
    h.hostHits.length = 0;
    const r = await request(h.origin, target);
    expect(r.status).toBe(400);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
    expect(r.text).toMatch(/path segment not allowed|origin-relative/);
    expect(r.text).not.toMatch(/SmoothStreamingMedia/);
    expect(h.hostHits).toEqual([]);
  });

  it('malformed percent-encoding in a .isml URL -> 400', async () => {
    h.hostHits.length = 0;
    const r = await request(h.origin, '/live/ch.isml/Manifest%zz');
    expect([r.status, r.text]).toEqual([400, 'malformed percent-encoding\n']);
    expect(h.hostHits).toEqual([]);
  });

  it('nested folder points work', async () => {
    expect((await pushFixture(h, 'events/game1.isml')).status).toBe(200);
    const m = await get(`${h.base}/events/game1.isml/Manifest`);
    expect(m.status).toBe(200);
    const video = parseManifest(m.text).streams[0]!;
    const r = await get(`${h.base}/events/game1.isml/QualityLevels(50000)/Fragments(video=${video.fragments[3]!.t})`);
    expect([r.status, r.headers['content-type']]).toEqual([200, 'video/mp4']);
    expect(h.handler.origin.points().map((p) => p.path).sort()).toEqual(expect.arrayContaining(['ch.isml', 'events/game1.isml']));
  });

  it('an Idle point answers 404 for its Manifest and fragments', async () => {
    const m = await get(`${h.base}/idle.isml/Manifest`);
    expect(m.status).toBe(404);
    expect(m.text).toMatch(/Idle|Starting/); // a client request starts a point with startOnFirstRequest
    expect(m.headers['cache-control']).toBe('no-store');
    const f = await get(`${h.base}/idle.isml/QualityLevels(100000)/Fragments(video=0)`);
    expect(f.status).toBe(404);
  });

  it('a malformed .isml -> 500 with the reason, for clients and encoders; other points keep working; fixing the file recovers', async () => {
    const errors = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    try {
      h.write('broken.isml', '<smil><head><meta name="lookaheadChunks" content="2"</head></smil>');
      h.write('badvalue.isml', isml({ lookaheadChunks: '99' }));
      const m = await get(`${h.base}/broken.isml/Manifest`);
      expect(m.status).toBe(500);
      expect(m.text).toMatch(/^publishing point error: not well-formed XML/);
      const v = await get(`${h.base}/badvalue.isml/Manifest`);
      expect(v.status).toBe(500);
      expect(v.text).toMatch(/lookaheadChunks="99" is not a whole number between 0 and 32/);
      // An encoder is refused too (probe and real push).
      const probe = await request(h.origin, '/live/broken.isml/Streams(a)', { method: 'POST', headers: { 'Content-Length': '0' } });
      expect(probe.status).toBe(409);
      expect(probe.text).toMatch(/Error/);
      const post = new RawPost(`${h.base}/broken.isml/Streams(a)`);
      await post.write(fixture().header);
      const refused = await post.response;
      expect(refused.status).toBe(409);
      await post.closed;

      const ok = await get(`${h.base}/ch.isml/Manifest`);
      expect(ok.status).toBe(200);
      expect(errors).toHaveBeenCalled();

      h.define('broken.isml');
      await new Promise((ok2) => setTimeout(ok2, 20));
      const fixed = await get(`${h.base}/broken.isml/Manifest`);
      expect(fixed.status).toBe(404); // Idle now, no longer Error
      expect(fixed.text).toMatch(/Idle|Starting/);
    } finally {
      errors.mockRestore();
    }
  });

  it('probe POST with Content-Length: 0 -> 200; a Stopped point refuses encoders with 409', async () => {
    const idle = await request(h.origin, '/live/idle.isml/Streams(probe)', { method: 'POST', headers: { 'Content-Length': '0' } });
    expect([idle.status, idle.body.length]).toEqual([200, 0]);
    expect((await get(`${h.base}/idle.isml/Manifest`)).status).toBe(404); // the probe did not start anything

    // ch.isml ended with mfra: Stopped, and restartOnEncoderReconnect is off.
    const stopped = await request(h.origin, '/live/ch.isml/Streams(all)', { method: 'POST', headers: { 'Content-Length': '0' } });
    expect(stopped.status).toBe(409);
    expect(stopped.text).toMatch(/Stopped/);
    const post = new RawPost(`${h.base}/ch.isml/Streams(all)`);
    await post.write(fixture().header);
    const r = await post.response;
    expect(r.status).toBe(409);
    await post.closed;
    expect(post.req.writableEnded).toBe(false);
  });

  it('GET on Streams() -> 405 Allow: POST; POST on Manifest -> 405 Allow: GET, HEAD', async () => {
    const r = await get(`${h.base}/ch.isml/Streams(all)`);
    expect([r.status, r.headers.allow]).toEqual([405, 'POST']);
    const p = await request(h.origin, '/live/ch.isml/Manifest', { method: 'POST', body: 'x' });
    expect([p.status, p.headers.allow]).toEqual([405, 'GET, HEAD']);
  });

  it('HEAD on Manifest and on a fragment: headers, no body', async () => {
    const full = await get(`${h.base}/ch.isml/Manifest`);
    const head = await get(`${h.base}/ch.isml/Manifest`, {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers['content-type']).toBe(full.headers['content-type']);
    expect(head.headers['content-length']).toBe(String(full.body.length));
    expect(head.headers.etag).toBe(full.headers.etag);
    const frag = await get(`${h.base}/ch.isml/QualityLevels(100000)/Fragments(video=0)`, {}, 'HEAD');
    expect([frag.status, frag.body.length, frag.headers['content-type']]).toEqual([200, 0, 'video/mp4']);
    expect(Number(frag.headers['content-length'])).toBeGreaterThan(1000);
  });

  it('nouns match case-insensitively and an Events() prefix is accepted on GET', async () => {
    expect((await get(`${h.base}/ch.isml/manifest`)).status).toBe(200);
    expect((await get(`${h.base}/ch.isml/qualitylevels(100000)/fragments(video=0)`)).status).toBe(200);
    expect((await get(`${h.base}/ch.isml/Events(e1)/Manifest`)).status).toBe(200);
  });

  it('CORS: Access-Control-Allow-Origin * by default, on successes and errors; OPTIONS preflight', async () => {
    for (const url of [`${h.base}/ch.isml/Manifest`, `${h.base}/ch.isml/QualityLevels(100000)/Fragments(video=0)`, `${h.base}/idle.isml/Manifest`]) {
      expect((await get(url)).headers['access-control-allow-origin']).toBe('*');
    }
    const pre = await request(h.origin, '/live/ch.isml/Manifest', { method: 'OPTIONS' });
    expect(pre.status).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('*');
    expect(pre.headers['access-control-allow-methods']).toMatch(/GET/);
  });

  it.each([
    ['https://player.example', 'https://player.example'],
    [false, undefined],
  ] as const)('CORS option %p', async (cors, expected) => {
    const c = await host("app.use('/live', handler)", { cors });
    try {
      c.define('ch.isml');
      expect((await pushFixture(c, 'ch.isml')).status).toBe(200);
      const m = await get(`${c.base}/ch.isml/Manifest`);
      const f = await get(`${c.base}/ch.isml/QualityLevels(100000)/Fragments(video=0)`);
      const e = await get(`${c.base}/ch.isml/QualityLevels(1)/Fragments(video=0)`);
      for (const r of [m, f, e]) expect(r.headers['access-control-allow-origin']).toBe(expected);
    } finally {
      await c.close();
    }
  });
});

describe('fragment and manifest responses', () => {
  let h: Host;
  const f = fixture();
  const frag = (point: string, bitrate: number | string, noun: string, t: bigint | string | number): string =>
    `${h.base}/${point}/QualityLevels(${bitrate})/${noun}(${/^\d/.test(String(t)) ? `video=${t}` : t})`;

  beforeAll(async () => {
    h = await host();
    // lookaheadChunks set explicitly: the tfrf and hold-back assertions below depend on it.
    h.define('vod.isml', { lookaheadChunks: '2' });
    h.define('edge.isml', { lookaheadChunks: '2' });
    h.define('window.isml', { manifestWindowLength: '1', lookaheadChunks: '2' });
    h.define('long.isml');
    expect((await pushFixture(h, 'vod.isml')).status).toBe(200);
    // No mfra: the POST ends without EOS, the point stays Started and two fragments per track stay held back.
    expect((await pushFixture(h, 'edge.isml', Buffer.concat([f.header, ...fragmentsOfRound(0)]))).status).toBe(200);
    expect((await pushFixture(h, 'window.isml')).status).toBe(200);
    // The fixture stretched to 4 s fragments (tfxd times and durations × 4).
    const long = f.fragments.map((x) => {
      const { time, duration } = tfxdOf(x);
      return retime(x, time * 4n, duration * 4n);
    });
    expect((await pushFixture(h, 'long.isml', Buffer.concat([f.header, ...long, f.mfra]))).status).toBe(200);
  });
  afterAll(() => h.close());

  it('fragments: Content-Type by track type, immutable long max-age, ETag, Last-Modified; If-None-Match -> 304', async () => {
    const v = await get(frag('vod.isml', 100000, 'Fragments', 0));
    expect(v.status).toBe(200);
    expect(v.headers['content-type']).toBe('video/mp4');
    expect(v.headers['cache-control']).toMatch(FULL_CACHE);
    expect(v.headers.etag).toMatch(/^"[^"]+"$/);
    const lm = Date.parse(v.headers['last-modified']!);
    expect(Number.isNaN(lm)).toBe(false);
    expect(Math.abs(Date.now() - lm)).toBeLessThan(60_000);
    expect(v.body.subarray(4, 8).toString('latin1')).toBe('moof');

    const a = await get(`${h.base}/vod.isml/QualityLevels(32000)/Fragments(audio=0)`);
    expect([a.status, a.headers['content-type']]).toEqual([200, 'audio/mp4']);
    expect(a.headers['cache-control']).toMatch(FULL_CACHE);

    const again = await get(frag('vod.isml', 100000, 'Fragments', 0), { 'If-None-Match': v.headers.etag! });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.headers.etag).toBe(v.headers.etag);
    const stale = await get(frag('vod.isml', 100000, 'Fragments', 0), { 'If-None-Match': '"other"' });
    expect(stale.status).toBe(200);
    // Each part and each fragment time of a track has its own validator; a URL keeps its validator.
    // (ETags are scoped to their URL, so tracks may share values: "f<session>.<time>.<part>".)
    const info = await get(frag('vod.isml', 100000, 'FragmentInfo', 0));
    const next = await get(frag('vod.isml', 100000, 'Fragments', 10_000_000));
    expect(new Set([v.headers.etag, info.headers.etag, next.headers.etag]).size).toBe(3);
    expect((await get(frag('vod.isml', 100000, 'Fragments', 0))).headers.etag).toBe(v.headers.etag);
  });

  it('manifest: ETag/304, Last-Modified, and max-age about half a fragment duration', async () => {
    const m = await get(`${h.base}/vod.isml/Manifest`);
    expect(m.status).toBe(200);
    expect(m.headers.etag).toBeDefined();
    expect(Number.isNaN(Date.parse(m.headers['last-modified']!))).toBe(false);
    const again = await get(`${h.base}/vod.isml/Manifest`, { 'If-None-Match': m.headers.etag! });
    expect([again.status, again.body.length]).toEqual([304, 0]);

    const maxAge = (r: Reply): number => {
      const cc = r.headers['cache-control']!;
      if (/no-cache|no-store/.test(cc)) return 0;
      const found = /max-age=(\d+)/.exec(cc);
      if (!found) throw new Error(`no max-age in ${cc}`);
      return Number(found[1]);
    };
    const halfShortest = (text: string): number =>
      Math.min(...parseManifest(text).streams.flatMap((s) => s.fragments.map((x) => Number(x.d) / s.timescale))) / 2;
    // 1 s fragments: half is 0.5 s, so no whole-second max-age fits.
    expect(maxAge(m)).toBeLessThanOrEqual(halfShortest(m.text));
    expect(m.headers['cache-control']).not.toMatch(/immutable/);
    // ~4 s fragments: a positive max-age, still half a fragment (with 5 % of slack: AAC's 3.968 s ones get 2 s).
    const long = await get(`${h.base}/long.isml/Manifest`);
    expect(long.status).toBe(200);
    expect(maxAge(long)).toBeGreaterThan(0);
    expect(maxAge(long)).toBeLessThanOrEqual(halfShortest(long.text) * 1.05);
    expect(long.headers['cache-control']).toMatch(/^public, max-age=\d+$/);
  });

  it('412 with an empty body and no-store for times after the newest ingested fragment', async () => {
    const m = parseManifest((await get(`${h.base}/edge.isml/Manifest`)).text);
    const video = m.streams[0]!;
    expect(video.fragments.map((x) => x.t)).toEqual([0n, 10_000_000n]); // 2 of 4 held back for lookahead
    // Held back from the manifest, but ingested: served.
    for (const t of [20_000_000n, 30_000_000n]) {
      expect([String(t), (await get(frag('edge.isml', 100000, 'Fragments', t))).status]).toEqual([String(t), 200]);
    }
    for (const t of [40_000_000n, 30_000_001n, 17_000_000_000_000_000n]) {
      const r = await get(frag('edge.isml', 100000, 'Fragments', t));
      expect([String(t), r.status, r.body.length, r.headers['cache-control']]).toEqual([String(t), 412, 0, 'no-store']);
    }
    const info = await get(frag('edge.isml', 50000, 'FragmentInfo', 40_000_000n));
    expect(info.status).toBe(412);
    // Inside the window but not a fragment start: 404, not 412.
    expect((await get(frag('edge.isml', 100000, 'Fragments', 5_000_000))).status).toBe(404);
    // Once the stream has ended (vod.isml: EOS received) nothing more will come: 404.
    expect((await get(frag('vod.isml', 100000, 'Fragments', 40_000_000))).status).toBe(404);
  });

  it('404 for an unknown bitrate, an unknown track, a trimmed time; unsupported formats', async () => {
    const cases: Array<[string, RegExp]> = [
      [frag('vod.isml', 12345, 'Fragments', 0), /no quality level 12345 for video/],
      [`${h.base}/vod.isml/QualityLevels(100000)/Fragments(subtitles=0)`, /no track named subtitles/],
      [`${h.base}/vod.isml/QualityLevels(100000,Lang=en)/Fragments(video=0)`, /no quality level 100000/],
      [`${h.base}/vod.isml/QualityLevels(100000)/Fragments(video=0,format=m3u8-aapl)`, /formats are not supported/],
      [`${h.base}/vod.isml/Manifest(format=f4m)`, /format f4m is not supported/],
      [`${h.base}/vod.isml/QualityLevels(100000)/Thumbnails(video=0)`, /unknown resource/],
      [`${h.base}/vod.isml/Foo`, /unknown resource/],
    ];
    for (const [url, reason] of cases) {
      const r = await get(url);
      expect([url, r.status]).toEqual([url, 404]);
      expect(r.text).toMatch(reason);
      expect(r.headers['cache-control']).toBe('no-store');
    }
    // manifestWindowLength 1 s: the manifest lists the newest second; two more fragments stay fetchable
    // for clients holding an older manifest; anything before that is trimmed.
    const w = parseManifest((await get(`${h.base}/window.isml/Manifest`)).text);
    expect(w.streams[0]!.fragments.map((x) => x.t)).toEqual([30_000_000n]);
    expect((await get(frag('window.isml', 100000, 'Fragments', 10_000_000))).status).toBe(200);
    const trimmed = await get(frag('window.isml', 100000, 'Fragments', 0));
    expect(trimmed.status).toBe(404);
    expect(trimmed.text).toMatch(/outside the window/);
  });

  it.each([
    'QualityLevels(100000)/Fragments(video)',
    'QualityLevels(100000)/Fragments(video=)',
    'QualityLevels(100000)/Fragments(video=abc)',
    'QualityLevels(100000)/Fragments(video=-10)',
    'QualityLevels(100000)/Fragments(=0)',
    'QualityLevels(100000)/Fragments(video=18446744073709551616)',
    'QualityLevels(abc)/Fragments(video=0)',
    'QualityLevels()/Fragments(video=0)',
    'QualityLevels(100000,broken)/Fragments(video=0)',
    'QualityLevels(100000)/FragmentInfo(video=0x10)',
  ])('400 for a malformed predicate: %s', async (tail) => {
    const r = await get(`${h.base}/vod.isml/${tail}`);
    expect(r.status).toBe(400);
    expect(r.text.length).toBeLessThan(200);
  });

  it('RawFragments returns the mdat payload: the ingested sample bytes', async () => {
    const full = await get(frag('vod.isml', 100000, 'Fragments', 0));
    const raw = await get(frag('vod.isml', 100000, 'RawFragments', 0));
    expect(raw.status).toBe(200);
    const moofSize = full.body.readUInt32BE(0);
    expect(full.body.subarray(moofSize + 4, moofSize + 8).toString('latin1')).toBe('mdat');
    expect(raw.body.equals(full.body.subarray(moofSize + 8))).toBe(true);
    // The first fixture fragment is track 1 (100 kbit/s) alone: its mdat payload is exactly what we serve.
    const ingested = f.fragments[0]!;
    const ingestedMoof = ingested.readUInt32BE(0);
    expect(raw.body.equals(ingested.subarray(ingestedMoof + 8))).toBe(true);
    expect(raw.headers['content-length']).toBe(String(raw.body.length));
  });

  it('FragmentInfo returns only the moof, with tfxd and tfrf', async () => {
    const full = await get(frag('vod.isml', 100000, 'Fragments', 0));
    const info = await get(frag('vod.isml', 100000, 'FragmentInfo', 0));
    expect(info.status).toBe(200);
    expect(info.body.subarray(4, 8).toString('latin1')).toBe('moof');
    expect(info.body.readUInt32BE(0)).toBe(info.body.length);
    expect(info.body.equals(full.body.subarray(0, info.body.length))).toBe(true);
    expect(tfxdOf(info.body)).toEqual({ time: 0n, duration: 10_000_000n });
    const tfrf = info.body.indexOf(Buffer.from('d4807ef2ca3946958e5426cb9e46a79f', 'hex'));
    expect(tfrf).toBeGreaterThan(0);
    const count = info.body[tfrf + 20]!;
    expect(count).toBe(2); // lookaheadChunks 2
    expect(info.body.readBigUInt64BE(tfrf + 21)).toBe(10_000_000n);
    expect(info.body.readBigUInt64BE(tfrf + 37)).toBe(20_000_000n);
  });

  it('KeyFrames -> documented 404', async () => {
    const r = await get(frag('vod.isml', 100000, 'KeyFrames', 0));
    expect(r.status).toBe(404);
    expect(r.text).toBe('KeyFrames is not supported by this origin\n');
  });
});
