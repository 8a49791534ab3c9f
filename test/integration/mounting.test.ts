/**
 * "Handler loss": a host app mounts everything a real site has around the middleware and the management
 * router — host settings, express-session, express.json(), express.urlencoded(), express.static() on the
 * same folder as the definitions, a header-setting middleware and a catch-all route — once before and
 * once after them. Ingest, playback, the definition file itself, the management API, and settings
 * changed through it must all keep working.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import express from 'express';
import session from 'express-session';
import { AdminHandler, LiveSmoothHandler, liveSmooth } from '../../lib';
import { RawPost, Reply, fixture, get, parseManifest, replay, request, until } from '../helpers/raw-ingest';
import { isml, liveServer } from '../helpers/server';

type Order = 'before' | 'after';

interface Host {
  origin: string;
  root: string;
  handler: LiveSmoothHandler;
  admin: AdminHandler;
  /** URLs answered by the host's catch-all route. */
  hostHits: string[];
  define(rel: string, metas?: Record<string, string>): void;
  close(): Promise<void>;
}

const ADMIN_KEY = { 'X-Admin-Key': 'k' };

/**
 * The host app. `order` says whether the host middleware comes before or after `liveSmooth` and
 * `liveSmooth.admin` (the catch-all route is always last).
 */
async function host(order: Order): Promise<Host> {
  const root = mkdtempSync(path.join(tmpdir(), 'live-smooth-mount-'));
  const handler = liveSmooth(root);
  const admin = liveSmooth.admin(handler);
  const hostHits: string[] = [];
  const app = express();
  // Host settings that change how Express routes and answers.
  app.disable('x-powered-by');
  app.enable('strict routing');
  app.set('case sensitive routing', true);
  app.set('trust proxy', true);
  app.set('json spaces', 2);
  app.set('query parser', 'extended');
  app.set('etag', 'strong');
  const hostMiddleware = (): void => {
    app.use((_req, res, next) => {
      res.setHeader('X-Host', 'yes');
      next();
    });
    app.use(session({ secret: 'test secret', resave: false, saveUninitialized: false }));
    app.use(express.json());
    app.use(express.urlencoded({ extended: true }));
    app.use('/live', express.static(root));
  };
  const ours = (): void => {
    app.use('/live', handler);
    // The management router behind the host's own access check.
    app.use('/admin', (req, res, next) => (req.headers['x-admin-key'] === 'k' ? next() : res.status(401).send('no')), admin);
  };
  if (order === 'before') {
    hostMiddleware();
    ours();
  } else {
    ours();
    hostMiddleware();
  }
  app.get('/login', (req, res) => {
    (req.session as unknown as { user: string }).user = 'alice';
    res.send('ok');
  });
  app.all('/{*rest}', (req, res) => {
    hostHits.push(req.originalUrl);
    res.status(200).type('text/plain').send(`host: ${req.originalUrl}`);
  });
  const server = liveServer(app);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    root,
    handler,
    admin,
    hostHits,
    define(rel, metas = {}) {
      const file = path.join(root, ...rel.split('/'));
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, isml(metas));
    },
    async close() {
      handler.origin.close();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/** A management request with the host's admin key and a JSON body. */
async function adminCall(h: Host, method: string, target: string, body?: unknown, type = 'application/json'): Promise<Reply> {
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  return request(h.origin, `/admin${target}`, {
    method,
    headers: { ...ADMIN_KEY, ...(payload === undefined ? {} : { 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(payload)) }) },
    body: payload,
  });
}

const json = (r: Reply): Record<string, unknown> => JSON.parse(r.text) as Record<string, unknown>;

/** Plays a Stopped point completely: the manifest and every listed fragment at every bitrate. */
async function play(h: Host, rel: string): Promise<{ manifest: Reply; fragments: Reply[] }> {
  const manifest = await get(`${h.origin}/live/${rel}/Manifest`);
  expect(manifest.status).toBe(200);
  const fragments: Reply[] = [];
  for (const s of parseManifest(manifest.text).streams) {
    for (const b of s.bitrates) {
      for (const f of s.fragments) fragments.push(await get(`${h.origin}/live/${rel}/QualityLevels(${b})/Fragments(${s.name}=${f.t})`));
    }
  }
  return { manifest, fragments };
}

