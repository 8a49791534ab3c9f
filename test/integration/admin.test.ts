/**
 * The management API (`liveSmooth.admin(handler)`) next to the middleware in one Express app: listing,
 * reading, creating, editing and deleting definitions; commands (JSON only, refusals with a reason);
 * path validation; concurrent writes, symbolic links that leave the root and deeply nested JSON;
 * statistics and the event stream; the state file across a restart; and settings that wait for Idle.
 * Most tests replay the captured ffmpeg push (fast, deterministic); one drives the commands while a
 * real ffmpeg pushes.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import express from 'express';
import { AdminHandler, LiveSmoothHandler, LiveSmoothOptions, liveSmooth, readDefinition } from '../../lib';
import { Push, push } from '../helpers/ffmpeg';
import { RawPost, Reply, fixture, fragmentsOfRound, get, parseManifest, replay, request, sleep, until } from '../helpers/raw-ingest';
import { isml, liveServer } from '../helpers/server';
import { ffmpegPath, withTool } from '../helpers/tools';

const FFMPEG = ffmpegPath();
const F = fixture();

interface Site {
  /** `http://127.0.0.1:<port>` */
  origin: string;
  /** The media root; its parent holds `secret.isml`, which must stay out of reach. */
  root: string;
  handler: LiveSmoothHandler;
  admin: AdminHandler;
  server: http.Server;
  define(rel: string, metas?: Record<string, string>): void;
  /** Closes the server and the origin; the root stays unless `remove`. */
  close(remove?: boolean): Promise<void>;
}

/** `app.use('/live', liveSmooth(root))` and `app.use('/admin', liveSmooth.admin(handler))`, on `root` (new if not given). */
async function site(options: LiveSmoothOptions = {}, root?: string): Promise<Site> {
  if (!root) {
    const outer = mkdtempSync(path.join(tmpdir(), 'live-smooth-admin-'));
    writeFileSync(path.join(outer, 'secret.isml'), isml());
    root = path.join(outer, 'media');
    mkdirSync(root);
  }
  const media = root;
  const handler = liveSmooth(media, options);
  const admin = liveSmooth.admin(handler);
  const app = express();
  app.use('/live', handler);
  app.use('/admin', admin);
  const server = liveServer(app);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    root: media,
    handler,
    admin,
    server,
    define(rel, metas = {}) {
      const file = path.join(media, ...rel.split('/'));
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, isml(metas));
    },
    async close(remove = true) {
      handler.origin.close();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      if (remove) rmSync(path.dirname(media), { recursive: true, force: true });
    },
  };
}

/** The JSON form of a point, as far as these tests read it. */
interface ApiPoint {
  path: string;
  state: string;
  error: string | null;
  settings: Record<string, unknown>;
  pendingSettings: boolean;
  bytes: number;
  restarts: number;
  duplicatesDropped: number;
  refused: number;
  streams: Array<{ id: string; state: string; remoteAddress: string | null; connections: number }>;
  tracks: Array<{
    key: string;
    type: string;
    name: string;
    bitrate: number;
    timescale: number;
    incomingBitrate: number;
    lastFragmentTime: string | null;
    lastFragmentDuration: string | null;
    fragments: number;
    bytes: number;
    requests: number;
    notFound: number;
    notYetAvailable: number;
  }>;
}

interface ApiReply<T = unknown> {
  status: number;
  body: T;
  text: string;
  headers: Headers;
}

/** One management request; `body` is sent as JSON unless `contentType` says otherwise (`null`: no header). */
async function api<T = Record<string, unknown>>(
  s: Site,
  method: string,
  target: string,
  body?: unknown,
  contentType: string | null = 'application/json',
): Promise<ApiReply<T>> {
  const headers: Record<string, string> = {};
  if (contentType !== null && body !== undefined) headers['Content-Type'] = contentType;
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const res = await fetch(`${s.origin}/admin${target}`, { method, headers, body: payload });
  const text = await res.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed as T, text, headers: res.headers };
}

const point = async (s: Site, rel: string): Promise<ApiPoint> => {
  const r = await api<ApiPoint>(s, 'GET', `/publishing-points/${rel}`);
  if (r.status !== 200) throw new Error(`GET ${rel}: ${r.status} ${r.text}`);
  return r.body;
};
const command = (s: Site, rel: string, cmd: string): Promise<ApiReply<ApiPoint & { error?: string; code?: string }>> =>
  api(s, 'POST', `/publishing-points/${rel}/${cmd}`, {});

/** Waits for the point to reach `state` (through the API). */
async function waitState(s: Site, rel: string, state: string, ms = 10_000): Promise<ApiPoint> {
  let last: ApiPoint | undefined;
  try {
    return await until(async () => {
      last = await point(s, rel);
      return last.state === state ? last : undefined;
    }, ms);
  } catch {
    throw new Error(`${rel} did not reach ${state} within ${ms} ms; last: ${JSON.stringify(last)}`);
  }
}

/** A Server-Sent Events client that records every event with its arrival time. */
interface EventLog {
  events: Array<{ event: string; data: unknown; at: number }>;
  opened: Promise<{ status: number; contentType: string | undefined }>;
  close(): void;
}

function listen(url: string): EventLog {
  const events: EventLog['events'] = [];
  let req: http.ClientRequest;
  const opened = new Promise<{ status: number; contentType: string | undefined }>((ok, fail) => {
    req = http.get(url, { agent: false }, (res) => {
      ok({ status: res.statusCode ?? 0, contentType: res.headers['content-type'] });
      res.setEncoding('utf8');
      let buffer = '';
      res.on('data', (chunk: string) => {
        buffer += chunk;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of frame.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
          }
          if (data.length > 0) events.push({ event, data: JSON.parse(data.join('\n')), at: Date.now() });
        }
      });
    });
    req.on('error', fail);
  });
  opened.catch(() => undefined);
  return { events, opened, close: () => req.destroy() };
}

/** The `state` events of one point, as `State (reason)`. */
function statesOf(log: EventLog, rel: string): string[] {
  return log.events
    .filter((e) => e.event === 'state' && (e.data as { path: string }).path === rel)
    .map((e) => (e.data as { state: string }).state);
}

/** Gaps in ms between consecutive `stats` events. */
function statsGaps(log: EventLog): number[] {
  const times = log.events.filter((e) => e.event === 'stats').map((e) => e.at);
  return times.slice(1).map((t, i) => t - times[i]!);
}

/** Fragments per round of the fixture ({@link fragmentsOfRound}): video 100k, video 50k, audio; four times. */
const PER_ROUND = 12;

