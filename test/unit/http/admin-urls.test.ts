/**
 * Each point's player URLs in the management API: Smooth always, DASH and HLS as its `formats`
 * setting offers them, prefixed with the middleware's mount point when the admin router knows it.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import express from 'express';
import request from 'supertest';
import { admin, createOrigin } from '../../../lib';
import { isml } from '../../helpers/server';

describe('point URLs in the management API', () => {
  const root = mkdtempSync(path.join(tmpdir(), 'live-smooth-urls-'));
  writeFileSync(path.join(root, 'all.isml'), isml());
  writeFileSync(path.join(root, 'hls.isml'), isml({ formats: 'm3u8-aapl' }));
  const origin = createOrigin(root, { stateFile: false });

  afterAll(() => {
    origin.close();
    rmSync(root, { recursive: true, force: true });
  });

  it('relative to the middleware without `live`; absolute with it; only the offered formats', async () => {
    const plain = express().use('/admin', admin(origin));
    const all = await request(plain).get('/admin/publishing-points/all.isml').expect(200);
    expect(all.body.urls).toEqual({ smooth: 'all.isml/Manifest', dash: 'all.isml/.mpd', hls: 'all.isml/.m3u8' });
    const mounted = express().use('/admin', admin(origin, { live: '/live/' }));
    const hls = await request(mounted).get('/admin/publishing-points/hls.isml').expect(200);
    expect(hls.body.urls).toEqual({ smooth: '/live/hls.isml/Manifest', hls: '/live/hls.isml/.m3u8' });
  });

  it('refuses a live option that is not a path or an http(s) URL', () => {
    for (const live of ['live', 'javascript:alert(1)', '/a b', '/x"y']) {
      expect(() => admin(origin, { live })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    }
  });
});
