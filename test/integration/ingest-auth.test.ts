/**
 * Ingest authorization over HTTP. By default only loopback may push: a server reached through another
 * address of this machine answers `403` with how to allow encoders (probe and stream alike) and serves
 * nothing. With `ingestAuth` configured (loopback then no longer allowed by itself) each method lets an
 * encoder in from 127.0.0.1: tokens (`?token=`, Bearer), Basic users, the allow-list and the hook;
 * missing or wrong credentials get `401` with a challenge, and the encoder reads the status and reason.
 * Tracks a live encoder feeds refuse encoders with other credentials (`409`, finding 7 of issue 10)
 * while the real one goes on; the simulated encoder's `--token` pushes.
 */
import express from 'express';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import * as path from 'node:path';
import { main } from '../../lib/encoder/cli';
import { liveSmooth } from '../../lib';
import type { IngestAuthOptions } from '../../lib/options';
import { ismv } from '../helpers/ismv';
import { RawPost, Reply, fixture, fragmentsOfRound, get, headerWithLsm, parseManifest, replay, request, sleep, until } from '../helpers/raw-ingest';
import { TestServer, isml, liveServer, startServer } from '../helpers/server';

const F = fixture();
const TOKEN = 'token-of-the-real-encoder';
const OTHER = 'token-of-another-encoder';

/** An IPv4 address of this machine that is not loopback, if it has one. */
const EXTERNAL = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

/** An empty probe POST. */
function probe(base: string, point: string, query = '', headers: Record<string, string> = {}): Promise<Reply> {
  const u = new URL(base);
  return request(u.origin, `${u.pathname}/${point}/Streams(probe)${query}`, { method: 'POST', headers: { 'Content-Length': '0', ...headers } });
}

/** Pushes the whole fixture (header, 4 s of fragments, end of stream) as one chunked POST. */
function push(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  return replay(url, F.all, headers);
}

async function withServer(ingestAuth: IngestAuthOptions | undefined, run: (s: TestServer) => Promise<void>): Promise<void> {
  const s = await startServer({ stateFile: false, ...(ingestAuth ? { ingestAuth } : {}) });
  try {
    s.define('ch1.isml');
    await run(s);
  } finally {
    await s.close();
  }
}

const manifestStatus = async (s: TestServer): Promise<number> => (await get(`${s.base}/ch1.isml/Manifest`)).status;

