/**
 * The sample player handler: the page at its root (Express mount with and without the trailing slash,
 * plain node:http), the two dash.js bundles from the package, everything else to next(), escaped
 * configuration, option checks.
 */
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import express from 'express';
import request from 'supertest';
import { player } from '../../lib/http/player';

describe('player()', () => {
  const app = express();
  app.use('/watch', player({ manifest: '/live/ch1.isml/Manifest', title: 'Channel <1> & "two"' }));
  app.use((_req, res) => res.status(418).send('fell through'));

  it('serves the page at its mount root, with the configuration embedded and escaped', async () => {
    const res = await request(app).get('/watch/').expect(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.text).toContain('<title>Channel &#60;1&#62; &#38; &#34;two&#34;</title>');
    expect(res.text).toContain('var config = {"manifest":"/live/ch1.isml/Manifest","title":"Channel \\u003c1> & \\"two\\""};');
    expect(res.text).toContain('<script src="dashjs/dash.all.min.js"></script>');
    expect(res.text).toContain('<script src="dashjs/dash.mss.min.js"></script>');
    expect(res.text).toContain('autoSwitchBitrate: { video: false }');
    expect(res.text).toContain("setRepresentationForTypeById('video', value, true)");
    expect(res.text).toContain("utcSynchronization: { enabled: format === 'dash' }");
    expect(res.text).toContain('<script src="hlsjs/hls.min.js"></script>');
    expect(res.text).toContain('<option value="hls">HLS (hls.js)</option>');
    await request(app).head('/watch/index.html').expect(200);
  });

  it('redirects the root without its slash (the page’s URLs are relative), keeping the query', async () => {
    await request(app).get('/watch?src=x').expect(301).expect('Location', '/watch/?src=x');
    const nested = express();
    nested.use('//evil.example', player());
    await request(nested).get('//evil.example').expect(301).expect('Location', '/evil.example/');
  });

  it('serves dash.js and its MSS module from the installed package', async () => {
    const dir = path.dirname(require.resolve('dashjs'));
    for (const name of ['dash.all.min.js', 'dash.mss.min.js']) {
      const res = await request(app).get(`/watch/dashjs/${name}`).expect(200);
      expect(res.headers['content-type']).toBe('text/javascript; charset=utf-8');
      expect(res.text).toBe(readFileSync(path.join(dir, name), 'utf8'));
    }
  });

  it('serves hls.js from the installed package, for the HLS choice', async () => {
    const file = path.join(path.dirname(require.resolve('hls.js')), 'hls.min.js');
    const res = await request(app).get('/watch/hlsjs/hls.min.js').expect(200);
    expect(res.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(res.text).toBe(readFileSync(file, 'utf8'));
    await request(app).get('/watch/hlsjs/hls.js').expect(418);
  });

  it('passes every other URL and method on', async () => {
    for (const url of ['/watch/dashjs/dash.all.debug.js', '/watch/dashjs/../package.json', '/watch/other', '/elsewhere']) {
      await request(app).get(url).expect(418);
    }
    await request(app).post('/watch/').expect(418);
  });

  it('works without Express (404 for the rest), from the live-smooth/player entry', async () => {
    const server = http.createServer(player());
    const page = await request(server).get('/').expect(200);
    expect(page.text).toContain('"manifest":"live/live.isml/Manifest"');
    await request(server).get('/missing').expect(404);
  });

  it('checks its options', () => {
    expect(() => player({ manifest: '' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_OPTION' }));
    expect(() => player({ title: 'x'.repeat(201) })).toThrow(/title/);
  });
});