/** Header + rounds `from`..`to` of the fixture on one POST, kept open (an encoder running for a while). */
async function roundsPost(s: Site, rel: string, from: number, to: number, stream = 'ch1'): Promise<RawPost> {
  const post = new RawPost(`${s.origin}/live/${rel}/Streams(${stream})`);
  await post.write(F.header);
  for (let r = from; r <= to; r++) for (const f of fragmentsOfRound(r)) await post.write(f);
  return post;
}

/** Waits until the point shows stream `id` disconnected (the server saw the socket go). */
async function disconnected(s: Site, rel: string, id = 'ch1'): Promise<ApiPoint> {
  return until(async () => {
    const q = await point(s, rel);
    return q.streams.find((x) => x.id === id)?.state === 'disconnected' ? q : undefined;
  });
}

/** Pushes header + the first `n` fragments of the fixture and keeps the POST open (a live encoder). */
async function livePost(s: Site, rel: string, n = F.fragments.length, stream = 'ch1'): Promise<RawPost> {
  const post = new RawPost(`${s.origin}/live/${rel}/Streams(${stream})`);
  await post.write(F.header);
  for (const f of F.fragments.slice(0, n)) await post.write(f);
  return post;
}

describe('management API: definitions', () => {
  let s: Site;
  beforeEach(async () => {
    s = await site();
  });
  afterEach(async () => {
    await s.close();
  });

  it('lists nothing for an empty root; GET / is the dashboard', async () => {
    const list = await api(s, 'GET', '/publishing-points');
    expect(list.status).toBe(200);
    expect(list.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(list.headers.get('cache-control')).toBe('no-store');
    expect(list.body).toEqual({ publishingPoints: [] });
    const page = await fetch(`${s.origin}/admin/`);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
  });

  it('lists every definition under the root, nested folders included, with state and settings', async () => {
    s.define('ch1.isml', { title: 'One' });
    s.define('sports/finals/ch2.isml', { lookaheadChunks: '3' });
    writeFileSync(path.join(s.root, 'notes.txt'), 'not a point');
    mkdirSync(path.join(s.root, '.hidden'));
    writeFileSync(path.join(s.root, '.hidden', 'x.isml'), isml());
    const list = await api<{ publishingPoints: ApiPoint[] }>(s, 'GET', '/publishing-points');
    expect(list.body.publishingPoints.map((p) => [p.path, p.state, p.settings.title, p.settings.lookaheadChunks])).toEqual([
      ['ch1.isml', 'Idle', 'One', 2],
      ['sports/finals/ch2.isml', 'Idle', null, 3],
    ]);
    const one = await point(s, 'sports/finals/ch2.isml');
    expect(one).toMatchObject({ path: 'sports/finals/ch2.isml', state: 'Idle', error: null, pendingSettings: false, bytes: 0, streams: [], tracks: [] });
    // Every meta of §5.2 is shown, typed, with the site default (startOnFirstRequest true) filled in.
    expect(one.settings).toMatchObject({ startOnFirstRequest: true, restartOnEncoderReconnect: false, sourceType: 'Push', manifestWindowLength: 0 });
    expect((await api(s, 'GET', '/publishing-points/missing.isml')).status).toBe(404);
  });

  it('PUT creates a definition (201), edits it in place (200) and null removes a meta (inherits again)', async () => {
    const created = await api<ApiPoint>(s, 'PUT', '/publishing-points/events/game1.isml', { title: 'Game "1" & <more>', lookaheadChunks: 3, startOnFirstRequest: false });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ path: 'events/game1.isml', state: 'Idle', settings: { title: 'Game "1" & <more>', lookaheadChunks: 3, startOnFirstRequest: false } });
    const file = path.join(s.root, 'events', 'game1.isml');
    const first = readFileSync(file, 'utf8');
    expect(first).toContain('<smil xmlns="http://www.w3.org/2001/SMIL20/Language">');
    expect(readDefinition(first).overrides).toMatchObject({ title: 'Game "1" & <more>', lookaheadChunks: 3, startOnFirstRequest: false });

    // A hand-added comment and unknown meta survive an edit.
    writeFileSync(file, first.replace('</head>', '  <!-- ops: keep -->\n    <meta name="tool.version" content="7" />\n  </head>'));
    const edited = await api<ApiPoint>(s, 'PUT', '/publishing-points/events/game1.isml', { manifestWindowLength: 60 });
    expect(edited.status).toBe(200);
    expect(edited.body.settings).toMatchObject({ title: 'Game "1" & <more>', lookaheadChunks: 3, manifestWindowLength: 60 });
    const second = readFileSync(file, 'utf8');
    expect(second).toContain('<!-- ops: keep -->');
    expect(second).toContain('<meta name="tool.version" content="7" />');
    expect(second).toContain('<meta name="manifestWindowLength" content="60" />');

    const reverted = await api<ApiPoint>(s, 'PUT', '/publishing-points/events/game1.isml', { startOnFirstRequest: null, lookaheadChunks: null });
    expect(reverted.status).toBe(200);
    expect(reverted.body.settings).toMatchObject({ startOnFirstRequest: true, lookaheadChunks: 2 }); // site default, IIS default
    expect(readFileSync(file, 'utf8')).not.toContain('lookaheadChunks');
  });

  it('PUT refuses invalid values, unknown settings and contradictions with 400 and leaves the file alone', async () => {
    s.define('ch1.isml', { title: 'keep' });
    const file = path.join(s.root, 'ch1.isml');
    const before = readFileSync(file, 'utf8');
    const cases: Array<[unknown, RegExp]> = [
      [{ lookaheadChunks: 99 }, /lookaheadChunks/],
      [{ lookaheadChunks: -1 }, /lookaheadChunks/],
      [{ startOnFirstRequest: 'maybe' }, /startOnFirstRequest/],
      [{ publishing: 'Everything' }, /publishing/],
      [{ lookahead: 2 }, /unknown setting "lookahead"/],
      [{ restartOnEncoderReconnect: true, startOnFirstRequest: false }, /restartOnEncoderReconnect/],
      [{ archiveSegmentLength: 60 }, /Archives/],
      [{ sourceType: 'Pull' }, /Pull/],
      [[1, 2], /object/],
      ['"just a string"', /object/],
      ['{"title": ', /JSON/],
    ];
    for (const [body, message] of cases) {
      const r = await api<{ error: string }>(s, 'PUT', '/publishing-points/ch1.isml', body);
      expect({ body, status: r.status }).toEqual({ body, status: 400 });
      expect(r.body.error).toMatch(message);
    }
    expect(readFileSync(file, 'utf8')).toBe(before);
    expect((await point(s, 'ch1.isml')).state).toBe('Idle');
    // An invalid new point is not created either.
    expect((await api(s, 'PUT', '/publishing-points/new.isml', { lookaheadChunks: 'x' })).status).toBe(400);
    expect(existsSync(path.join(s.root, 'new.isml'))).toBe(false);
  });

  it('PUT sets encoderRestart (continue, refuse, reset; any case) as a meta of the .isml; other values are 400', async () => {
    s.define('ch1.isml');
    const file = path.join(s.root, 'ch1.isml');
    expect((await point(s, 'ch1.isml')).settings.encoderRestart).toBe('continue'); // the default
    const refuse = await api<ApiPoint>(s, 'PUT', '/publishing-points/ch1.isml', { encoderRestart: 'Refuse' });
    expect(refuse.status).toBe(200);
    expect(refuse.body.settings.encoderRestart).toBe('refuse');
    expect(readFileSync(file, 'utf8')).toContain('<meta name="encoderRestart" content="refuse" />');
    expect(readDefinition(readFileSync(file, 'utf8')).overrides.encoderRestart).toBe('refuse');
    expect((await api<ApiPoint>(s, 'PUT', '/publishing-points/ch1.isml', { encoderRestart: 'reset' })).body.settings.encoderRestart).toBe('reset');
    expect(readFileSync(file, 'utf8')).toContain('<meta name="encoderRestart" content="reset" />');

    const before = readFileSync(file, 'utf8');
    for (const value of ['shift', '', 'continue,refuse', true, 1]) {
      const r = await api<{ error: string }>(s, 'PUT', '/publishing-points/ch1.isml', { encoderRestart: value });
      expect({ value, status: r.status }).toEqual({ value, status: 400 });
      expect(r.body.error).toMatch(/encoderRestart/);
    }
    expect(readFileSync(file, 'utf8')).toBe(before);

    // null removes the meta: the default again.
    const reverted = await api<ApiPoint>(s, 'PUT', '/publishing-points/ch1.isml', { encoderRestart: null });
    expect(reverted.body.settings.encoderRestart).toBe('continue');
    expect(readFileSync(file, 'utf8')).not.toContain('encoderRestart');
    // A new point may be created with it.
    const created = await api<ApiPoint>(s, 'PUT', '/publishing-points/new.isml', { encoderRestart: 'refuse' });
    expect([created.status, created.body.settings.encoderRestart]).toEqual([201, 'refuse']);
  });

  it('PUT and commands need Content-Type: application/json (415), so a plain HTML form cannot drive them', async () => {
    s.define('ch1.isml');
    const form = [
      ['application/x-www-form-urlencoded', 'title=pwned'],
      ['multipart/form-data; boundary=x', '--x\r\nContent-Disposition: form-data; name="title"\r\n\r\npwned\r\n--x--\r\n'],
      ['text/plain', '{"title":"pwned"}'],
      ['application/json-patch+json', '{"title":"pwned"}'],
      [null, '{"title":"pwned"}'],
    ] as const;
    for (const [type, body] of form) {
      const put = await api<{ error: string }>(s, 'PUT', '/publishing-points/ch1.isml', body, type);
      expect({ type, status: put.status }).toEqual({ type, status: 415 });
      expect(put.body.error).toMatch(/application\/json/);
      for (const cmd of ['start', 'stop', 'shutdown']) {
        const r = await api<{ error: string }>(s, 'POST', `/publishing-points/ch1.isml/${cmd}`, body, type);
        expect({ type, cmd, status: r.status }).toEqual({ type, cmd, status: 415 });
      }
    }
    const p = await point(s, 'ch1.isml');
    expect([p.state, p.settings.title]).toEqual(['Idle', null]);
    // With the JSON type (parameters allowed) the same requests work.
    expect((await api(s, 'PUT', '/publishing-points/ch1.isml', { title: 'ok' }, 'application/json; charset=utf-8')).status).toBe(200);
    expect((await api(s, 'POST', '/publishing-points/ch1.isml/start', '', 'Application/JSON')).status).toBe(200);
  });

  it('commands need POST; other methods get 405', async () => {
    s.define('ch1.isml');
    expect((await api(s, 'GET', '/publishing-points/ch1.isml/start')).status).toBe(405);
    expect((await api(s, 'PUT', '/publishing-points/ch1.isml/stop', {})).status).toBe(405);
    expect((await api(s, 'POST', '/publishing-points/ch1.isml', {})).status).toBe(405);
    expect((await api(s, 'DELETE', '/publishing-points', {})).status).toBe(405);
    expect((await api(s, 'POST', '/publishing-points/missing.isml/start', {})).status).toBe(404);
  });

  it('commands answer the point; refusals are 409 with the reason', async () => {
    s.define('ch1.isml', { startOnFirstRequest: 'False' });
    const stop = await command(s, 'ch1.isml', 'stop');
    expect(stop.status).toBe(409);
    expect(stop.body).toEqual({ code: 'ERR_POINT_STATE', error: 'cannot stop a publishing point that is Idle: it is not started' });
    const start = await command(s, 'ch1.isml', 'start');
    expect(start.status).toBe(200);
    expect(start.body.state).toBe('Starting');
    const again = await command(s, 'ch1.isml', 'start');
    expect(again.status).toBe(409);
    expect(again.body.error).toMatch(/cannot start a publishing point that is Starting: \S/);
    expect((await command(s, 'ch1.isml', 'stop')).body.state).toBe('Stopped');
    const restart = await command(s, 'ch1.isml', 'start');
    expect(restart.status).toBe(409);
    expect(restart.body.error).toMatch(/Stopped: shut it down first/);
    expect((await command(s, 'ch1.isml', 'shutdown')).body.state).toBe('Idle');
    const idle = await command(s, 'ch1.isml', 'shutdown');
    expect(idle.status).toBe(409);
    expect(idle.body.error).toMatch(/Idle: there is nothing to shut down/);
  });

  it('settings change only in Idle: PUT is 409 saying why; DELETE is 409 unless Idle, then 204', async () => {
    s.define('ch1.isml');
    const file = path.join(s.root, 'ch1.isml');
    const before = readFileSync(file, 'utf8');
    await command(s, 'ch1.isml', 'start');
    const put = await api<{ error: string; code: string }>(s, 'PUT', '/publishing-points/ch1.isml', { lookaheadChunks: 1 });
    expect(put.status).toBe(409);
    expect(put.body).toEqual({ code: 'ERR_POINT_STATE', error: 'settings change only while Idle; ch1.isml is Starting (shut it down first)' });
    const del = await api<{ error: string }>(s, 'DELETE', '/publishing-points/ch1.isml');
    expect(del.status).toBe(409);
    expect(del.body.error).toMatch(/only an Idle point can be deleted; ch1.isml is Starting/);
    expect(readFileSync(file, 'utf8')).toBe(before);

    await command(s, 'ch1.isml', 'stop');
    expect((await api(s, 'PUT', '/publishing-points/ch1.isml', { lookaheadChunks: 1 })).status).toBe(409);
    expect((await api(s, 'DELETE', '/publishing-points/ch1.isml')).status).toBe(409);

    await command(s, 'ch1.isml', 'shutdown');
    expect((await api(s, 'PUT', '/publishing-points/ch1.isml', { lookaheadChunks: 1 })).status).toBe(200);
    const gone = await api(s, 'DELETE', '/publishing-points/ch1.isml');
    expect(gone.status).toBe(204);
    expect(gone.text).toBe('');
    expect(existsSync(file)).toBe(false);
    expect((await api(s, 'GET', '/publishing-points/ch1.isml')).status).toBe(404);
    expect((await api(s, 'DELETE', '/publishing-points/ch1.isml')).status).toBe(404);
    expect((await get(`${s.origin}/live/ch1.isml/Manifest`)).status).not.toBe(200);
  });

  it('a definition in Error can be repaired with PUT and deleted', async () => {
    writeFileSync(path.join(s.root, 'bad.isml'), isml({ lookaheadChunks: 'many' }));
    const bad = await point(s, 'bad.isml');
    expect(bad.state).toBe('Error');
    expect(bad.error).toMatch(/lookaheadChunks/);
    const fixed = await api<ApiPoint>(s, 'PUT', '/publishing-points/bad.isml', { lookaheadChunks: 4 });
    expect(fixed.status).toBe(200);
    expect(fixed.body).toMatchObject({ state: 'Idle', error: null, settings: { lookaheadChunks: 4 } });
    writeFileSync(path.join(s.root, 'bad2.isml'), '<smil><head>');
    expect((await point(s, 'bad2.isml')).state).toBe('Error');
    expect((await api(s, 'DELETE', '/publishing-points/bad2.isml')).status).toBe(204);
  });

  it('admin paths are validated like the middleware: traversal, backslashes, drive letters and non-.isml names → 400', async () => {
    const outer = path.dirname(s.root);
    const targets = [
      '/admin/publishing-points/../secret.isml',
      '/admin/publishing-points/%2e%2e/secret.isml',
      '/admin/publishing-points/a/%2E%2E/%2E%2E/secret.isml',
      '/admin/publishing-points/..%2fsecret.isml',
      '/admin/publishing-points/..%5csecret.isml',
      '/admin/publishing-points/.%2fch1.isml',
      '/admin/publishing-points/C:%5cWindows%5cx.isml',
      '/admin/publishing-points/a%00.isml',
      '/admin/publishing-points/ch1.txt',
      '/admin/publishing-points/%2e%2e/secret.isml/start',
      '/admin/publishing-points/%zz.isml',
    ];
    for (const target of targets) {
      for (const method of ['GET', 'PUT', 'DELETE', 'POST']) {
        const r = await request(s.origin, target, {
          method,
          headers: { 'Content-Type': 'application/json' },
          body: method === 'GET' ? undefined : '{"title":"x"}',
        });
        expect({ target, method, status: r.status }).toEqual({ target, method, status: 400 });
      }
    }
    // Nothing was written or deleted outside (or inside) the root.
    expect(readdirSync(outer).sort()).toEqual(['media', 'secret.isml']);
    expect(readFileSync(path.join(outer, 'secret.isml'), 'utf8')).toBe(isml());
    expect(readdirSync(s.root)).toEqual([]);
  });
});