describe('with no ingestAuth (the default)', () => {
  const external = EXTERNAL ? it : it.skip;
  if (!EXTERNAL) it('(no non-loopback address on this machine: the 403 over HTTP is covered by the unit tests only)', () => undefined);

  external('refuses a peer that is not loopback with 403 and how to allow it, probe and stream alike; loopback pushes', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'live-smooth-'));
    writeFileSync(path.join(root, 'ch1.isml'), isml());
    const handler = liveSmooth(root, { stateFile: false });
    const app = express();
    app.use('/live', handler);
    const server = liveServer(app);
    await new Promise<void>((ok) => server.listen(0, '0.0.0.0', ok));
    const { port } = server.address() as AddressInfo;
    const outside = `http://${EXTERNAL}:${port}/live`;
    const inside = `http://127.0.0.1:${port}/live`;
    try {
      const p = await probe(outside, 'ch1.isml');
      expect(p.status).toBe(403);
      expect(p.text).toBe(
        `ingest from ${EXTERNAL} is refused: with no ingestAuth option only loopback may push; allow encoders with the ingestAuth option (tokens, basic, allow or authorize)\n`,
      );
      const post = new RawPost(`${outside}/ch1.isml/Streams(x)`);
      await post.write(F.header);
      await post.write(F.fragments[0]!);
      const refused = await post.response;
      expect([refused.status, refused.headers.connection]).toEqual([403, 'close']);
      expect(refused.text).toContain('only loopback may push');
      await post.closed;
      expect(handler.origin.cached('ch1.isml')?.state).toBe('Idle');
      expect((await get(`${outside}/ch1.isml/Manifest`)).status).toBe(404);
      // A proxy on this machine forwarding it is refused too.
      expect((await probe(inside, 'ch1.isml', '', { 'X-Forwarded-For': '203.0.113.5' })).status).toBe(403);
      expect((await probe(inside, 'ch1.isml')).status).toBe(200);
      expect((await push(`${inside}/ch1.isml/Streams(x)`)).status).toBe(200);
      expect((await get(`${outside}/ch1.isml/Manifest`)).status).toBe(200);
    } finally {
      handler.origin.close();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('with ingestAuth configured (loopback no longer allowed by itself)', () => {
  it('tokens: none or a wrong one gets 401 with a Bearer challenge; ?token= and Authorization: Bearer push', async () => {
    await withServer({ tokens: [TOKEN] }, async (s) => {
      const none = await probe(s.base, 'ch1.isml');
      expect([none.status, none.headers['www-authenticate'], none.text]).toEqual([
        401,
        'Bearer realm="live-smooth ingest"',
        'ingest needs credentials: send a token (?token=… or Authorization: Bearer …)\n',
      ]);
      const wrong = await push(`${s.base}/ch1.isml/Streams(x)?token=${OTHER}`);
      expect([wrong.status, wrong.text]).toEqual([401, expect.stringMatching(/^invalid credentials/)]);
      expect(await manifestStatus(s)).toBe(404);
      expect((await probe(s.base, 'ch1.isml', `?token=${TOKEN}`)).status).toBe(200);
      expect((await push(`${s.base}/ch1.isml/Streams(x)?token=${TOKEN}`)).status).toBe(200);
      expect(await manifestStatus(s)).toBe(200);
    });
    await withServer({ tokens: [TOKEN] }, async (s) => {
      expect((await push(`${s.base}/ch1.isml/Streams(x)`, { Authorization: `Bearer ${TOKEN}` })).status).toBe(200);
      expect(await manifestStatus(s)).toBe(200);
    });
  });

  it('a refused encoder that keeps pushing still reads its 401 and reason before the connection closes', async () => {
    await withServer({ tokens: [TOKEN] }, async (s) => {
      const post = new RawPost(`${s.base}/ch1.isml/Streams(x)`);
      await post.write(F.header);
      for (const f of fragmentsOfRound(0)) await post.write(f);
      const reply = await post.response;
      expect([reply.status, reply.headers.connection, reply.text]).toEqual([401, 'close', expect.stringContaining('ingest needs credentials')]);
      await post.closed;
    });
  });

  it('Basic: a known user pushes; a wrong password gets 401 with a Basic challenge', async () => {
    await withServer({ basic: [{ user: 'enc', password: 's3cret' }] }, async (s) => {
      const wrong = await push(`${s.base}/ch1.isml/Streams(x)`, { Authorization: basic('enc', 'guess') });
      expect([wrong.status, wrong.headers['www-authenticate']]).toEqual([401, 'Basic realm="live-smooth ingest", charset="UTF-8"']);
      expect((await push(`${s.base}/ch1.isml/Streams(x)`, { Authorization: basic('enc', 's3cret') })).status).toBe(200);
      expect(await manifestStatus(s)).toBe(200);
    });
  });

  it('allow-list: a peer outside it gets 403; listed loopback pushes', async () => {
    await withServer({ allow: ['10.0.0.0/8', '2001:db8::/32'] }, async (s) => {
      const refused = await push(`${s.base}/ch1.isml/Streams(x)`);
      expect([refused.status, refused.text]).toEqual([403, 'ingest from 127.0.0.1 is not allowed (ingestAuth.allow)\n']);
      expect(refused.headers['www-authenticate']).toBeUndefined();
      expect(await manifestStatus(s)).toBe(404);
    });
    await withServer({ allow: ['127.0.0.0/8', '::1'] }, async (s) => {
      expect((await push(`${s.base}/ch1.isml/Streams(x)`)).status).toBe(200);
    });
  });

  it('hook: sees the request and the point, may answer later; false, a throw or a rejection is a 403, and the server goes on', async () => {
    const seen: string[] = [];
    const authorize: IngestAuthOptions['authorize'] = async (req, point) => {
      seen.push(point.path);
      await sleep(20);
      const key = req.headers['x-ingest-key'];
      if (key === 'throw') throw new Error('key service down');
      if (key === 'reject') return Promise.reject(new Error('no'));
      return key === 'open sesame';
    };
    await withServer({ authorize }, async (s) => {
      for (const key of ['nope', 'throw', 'reject']) {
        const r = await push(`${s.base}/ch1.isml/Streams(x)`, { 'X-Ingest-Key': key });
        expect([r.status, r.text]).toEqual([403, 'ingest from 127.0.0.1 is not allowed (ingestAuth.allow and ingestAuth.authorize)\n']);
      }
      expect((await probe(s.base, 'ch1.isml', '', { 'X-Ingest-Key': 'open sesame' })).status).toBe(200);
      expect((await push(`${s.base}/ch1.isml/Streams(x)`, { 'X-Ingest-Key': 'open sesame' })).status).toBe(200);
      expect(await manifestStatus(s)).toBe(200);
      expect(seen.every((p) => p === 'ch1.isml')).toBe(true);
    });
  });
});

describe('tracks a live encoder feeds (finding 7)', () => {
  it('refuse encoders with other credentials (409 and a reason) on its tracks, its stream id or a new bitrate; the real encoder and a redundant one go on', async () => {
    await withServer({ tokens: [TOKEN, OTHER] }, async (s) => {
      const url = (id: string, token: string): string => `${s.base}/ch1.isml/Streams(${id})?token=${token}`;
      const real = new RawPost(url('real', TOKEN));
      await real.write(F.header);
      for (const f of fragmentsOfRound(0)) await real.write(f);
      await until(async () => (await manifestStatus(s)) === 200);

      const intruders = [
        { id: 'intruder', header: F.header, reason: /track video\/.* is fed live by stream real of an encoder with other credentials/ },
        { id: 'real', header: F.header, reason: /stream real is live from an encoder with other credentials/ },
        { id: 'extra', header: headerWithLsm((smil) => smil.replace(/"100000"/g, '"150000"')), reason: /would add a quality level to video "video"/ },
      ];
      for (const intruder of intruders) {
        const post = new RawPost(url(intruder.id, OTHER));
        await post.write(intruder.header);
        await post.write(fragmentsOfRound(1)[0]!);
        const reply = await post.response;
        expect([reply.status, reply.text]).toEqual([409, expect.stringMatching(intruder.reason)]);
        await post.closed;
      }

      // A redundant encoder with the same credentials attaches beside it.
      const backup = new RawPost(url('backup', TOKEN));
      await backup.write(F.header);
      for (const r of [1, 2]) {
        for (const f of fragmentsOfRound(r)) {
          await real.write(f);
          await backup.write(f);
        }
      }
      await real.write(F.mfra);
      await backup.write(F.mfra);
      expect((await real.end()).status).toBe(200);
      expect((await backup.end()).status).toBe(200);

      const m = parseManifest((await get(`${s.base}/ch1.isml/Manifest`)).text);
      const video = m.streams.find((x) => x.name === 'video')!;
      expect(video.bitrates.sort()).toEqual([100000, 50000].sort());
      expect(video.fragments.map((f) => f.t)).toEqual(Array.from({ length: 12 }, (_, i) => BigInt(i) * 10_000_000n));
      const point = s.handler.origin.cached('ch1.isml')!;
      expect(point.streams.map((x) => x.id).sort()).toEqual(['backup', 'real']);
    });
  });
});

describe('the simulated encoder', () => {
  it('pushes with --token, and without it is refused with the 401 and its reason', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'live-smooth-auth-'));
    const media = path.join(dir, 'clip.ismv');
    writeFileSync(media, ismv({ fragments: 2 }));
    const io = (): { err: string[]; io: Parameters<typeof main>[1] } => {
      const err: string[] = [];
      return { err, io: { stdout: { write: () => true }, stderr: { write: (t: string) => err.push(t), isTTY: false } } };
    };
    try {
      await withServer({ tokens: [TOKEN] }, async (s) => {
        const refused = io();
        await expect(main(['--loops', '1', '--speed', '50', '--max-reconnects', '1', `${s.base}/ch1.isml`, media], refused.io)).resolves.toBe(1);
        expect(refused.err.join('')).toMatch(/401.*ingest needs credentials/);
        const ok = io();
        await expect(main(['--loops', '1', '--speed', '50', '--token', TOKEN, `${s.base}/ch1.isml`, media], ok.io)).resolves.toBe(0);
        expect(ok.err.join('')).toContain('connected: Streams(live-smooth)');
        expect(await manifestStatus(s)).toBe(200);
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