describe.each<Order>(['before', 'after'])('host middleware mounted %s liveSmooth and liveSmooth.admin', (order) => {
  let h: Host;
  beforeEach(async () => {
    h = await host(order);
  });
  afterEach(async () => {
    await h.close();
  });

  it('ingest and playback work, set no cookie, and other URLs still reach the host', async () => {
    h.define('ch1.isml');
    const login = await get(`${h.origin}/login`);
    expect(login.headers['set-cookie']?.[0]).toMatch(/^connect\.sid=/); // the session middleware is live
    const cookie = login.headers['set-cookie']![0]!.split(';')[0]!;

    const probe = await request(h.origin, '/live/ch1.isml/Streams(all)', { method: 'POST', headers: { 'Content-Length': '0', Cookie: cookie } });
    expect(probe.status).toBe(200);
    const ingest = await replay(`${h.origin}/live/ch1.isml/Streams(all)`, fixture().all, { Cookie: cookie });
    expect(ingest.status).toBe(200);
    const { manifest, fragments } = await play(h, 'ch1.isml');
    expect(parseManifest(manifest.text).streams.map((s) => [s.name, s.bitrates.length, s.fragments.length])).toEqual([
      ['video', 2, 4],
      ['audio', 1, 4],
    ]);
    expect(fragments).toHaveLength(12);
    expect(fragments.map((f) => f.status)).toEqual(fragments.map(() => 200));
    // Nouns still match case-insensitively and a trailing slash is accepted, whatever the host's routing settings.
    expect((await get(`${h.origin}/live/ch1.isml/manifest`)).status).toBe(200);
    expect((await get(`${h.origin}/live/ch1.isml/Manifest/`)).status).toBe(200);
    for (const r of [probe, ingest, manifest, ...fragments]) {
      expect(r.headers['set-cookie']).toBeUndefined();
      expect(r.headers['x-powered-by']).toBeUndefined();
    }
    // Not ours: the host answers.
    for (const url of ['/live/ch1.txt', '/live/missing.isml/Manifest', '/elsewhere']) {
      const r = await get(`${h.origin}${url}`);
      expect([url, r.status, r.text]).toEqual([url, 200, `host: ${url}`]);
    }
  });

  it('GET /live/ch1.isml (the definition file itself) is served by express.static', async () => {
    h.define('events/ch1.isml', { title: 'Static' });
    const file = readFileSync(path.join(h.root, 'events', 'ch1.isml'), 'utf8');
    const r = await get(`${h.origin}/live/events/ch1.isml`);
    expect(r.status).toBe(200);
    expect(r.text).toBe(file);
    expect(r.headers['x-host']).toBe('yes');
    const head = await get(`${h.origin}/live/events/ch1.isml`, {}, 'HEAD');
    expect([head.status, head.headers['content-length']]).toEqual([200, String(Buffer.byteLength(file))]);
    expect(h.hostHits).toEqual([]);
    // The state file lives in the same folder; express.static's default (dotfiles ignored) keeps it private.
    const post = new RawPost(`${h.origin}/live/events/ch1.isml/Streams(all)`);
    try {
      await post.write(Buffer.concat([fixture().header, ...fixture().fragments.slice(0, 3)]));
      const stateFile = path.join(h.root, '.live-smooth-state.json');
      await until(() => existsSync(stateFile) && readFileSync(stateFile, 'utf8').includes('events/ch1.isml'), 3000);
      const leak = await get(`${h.origin}/live/.live-smooth-state.json`);
      expect(leak.text).toBe('host: /live/.live-smooth-state.json');
    } finally {
      post.destroy();
    }
  });

  it('the management API works behind the host access check and the host body parsers', async () => {
    h.define('ch1.isml', { startOnFirstRequest: 'False' });
    expect((await request(h.origin, '/admin/publishing-points')).status).toBe(401); // the host's check runs first
    const list = await adminCall(h, 'GET', '/publishing-points');
    expect(list.status).toBe(200);
    expect((json(list).publishingPoints as Array<{ path: string }>).map((p) => p.path)).toEqual(['ch1.isml']);
    const created = await adminCall(h, 'PUT', '/publishing-points/new/ch2.isml', { title: 'Two', lookaheadChunks: 1 });
    expect(created.status).toBe(201);
    expect(json(created)).toMatchObject({ path: 'new/ch2.isml', state: 'Idle', settings: { title: 'Two', lookaheadChunks: 1 } });
    // A form post is refused even though the host's urlencoded parser read it.
    const form = await adminCall(h, 'POST', '/publishing-points/ch1.isml/start', 'confirm=1', 'application/x-www-form-urlencoded');
    expect(form.status).toBe(415);
    const start = await adminCall(h, 'POST', '/publishing-points/ch1.isml/start', { reason: 'show' });
    expect([start.status, json(start).state]).toEqual([200, 'Starting']);
    const again = await adminCall(h, 'POST', '/publishing-points/ch1.isml/start', {});
    expect(again.status).toBe(409);
    expect(json(again).error).toMatch(/Starting/);
    expect((await adminCall(h, 'POST', '/publishing-points/ch1.isml/shutdown', {})).status).toBe(200);
    expect((await adminCall(h, 'DELETE', '/publishing-points/new/ch2.isml')).status).toBe(204);
    for (const r of [list, created, start]) expect(r.headers['set-cookie']).toBeUndefined();
  });

  it('changing an Idle point’s settings through the API keeps its .isml routes working', async () => {
    h.define('ch1.isml');
    // The point is known to the middleware before the change (lookups are cached). A probe, not a
    // client GET: with startOnFirstRequest (the default) a GET would start the point.
    const probe = await request(h.origin, '/live/ch1.isml/Streams(all)', { method: 'POST', headers: { 'Content-Length': '0' } });
    expect(probe.status).toBe(200);
    const put = await adminCall(h, 'PUT', '/publishing-points/ch1.isml', { lookaheadChunks: 1, title: 'Renamed' });
    expect(put.status).toBe(200);
    // express.static serves the rewritten definition.
    const def = await get(`${h.origin}/live/ch1.isml`);
    expect(def.text).toContain('<meta name="lookaheadChunks" content="1" />');
    expect(def.text).toContain('<meta name="title" content="Renamed" />');

    expect((await replay(`${h.origin}/live/ch1.isml/Streams(all)`, fixture().all)).status).toBe(200);
    const first = await play(h, 'ch1.isml');
    expect(first.manifest.text).toContain('LookAheadFragmentCount="1"');
    expect(first.fragments.every((f) => f.status === 200)).toBe(true);
    const api = json(await adminCall(h, 'GET', '/publishing-points/ch1.isml'));
    expect(api).toMatchObject({ state: 'Stopped', settings: { title: 'Renamed', lookaheadChunks: 1 } });

    // Again after a shutdown: change, push, play.
    expect((await adminCall(h, 'POST', '/publishing-points/ch1.isml/shutdown', {})).status).toBe(200);
    expect((await adminCall(h, 'PUT', '/publishing-points/ch1.isml', { lookaheadChunks: 3 })).status).toBe(200);
    expect((await replay(`${h.origin}/live/ch1.isml/Streams(all)`, fixture().all)).status).toBe(200);
    const second = await play(h, 'ch1.isml');
    expect(second.manifest.text).toContain('LookAheadFragmentCount="3"');
    expect(second.fragments.every((f) => f.status === 200)).toBe(true);
  });

  it('an encoder that connected to the Idle point before a settings change is not lost', async () => {
    h.define('ch1.isml'); // startOnFirstRequest by default: the POST is accepted while Idle
    const post = new RawPost(`${h.origin}/live/ch1.isml/Streams(all)`);
    try {
      const f = fixture();
      await post.write(f.ftyp); // connected, header not complete yet: the point is still Idle
      await until(async () => (await adminCall(h, 'GET', '/publishing-points/ch1.isml')).status === 200);
      expect(json(await adminCall(h, 'GET', '/publishing-points/ch1.isml')).state).toBe('Idle');
      expect((await adminCall(h, 'PUT', '/publishing-points/ch1.isml', { title: 'Changed while connecting' })).status).toBe(200);
      await post.write(Buffer.concat([f.lsm, f.moov, ...f.fragments, f.mfra]));
      const reply = await post.end();
      expect(reply.status).toBe(200);
      const p = json(await adminCall(h, 'GET', '/publishing-points/ch1.isml'));
      expect(p).toMatchObject({ state: 'Stopped', settings: { title: 'Changed while connecting' } });
      expect((await get(`${h.origin}/live/ch1.isml/Manifest`)).status).toBe(200);
    } finally {
      post.destroy();
    }
  });
});