describe('management API: concurrent writes, symbolic links and hostile JSON', () => {
  let s: Site;
  beforeEach(async () => {
    s = await site();
  });
  afterEach(async () => {
    await s.close();
  });
  const symlinks = process.platform === 'win32' ? it.skip : it;

  it('40 concurrent PUTs to one point all succeed (one 201), every change lands once, no temp file is left', async () => {
    const replies = await Promise.all(
      Array.from({ length: 40 }, (_, i) => {
        const change = i % 2 === 0 ? { title: `t${i}` } : { estimatedTime: 1000 + i };
        return api<ApiPoint>(s, 'PUT', '/publishing-points/race/ch1.isml', change);
      }),
    );
    expect(replies.map((r) => r.status).sort()).toEqual([...Array<number>(39).fill(200), 201]);
    const text = readFileSync(path.join(s.root, 'race', 'ch1.isml'), 'utf8');
    const { overrides } = readDefinition(text);
    expect(Array.from({ length: 20 }, (_, i) => `t${2 * i}`)).toContain(overrides.title);
    expect(Array.from({ length: 20 }, (_, i) => 1001 + 2 * i)).toContain(overrides.estimatedTime);
    expect(text.match(/name="title"/g)).toHaveLength(1);
    expect(text.match(/name="estimatedTime"/g)).toHaveLength(1);
    const q = await point(s, 'race/ch1.isml');
    expect(q.settings.title).toBe(overrides.title);
    expect(q.settings.estimatedTime).toBe(overrides.estimatedTime);
    expect(readdirSync(path.join(s.root, 'race'))).toEqual(['ch1.isml']);
  });

  it('a PUT that fails on disk leaves no temp file behind', async () => {
    mkdirSync(path.join(s.root, 'dir.isml', 'inside'), { recursive: true });
    const r = await api(s, 'PUT', '/publishing-points/dir.isml', { title: 'x' });
    expect(r.status).toBe(500);
    expect(readdirSync(s.root)).toEqual(['dir.isml']);
    expect(readdirSync(path.join(s.root, 'dir.isml'))).toEqual(['inside']);
  });

  symlinks('a linked folder or .isml leaving the root: PUT is 400 with the reason; nothing outside written or shown', async () => {
    const outer = path.dirname(s.root);
    const elsewhere = path.join(outer, 'elsewhere');
    mkdirSync(elsewhere);
    const secret = isml({ title: 'Top secret' });
    writeFileSync(path.join(outer, 'secret.isml'), secret);
    symlinkSync(elsewhere, path.join(s.root, 'linkdir'), 'dir');
    symlinkSync(path.join(outer, 'secret.isml'), path.join(s.root, 'leak.isml'));
    symlinkSync(path.join(outer, 'nowhere.isml'), path.join(s.root, 'dangling.isml'));

    for (const rel of ['linkdir/sub/x.isml', 'linkdir/x.isml', 'leak.isml', 'dangling.isml']) {
      const r = await api<{ error: string; code: string }>(s, 'PUT', `/publishing-points/${rel}`, { title: 'pwned' });
      expect({ rel, status: r.status, code: r.body.code }).toEqual({ rel, status: 400, code: 'ERR_TRAVERSAL' });
      expect(r.body.error).toMatch(/outside the root|symbolic link/);
      expect(r.text).not.toContain(outer);
    }
    expect(readdirSync(elsewhere)).toEqual([]);
    expect(readdirSync(outer).sort()).toEqual(['elsewhere', 'media', 'secret.isml']);
    expect(readFileSync(path.join(outer, 'secret.isml'), 'utf8')).toBe(secret);

    // The linked definition is never read: missing everywhere.
    const got = await api(s, 'GET', '/publishing-points/leak.isml');
    expect(got.status).toBe(404);
    expect(got.text).not.toContain('Top secret');
    const list = await api<{ publishingPoints: ApiPoint[] }>(s, 'GET', '/publishing-points');
    expect(list.body.publishingPoints.map((p) => p.path)).toEqual([]);
    expect(list.text).not.toContain('Top secret');
    expect((await command(s, 'leak.isml', 'start')).status).toBe(404);
    expect((await api(s, 'DELETE', '/publishing-points/leak.isml')).status).toBe(404);
    expect((await request(s.origin, '/live/leak.isml/Manifest')).status).toBe(404);
    expect((await request(s.origin, '/live/leak.isml/Streams(ch1)', { method: 'POST', body: '' })).status).toBe(404);
  });

  symlinks('symbolic links that stay inside the root are followed', async () => {
    mkdirSync(path.join(s.root, 'real'));
    symlinkSync(path.join(s.root, 'real'), path.join(s.root, 'alias'), 'dir');
    s.define('ch1.isml', { title: 'One' });
    symlinkSync('ch1.isml', path.join(s.root, 'same.isml'));
    expect((await api(s, 'PUT', '/publishing-points/alias/y.isml', { title: 'Y' })).status).toBe(201);
    expect(existsSync(path.join(s.root, 'real', 'y.isml'))).toBe(true);
    expect((await point(s, 'same.isml')).settings.title).toBe('One');
    const list = await api<{ publishingPoints: ApiPoint[] }>(s, 'GET', '/publishing-points');
    expect(list.body.publishingPoints.map((p) => p.path)).toEqual(['ch1.isml', 'real/y.isml', 'same.isml']);
  });

  it('a deeply nested JSON body is refused with 400 and the reason before it is parsed; the server keeps serving', async () => {
    const deepArray = `{"title":${'['.repeat(5000)}"x"${']'.repeat(5000)}}`;
    const deepObject = `{"title":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`;
    for (const body of [deepArray, deepObject]) {
      const put = await api<{ error: string }>(s, 'PUT', '/publishing-points/deep.isml', body);
      expect(put.status).toBe(400);
      expect(put.body.error).toMatch(/nested deeper than 32/);
      const start = await api<{ error: string }>(s, 'POST', '/publishing-points/deep.isml/start', body);
      expect(start.status).toBe(400);
      expect(start.body.error).toMatch(/nested deeper than 32/);
    }
    // 32 levels are parsed (and the value refused for what it is); 33 are not.
    const nested = (levels: number): string => `{"title":${'['.repeat(levels - 1)}"x"${']'.repeat(levels - 1)}}`;
    const at32 = await api<{ error: string }>(s, 'PUT', '/publishing-points/deep.isml', nested(32));
    expect(at32.body.error).toMatch(/title must be a string/);
    const at33 = await api<{ error: string }>(s, 'PUT', '/publishing-points/deep.isml', nested(33));
    expect(at33.body.error).toMatch(/nested deeper than 32/);
    // Brackets inside strings are text, not nesting.
    const title = `${'['.repeat(300)}{"`;
    const put = await api<ApiPoint>(s, 'PUT', '/publishing-points/deep.isml', { title });
    expect(put.status).toBe(201);
    expect(put.body.settings.title).toBe(title);
    expect((await api(s, 'GET', '/publishing-points')).status).toBe(200);
  });

  it('a body already parsed by the host (express.json) is held to the same depth bound', async () => {
    const app = express();
    app.use(express.json({ limit: '1mb' }));
    app.use('/admin', s.admin);
    const server = http.createServer(app);
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    try {
      const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      const deep = `{"title":${'['.repeat(5000)}"x"${']'.repeat(5000)}}`;
      const put = (body: string): Promise<Reply> =>
        request(base, '/admin/publishing-points/deep.isml', {
          method: 'PUT',
          headers: { 'Content-Type': 'application/json' },
          body,
        });
      const r = await put(deep);
      expect(r.status).toBe(400);
      expect(JSON.parse(r.text).error).toMatch(/nested deeper than 32/);
      expect((await put('{"title":"fine"}')).status).toBe(201);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    }
  });
});

