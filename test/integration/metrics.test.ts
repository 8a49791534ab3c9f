/**
 * The Prometheus scrape endpoint mounted in Express next to the middleware and the management API:
 * the captured ffmpeg push is POSTed to a point, fragments are asked for over HTTP, and the scrape
 * answers the text format with its content type, with the numbers the management API shows. `HEAD`
 * answers the headers, other methods 405; a host registry is served with its own metrics beside ours.
 * The responses the middleware writes are counted by output and status, and refused encoders by code.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import express from 'express';
import { Counter, Registry } from 'prom-client';
import { LiveSmoothHandler, liveSmooth } from '../../lib';
import { smoothErrorOf } from '../helpers/errors';
import { parseExposition } from '../helpers/prometheus';
import { RawPost, Reply, box, fixture, fragmentsOfRound, get, request, until } from '../helpers/raw-ingest';
import { isml, liveServer } from '../helpers/server';

const F = fixture();

interface Site {
  origin: string;
  root: string;
  handler: LiveSmoothHandler;
  server: http.Server;
}

let site: Site;
const registry = new Registry();
const hostCounter = new Counter({ name: 'host_jobs_total', help: 'a metric of the host', registers: [registry] });

beforeAll(async () => {
  const root = mkdtempSync(path.join(tmpdir(), 'live-smooth-metrics-'));
  writeFileSync(path.join(root, 'ch1.isml'), isml({ startOnFirstRequest: 'true' }));
  writeFileSync(path.join(root, 'ch2.isml'), isml({ startOnFirstRequest: 'true' }));
  const handler = liveSmooth(root);
  const app = express();
  app.use('/live', handler);
  app.use('/admin', liveSmooth.admin(handler));
  app.use('/metrics', liveSmooth.metrics(handler));
  app.get('/host-metrics', liveSmooth.metrics(handler.origin, { registry }));
  const server = liveServer(app);
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  site = { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, root, handler, server };
});

afterAll(async () => {
  site.handler.origin.close();
  site.server.closeAllConnections();
  await new Promise<void>((ok) => site.server.close(() => ok()));
  rmSync(site.root, { recursive: true, force: true });
});

describe('liveSmooth.metrics mounted in Express', () => {
  it('serves the text format with the numbers the management API shows, read at the scrape', async () => {
    const post = new RawPost(`${site.origin}/live/ch1.isml/Streams(ch1)`);
    try {
      await post.write(F.header);
      for (const f of [...fragmentsOfRound(0), ...fragmentsOfRound(1)]) await post.write(f);
      await until(async () => {
        const res = await fetch(`${site.origin}/admin/publishing-points/ch1.isml`);
        const p = (await res.json()) as { tracks: Array<{ fragments: number }> };
        return (p.tracks.length === 3 && p.tracks.every((t) => t.fragments === 8)) || undefined;
      });
      // Three fragment requests of the 100k video: found, not a fragment start (404), not yet there (412).
      const fragment = (t: bigint): Promise<number> =>
        get(`${site.origin}/live/ch1.isml/QualityLevels(100000)/Fragments(video=${t})`).then((r) => r.status);
      expect([await fragment(0n), await fragment(12345n), await fragment(900_000_000n)]).toEqual([200, 404, 412]);

      const res = await get(`${site.origin}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(res.headers['cache-control']).toBe('no-store');
      const { series } = parseExposition(res.text);
      const value = (name: string, labels: Record<string, string>): number | undefined =>
        series.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;

      const api = (await (await fetch(`${site.origin}/admin/publishing-points/ch1.isml`)).json()) as {
        bytes: number;
        tracks: Array<{ key: string; fragments: number; bytes: number; requests: number; notFound: number; notYetAvailable: number }>;
      };
      for (const t of api.tracks) {
        const labels = { point: 'ch1.isml', track: t.key };
        expect({
          key: t.key,
          fragments: value('live_smooth_track_ingest_fragments_total', labels),
          bytes: value('live_smooth_track_ingest_bytes_total', labels),
          requests: value('live_smooth_track_requests_total', labels),
          notFound: value('live_smooth_track_not_found_total', labels),
          notYetAvailable: value('live_smooth_track_not_yet_available_total', labels),
        }).toEqual({ key: t.key, fragments: t.fragments, bytes: t.bytes, requests: t.requests, notFound: t.notFound, notYetAvailable: t.notYetAvailable });
        expect(value('live_smooth_track_incoming_bits_per_second', labels)).toBeGreaterThan(0);
        expect(value('live_smooth_track_last_fragment_age_seconds', labels)).toBeGreaterThanOrEqual(0);
      }
      expect(value('live_smooth_track_requests_total', { track: 'video/video/100000' })).toBe(3);
      expect(value('live_smooth_track_not_found_total', { track: 'video/video/100000' })).toBe(1);
      expect(value('live_smooth_track_not_yet_available_total', { track: 'video/video/100000' })).toBe(1);
      expect(value('live_smooth_point_store_bytes', { point: 'ch1.isml' })).toBe(api.bytes);
      expect(value('live_smooth_point_connections', { point: 'ch1.isml' })).toBe(1);
      expect(value('live_smooth_point_state', { point: 'ch1.isml', state: 'Started' })).toBe(1);

      // The end of stream: the scrape after it says so (no cached values).
      await post.write(F.mfra);
      await post.end();
      await until(async () => {
        const text = (await get(`${site.origin}/metrics`)).text;
        return /live_smooth_point_connections\{point="ch1.isml"\} 0\n/.test(text) ? true : undefined;
      });
    } finally {
      post.destroy();
    }
  });

  it('counts the responses the middleware wrote by output and status, and refused encoders by code', async () => {
    // A point of its own, so that the counts are exactly these requests'.
    const base = `${site.origin}/live/ch2.isml`;
    const post = new RawPost(`${base}/Streams(ch2)`);
    try {
      await post.write(F.header);
      for (const f of [...fragmentsOfRound(0), ...fragmentsOfRound(1)]) await post.write(f);
      await until(() => {
        const tracks = site.handler.origin.points().find((p) => p.path === 'ch2.isml')?.trackStats ?? [];
        return (tracks.length === 3 && tracks.every((t) => t.fragments === 8)) || undefined;
      });

      const manifest = await get(`${base}/Manifest`);
      expect(manifest.status).toBe(200);
      expect((await get(`${base}/Manifest`, { 'If-None-Match': manifest.headers.etag })).status).toBe(304);
      const video = (part: string, t: bigint, headers?: Record<string, string>): Promise<Reply> =>
        get(`${base}/QualityLevels(100000)/${part}(video=${t})`, headers);
      const found = await video('Fragments', 0n);
      expect(found.status).toBe(200);
      expect([
        (await video('Fragments', 0n, { 'If-None-Match': found.headers.etag! })).status,
        (await video('Fragments', 12345n)).status,
        (await video('Fragments', 900_000_000n)).status,
        (await video('FragmentInfo', 0n)).status,
        (await video('RawFragments', 10_000_000n)).status,
        (await video('KeyFrames', 0n)).status,
        (await request(site.origin, '/live/ch2.isml/Manifest', { method: 'OPTIONS' })).status,
        (await request(site.origin, '/live/ch2.isml/Manifest', { method: 'PUT', body: 'x' })).status,
        (await get(`${base}/Streams(ch2)`)).status,
      ]).toEqual([304, 404, 412, 200, 200, 404, 204, 405, 405]);
      // An encoder that starts with media instead of its header: refused with a 400.
      const garbage = await request(site.origin, '/live/ch2.isml/Streams(bad)', { method: 'POST', body: box('mdat', Buffer.alloc(64)) });
      expect(garbage.status).toBe(400);
      // A proxied encoder, with no ingestAuth configured: refused by the authorization, 403.
      const proxied = await request(site.origin, '/live/ch2.isml/Streams(far)', {
        method: 'POST',
        headers: { 'X-Forwarded-For': '203.0.113.5' },
        body: box('mdat', Buffer.alloc(64)),
      });
      expect(proxied.status).toBe(403);
      // The encoder ends its stream: its POST is answered 200.
      await post.write(F.mfra);
      expect((await post.end()).status).toBe(200);

      const { series } = parseExposition((await get(`${site.origin}/metrics`)).text);
      const rows = (name: string): string[] =>
        series.filter((x) => x.name === name && x.labels.point === 'ch2.isml').map((x) => `${Object.values(x.labels).slice(1).join(' ')} ${x.value}`);
      expect(rows('live_smooth_responses_total')).toEqual([
        'manifest 200 1',
        'manifest 304 1',
        'fragment 200 1',
        'fragment 304 1',
        'fragment 404 1',
        'fragment 412 1',
        'fragment_info 200 1',
        'raw_fragment 200 1',
        'ingest 200 1',
        'ingest 400 1',
        'ingest 403 1',
        'other 204 1',
        'other 404 1',
        'other 405 2',
      ]);
      expect(rows('live_smooth_ingest_refusals_total').sort()).toEqual(['ERR_BAD_HEADER 1', 'ERR_FORBIDDEN 1']);
      // Requests that reached no point are not counted.
      expect((await get(`${site.origin}/live/nothing.isml/Manifest`)).status).toBe(404);
      const after = parseExposition((await get(`${site.origin}/metrics`)).text).series;
      expect(after.filter((x) => x.name === 'live_smooth_responses_total' && !['ch1.isml', 'ch2.isml'].includes(x.labels.point!))).toEqual([]);
    } finally {
      post.destroy();
    }
  });

  it('answers HEAD with the headers, and other methods with 405', async () => {
    const head = await request(site.origin, '/metrics', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(head.body.length).toBe(0);
    const post = await request(site.origin, '/metrics', { method: 'POST', body: '{}' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it("serves a host registry with the host's metrics beside the origin's", async () => {
    hostCounter.inc(2);
    const res = await get(`${site.origin}/host-metrics`);
    expect(res.status).toBe(200);
    const { series } = parseExposition(res.text);
    expect(series.find((s) => s.name === 'host_jobs_total')?.value).toBe(2);
    expect(series.find((s) => s.name === 'live_smooth_points')?.value).toBe(site.handler.origin.points().length);
  });

  it('needs the origin or its handler', () => {
    expect(smoothErrorOf(() => liveSmooth.metrics(site.root as never)).code).toBe('ERR_INVALID_OPTION');
    expect(liveSmooth.metrics(site.handler).origin).toBe(site.handler.origin);
  });
});