describe('management API: live points', () => {
  let s: Site;
  const posts: RawPost[] = [];
  afterEach(async () => {
    for (const p of posts.splice(0)) p.destroy();
    await s.close();
  });

  it('GET /events streams every state change in order and a stats tick at most 2 s apart', async () => {
    s = await site();
    s.define('ch1.isml', { startOnFirstRequest: 'False' });
    const log = listen(`${s.origin}/admin/events`);
    try {
      const opened = await log.opened;
      expect(opened).toEqual({ status: 200, contentType: 'text/event-stream; charset=utf-8' });
      await until(() => log.events.some((e) => e.event === 'stats'), 2000); // a first snapshot at once
      expect((await command(s, 'ch1.isml', 'start')).status).toBe(200);
      expect((await replay(`${s.origin}/live/ch1.isml/Streams(ch1)`, F.all)).status).toBe(200); // ends with EOS
      expect((await command(s, 'ch1.isml', 'shutdown')).status).toBe(200);
      await until(() => statesOf(log, 'ch1.isml').length >= 6, 3000).catch(() => undefined);
      expect(statesOf(log, 'ch1.isml')).toEqual(['Starting', 'Started', 'Stopping', 'Stopped', 'ShuttingDown', 'Idle']);
      const reasons = log.events.filter((e) => e.event === 'state').map((e) => (e.data as { reason: string | null }).reason);
      expect(reasons).toEqual(['start command', 'first fragment', 'end of stream', 'end of stream', 'shutdown command', 'shutdown command']);
      await sleep(2300);
      const gaps = statsGaps(log);
      expect(gaps.length).toBeGreaterThanOrEqual(2);
      expect(Math.max(...gaps)).toBeLessThanOrEqual(2000);
      const last = log.events.filter((e) => e.event === 'stats').pop()!.data as { publishingPoints: ApiPoint[] };
      expect(last.publishingPoints.map((p) => [p.path, p.state])).toEqual([['ch1.isml', 'Idle']]);
    } finally {
      log.close();
    }
  });

  it('per-track statistics and per-stream encoder state; 404 and 412 are counted', async () => {
    s = await site();
    s.define('ch1.isml', { lookaheadChunks: '1' });
    posts.push(await livePost(s, 'ch1.isml'));
    const p = await until(async () => {
      const q = await point(s, 'ch1.isml');
      return q.tracks.length === 3 && q.tracks.every((t) => t.fragments === 4) ? q : undefined;
    });
    expect(p.state).toBe('Started');
    expect(p.streams).toEqual([{ id: 'ch1', state: 'connected', remoteAddress: '127.0.0.1', connections: 1 }]);
    // 0, 1 and 2 s are listed (lookahead 1); 3 s is held back from the manifest but served; 4 s is after
    // the newest ingested fragment (412); 5 is no fragment start (404).
    const base = `${s.origin}/live/ch1.isml/QualityLevels(100000)`;
    expect((await get(`${base}/Fragments(video=10000000)`)).status).toBe(200);
    expect((await get(`${base}/FragmentInfo(video=10000000)`)).status).toBe(200);
    expect((await get(`${base}/Fragments(video=30000000)`)).status).toBe(200);
    expect((await get(`${base}/Fragments(video=40000000)`)).status).toBe(412);
    expect((await get(`${base}/Fragments(video=900000000)`)).status).toBe(412);
    expect((await get(`${base}/Fragments(video=5)`)).status).toBe(404);
    const stats = (await point(s, 'ch1.isml')).tracks;
    expect(stats.map((t) => t.key)).toEqual(['video/video/50000', 'video/video/100000', 'audio/audio/32000']);
    const v = stats.find((t) => t.key === 'video/video/100000')!;
    expect(v).toMatchObject({ type: 'video', name: 'video', bitrate: 100000, timescale: 10_000_000, fragments: 4, requests: 6, notFound: 1, notYetAvailable: 2 });
    expect(v).toMatchObject({ lastFragmentTime: '30000000', lastFragmentDuration: '10000000' });
    for (const t of stats) {
      expect(t.incomingBitrate).toBeGreaterThan(0);
      expect(t.bytes).toBeGreaterThan(0);
      expect(t.fragments).toBe(4);
    }
    expect(stats.find((t) => t.key === 'audio/audio/32000')).toMatchObject({ lastFragmentTime: '30080000', requests: 0, notFound: 0, notYetAvailable: 0 });

    // The encoder goes away without EOS: its stream shows disconnected.
    posts.pop()!.destroy();
    const after = await until(async () => {
      const q = await point(s, 'ch1.isml');
      return q.streams[0]?.state === 'disconnected' ? q : undefined;
    });
    expect(after.streams).toEqual([{ id: 'ch1', state: 'disconnected', remoteAddress: '127.0.0.1', connections: 0 }]);
    expect(after.state).toBe('Started'); // waiting sourceLostTimeout for a reconnect
    expect(after.tracks.map((t) => t.incomingBitrate)).toEqual([0, 0, 0]); // nothing is arriving
    expect(after.tracks.map((t) => t.fragments)).toEqual([4, 4, 4]);
  });

  it('counts encoder restarts, dropped duplicates and refused encoders (restarts, duplicatesDropped, refused)', async () => {
    s = await site();
    s.define('resend.isml');
    s.define('refuse.isml', { encoderRestart: 'refuse' });
    for (const rel of ['resend.isml', 'refuse.isml']) {
      expect(await point(s, rel)).toMatchObject({ state: 'Idle', restarts: 0, duplicatesDropped: 0, refused: 0 });
    }
    const stored = (rel: string, n: number) => async (): Promise<ApiPoint | undefined> => {
      const q = await point(s, rel);
      return q.tracks.length === 3 && q.tracks.every((t) => t.fragments === n) ? q : undefined;
    };

    // A reconnect that resends the last two fragments of every track (the Azure rule), then goes on.
    const first = await roundsPost(s, 'resend.isml', 0, 1);
    posts.push(first);
    expect(await until(stored('resend.isml', 8))).toMatchObject({ state: 'Started', restarts: 0, duplicatesDropped: 0, refused: 0 });
    first.destroy();
    await disconnected(s, 'resend.isml');
    const again = new RawPost(`${s.origin}/live/resend.isml/Streams(ch1)`);
    posts.push(again);
    await again.write(F.header);
    for (const f of fragmentsOfRound(1).slice(PER_ROUND - 6)) await again.write(f);
    for (const f of fragmentsOfRound(2)) await again.write(f);
    const resent = await until(stored('resend.isml', 12));
    expect(resent).toMatchObject({ restarts: 0, duplicatesDropped: 6, refused: 0 });
    expect(resent.streams.map((x) => x.state)).toEqual(['connected']);
    expect(again.responded).toBe(false); // still pushing

    // An encoder that restarts from time 0 on a point that refuses restarts: 409, connection closed.
    const before = await roundsPost(s, 'refuse.isml', 0, 1);
    posts.push(before);
    await until(stored('refuse.isml', 8));
    before.destroy();
    await disconnected(s, 'refuse.isml');
    const restarted = await roundsPost(s, 'refuse.isml', 0, 0);
    posts.push(restarted);
    const reply = await restarted.response;
    expect(reply.status).toBe(409);
    expect(reply.text).toMatch(/restarted/);
    await restarted.closed;
    const refused = await point(s, 'refuse.isml');
    expect(refused).toMatchObject({ state: 'Started', restarts: 1, duplicatesDropped: 0, refused: 1 });
    expect(refused.tracks.map((t) => t.fragments)).toEqual([8, 8, 8]); // the window is untouched
    // The other point's counters are its own.
    expect(await point(s, 'resend.isml')).toMatchObject({ restarts: 0, duplicatesDropped: 6, refused: 0 });
    // The list carries the counters too.
    const list = await api<{ publishingPoints: ApiPoint[] }>(s, 'GET', '/publishing-points');
    expect(list.body.publishingPoints.map((p) => [p.path, p.restarts, p.duplicatesDropped, p.refused])).toEqual([
      ['refuse.isml', 1, 0, 1],
      ['resend.isml', 0, 6, 0],
    ]);
  });

  it('startOnFirstRequest off: an Idle point refuses encoders (409 and the connection closed) and clients (404)', async () => {
    s = await site();
    s.define('ch1.isml', { startOnFirstRequest: 'False' });
    const post = new RawPost(`${s.origin}/live/ch1.isml/Streams(ch1)`);
    posts.push(post);
    await post.write(F.header);
    const reply = await post.response;
    expect(reply.status).toBe(409);
    expect(reply.text).toMatch(/Idle: start it, or set startOnFirstRequest/);
    await post.closed;
    const m = await get(`${s.origin}/live/ch1.isml/Manifest`);
    expect(m.status).toBe(404);
    expect(m.text).toMatch(/Idle/);
    expect((await point(s, 'ch1.isml')).state).toBe('Idle');
  });

  it('startOnFirstRequest on: the first client GET starts an Idle point (still 404 until Started); so does the first encoder', async () => {
    s = await site();
    s.define('byclient.isml', { startOnFirstRequest: 'True' });
    s.define('byencoder.isml'); // the site default
    const m = await get(`${s.origin}/live/byclient.isml/Manifest`);
    expect(m.status).toBe(404);
    expect((await point(s, 'byclient.isml')).state).toBe('Starting');
    expect((await get(`${s.origin}/live/byclient.isml/Manifest`)).status).toBe(404);
    posts.push(await livePost(s, 'byencoder.isml', 3));
    await waitState(s, 'byencoder.isml', 'Started');
    expect((await get(`${s.origin}/live/byencoder.isml/Manifest`)).status).toBe(200);
  });

  it('Stopped serves the DVR window and refuses encoders; with restartOnEncoderReconnect a new encoder starts a fresh session', async () => {
    s = await site();
    s.define('plain.isml');
    s.define('restart.isml', { restartOnEncoderReconnect: 'True' });
    for (const rel of ['plain.isml', 'restart.isml']) {
      expect((await replay(`${s.origin}/live/${rel}/Streams(a)`, F.all)).status).toBe(200);
      await waitState(s, rel, 'Stopped');
    }
    const before = await get(`${s.origin}/live/restart.isml/Manifest`);
    expect(before.status).toBe(200);
    const again = await replay(`${s.origin}/live/plain.isml/Streams(a)`, F.all);
    expect(again.status).toBe(409);
    expect(again.text).toMatch(/Stopped: shut it down first, or set restartOnEncoderReconnect/);
    expect((await get(`${s.origin}/live/plain.isml/Manifest`)).status).toBe(200);

    const log = listen(`${s.origin}/admin/events`);
    try {
      await log.opened;
      expect((await replay(`${s.origin}/live/restart.isml/Streams(b)`, F.all)).status).toBe(200);
      await until(() => statesOf(log, 'restart.isml').length >= 6, 3000).catch(() => undefined);
      expect(statesOf(log, 'restart.isml')).toEqual(['ShuttingDown', 'Idle', 'Starting', 'Started', 'Stopping', 'Stopped']);
    } finally {
      log.close();
    }
    const after = await get(`${s.origin}/live/restart.isml/Manifest`);
    expect(after.status).toBe(200);
    // A new session of the same bytes: the same manifest, so the same ETag (tags follow content).
    expect([after.text === before.text, after.headers.etag === before.headers.etag]).toEqual([true, true]);
    expect((await point(s, 'restart.isml')).streams.map((x) => x.id)).toEqual(['b']);
  });

  it('stateFile: false keeps no state file', async () => {
    s = await site({ stateFile: false });
    s.define('ch1.isml');
    posts.push(await livePost(s, 'ch1.isml', 3));
    await waitState(s, 'ch1.isml', 'Started');
    await sleep(300);
    expect(readdirSync(s.root)).toEqual(['ch1.isml']);
  });

  it('state survives a restart: a Started point comes back Starting, waiting for its encoders; others come back Idle', async () => {
    s = await site();
    s.define('started.isml', { startOnFirstRequest: 'False' });
    s.define('stopped.isml');
    s.define('shut.isml');
    s.define('idle.isml');
    await command(s, 'started.isml', 'start');
    posts.push(await livePost(s, 'started.isml', 6));
    await waitState(s, 'started.isml', 'Started');
    expect((await replay(`${s.origin}/live/stopped.isml/Streams(x)`, F.all)).status).toBe(200);
    await waitState(s, 'stopped.isml', 'Stopped');
    await command(s, 'shut.isml', 'start');
    await command(s, 'shut.isml', 'shutdown');
    await point(s, 'idle.isml');
    // The file is rewritten (coalesced, ~100 ms) after each change; wait for the settled content.
    const stateFile = path.join(s.root, '.live-smooth-state.json');
    // Only the started point's state, with the anchor of its DASH/HLS timeline.
    const expected = { points: { 'started.isml': 'Started' }, anchors: { 'started.isml': expect.objectContaining({ base: expect.any(String) }) } };
    let saved: { points?: unknown; anchors?: Record<string, unknown> } | undefined;
    await until(() => {
      try {
        saved = JSON.parse(readFileSync(stateFile, 'utf8')) as typeof saved;
      } catch {
        saved = undefined;
      }
      return JSON.stringify(saved?.points) === JSON.stringify(expected.points) && Object.keys(saved?.anchors ?? {}).join() === 'started.isml';
    }, 3000).catch(() => undefined);
    expect(saved).toEqual(expected);

    // "Process restart": the app and its origin go, a new liveSmooth(root) comes up on the same root.
    for (const p of posts.splice(0)) p.destroy();
    await s.close(false);
    s = await site({}, s.root);
    const restored = await waitState(s, 'started.isml', 'Starting', 3000);
    expect(restored.tracks).toEqual([]); // the live window itself is not persisted
    for (const rel of ['stopped.isml', 'shut.isml', 'idle.isml']) expect([rel, (await point(s, rel)).state]).toEqual([rel, 'Idle']);
    // Waiting for its encoders: accepted although startOnFirstRequest is off.
    const probe = await request(s.origin, '/live/started.isml/Streams(ch1)', { method: 'POST', headers: { 'Content-Length': '0' } });
    expect(probe.status).toBe(200);
    posts.push(await livePost(s, 'started.isml', 3));
    await waitState(s, 'started.isml', 'Started');
  });

  it('settings edited on disk while Started wait until the point is Idle (shutdown)', async () => {
    s = await site({ definitionCheckInterval: 0 });
    s.define('ch1.isml', { lookaheadChunks: '2' });
    posts.push(await livePost(s, 'ch1.isml', 9));
    await waitState(s, 'ch1.isml', 'Started');
    const manifest = async (): Promise<Reply> => get(`${s.origin}/live/ch1.isml/Manifest`);
    expect((await manifest()).text).toContain('LookAheadFragmentCount="2"');

    s.define('ch1.isml', { lookaheadChunks: '0', title: 'Edited on disk' });
    const pending = await until(async () => {
      const q = await point(s, 'ch1.isml');
      return q.pendingSettings ? q : undefined;
    }, 3000);
    expect(pending.settings).toMatchObject({ lookaheadChunks: 2, title: null });
    expect(pending.state).toBe('Started');
    expect((await manifest()).text).toContain('LookAheadFragmentCount="2"');
    // The API refuses to change settings now, saying why.
    const put = await api<{ error: string }>(s, 'PUT', '/publishing-points/ch1.isml', { title: 'x' });
    expect(put.status).toBe(409);
    expect(put.body.error).toMatch(/only while Idle.*Started/);

    expect((await command(s, 'ch1.isml', 'stop')).body).toMatchObject({ state: 'Stopped', pendingSettings: true, settings: { lookaheadChunks: 2 } });
    expect((await manifest()).status).toBe(200); // DVR
    const idle = (await command(s, 'ch1.isml', 'shutdown')).body;
    expect(idle).toMatchObject({ state: 'Idle', pendingSettings: false, settings: { lookaheadChunks: 0, title: 'Edited on disk' } });
    expect((await manifest()).status).toBe(404);
  });
});

describe('management API with a real ffmpeg push', () => {
  let s: Site | undefined;
  let pushed: Push | undefined;
  let log: EventLog | undefined;
  afterEach(async () => {
    log?.close();
    if (pushed && pushed.child.exitCode === null && pushed.child.signalCode === null) {
      pushed.child.kill('SIGKILL');
      await pushed.done;
    }
    await s?.close();
  });

  withTool('ffmpeg', FFMPEG)('start, push → Started with statistics, stop → Stopped (encoder cut, DVR served), shutdown → Idle', async () => {
    const began = Date.now();
    s = await site();
    // No lookahead: the first fragment is published as it arrives, so the test needs only a few seconds of media.
    s.define('ch1.isml', { startOnFirstRequest: 'False', lookaheadChunks: '0' });
    log = listen(`${s.origin}/admin/events`);
    await log.opened;

    // Idle without startOnFirstRequest refuses encoders: an early push would be cut.
    const refused = await request(s.origin, '/live/ch1.isml/Streams(ch1)', { method: 'POST', headers: { 'Content-Length': '0' } });
    expect(refused.status).toBe(409);

    expect((await command(s, 'ch1.isml', 'start')).body.state).toBe('Starting');
    pushed = push({ ffmpeg: FFMPEG!, url: `${s.origin}/live/ch1.isml`, seconds: 30, bitrates: [400, 200] });
    await waitState(s, 'ch1.isml', 'Started', 15_000);

    // Wait for two published video fragments, then play and provoke a 404 and a 412.
    const listed = await until(async () => {
      const m = await get(`${s!.origin}/live/ch1.isml/Manifest`);
      const video = m.status === 200 ? parseManifest(m.text).streams.find((x) => x.type === 'video') : undefined;
      return video && video.fragments.length >= 2 ? video : undefined;
    }, 15_000);
    const top = Math.max(...listed.bitrates);
    const first = listed.fragments[0]!;
    const frag = `${s.origin}/live/ch1.isml/QualityLevels(${top})`;
    expect((await get(`${frag}/Fragments(video=${first.t})`)).status).toBe(200);
    expect((await get(`${frag}/Fragments(video=${first.t + 1n})`)).status).toBe(404);
    expect((await get(`${frag}/Fragments(video=${first.t + 10_000n * first.d})`)).status).toBe(412);

    const live = await point(s, 'ch1.isml');
    expect(live.state).toBe('Started');
    expect(live.streams).toEqual([{ id: 'ch1', state: 'connected', remoteAddress: '127.0.0.1', connections: 1 }]);
    expect(live.tracks.map((t) => `${t.type}/${t.bitrate}`).sort()).toEqual(['audio/96000', 'video/200000', 'video/400000']);
    for (const t of live.tracks) {
      expect({ key: t.key, incoming: t.incomingBitrate > 0, fragments: t.fragments > 0, bytes: t.bytes > 0 }).toEqual({ key: t.key, incoming: true, fragments: true, bytes: true });
      expect(BigInt(t.lastFragmentTime!)).toBeGreaterThanOrEqual(0n);
      expect(BigInt(t.lastFragmentDuration!)).toBeGreaterThan(0n);
    }
    const v = live.tracks.find((t) => t.type === 'video' && t.bitrate === top)!;
    expect(v).toMatchObject({ requests: 3, notFound: 1, notYetAvailable: 1 });
    // Incoming bitrate of the top video is in the range of its 400 kbit/s target (testsrc2 is busy, x264 zerolatency).
    expect(v.incomingBitrate).toBeGreaterThan(50_000);
    expect(v.incomingBitrate).toBeLessThan(4_000_000);

    // Stop: the encoder is disconnected, the DVR window stays.
    const stopped = await command(s, 'ch1.isml', 'stop');
    expect(stopped.status).toBe(200);
    expect(stopped.body.state).toBe('Stopped');
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([pushed.done, new Promise<undefined>((ok) => (timer = setTimeout(() => ok(undefined), 10_000)))]);
    clearTimeout(timer);
    expect(exit).toBeDefined(); // ffmpeg noticed the closed connection and gave up
    expect(exit!.code).not.toBe(0);
    const dvr = await get(`${s.origin}/live/ch1.isml/Manifest`);
    expect(dvr.status).toBe(200);
    expect(parseManifest(dvr.text).streams.find((x) => x.type === 'video')!.fragments.length).toBeGreaterThanOrEqual(listed.fragments.length);
    expect((await get(`${frag}/Fragments(video=${first.t})`)).status).toBe(200);
    expect((await point(s, 'ch1.isml')).streams.map((x) => x.state)).toEqual(['ended']);
    // Stopped refuses encoders (restartOnEncoderReconnect is off).
    expect((await request(s.origin, '/live/ch1.isml/Streams(ch1)', { method: 'POST', headers: { 'Content-Length': '0' } })).status).toBe(409);

    // Shutdown: back to Idle, the live window is gone.
    expect((await command(s, 'ch1.isml', 'shutdown')).body.state).toBe('Idle');
    expect((await get(`${s.origin}/live/ch1.isml/Manifest`)).status).toBe(404);
    expect((await get(`${frag}/Fragments(video=${first.t})`)).status).toBe(404);

    await until(() => statesOf(log!, 'ch1.isml').length >= 6, 3000).catch(() => undefined);
    expect(statesOf(log, 'ch1.isml')).toEqual(['Starting', 'Started', 'Stopping', 'Stopped', 'ShuttingDown', 'Idle']);
    const gaps = statsGaps(log);
    expect(gaps.length).toBeGreaterThanOrEqual(2);
    expect(Math.max(...gaps)).toBeLessThanOrEqual(2000);
    // A stats event while live carried the track statistics.
    const liveStats = log.events
      .filter((e) => e.event === 'stats')
      .flatMap((e) => (e.data as { publishingPoints: ApiPoint[] }).publishingPoints)
      .filter((p) => p.state === 'Started' && p.tracks.some((t) => t.fragments > 0));
    expect(liveStats.length).toBeGreaterThan(0);
    console.log(`admin ffmpeg flow: ${((Date.now() - began) / 1000).toFixed(1)} s`);
  }, 45_000);
});
