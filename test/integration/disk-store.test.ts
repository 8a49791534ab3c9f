/**
 * The store on disk behind the HTTP edge: the captured ffmpeg push replayed into two servers, one
 * with the default memory store and one with `diskStore`; once the disk store has written the
 * fragments, every fragment answers the same bytes and headers from both (full response,
 * FragmentInfo, RawFragments, HEAD), streamed from the files.
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { diskStore } from '../../lib/store/disk';
import { fixture, get, parseManifest, replay, until } from '../helpers/raw-ingest';
import { TestServer, startServer } from '../helpers/server';

const F = fixture();
const folder = mkdtempSync(path.join(tmpdir(), 'live-smooth-disk-http-'));
let memory: TestServer;
let disk: TestServer;

beforeAll(async () => {
  memory = await startServer({ stateFile: false });
  disk = await startServer({ stateFile: false, store: diskStore({ folder }) });
  for (const s of [memory, disk]) {
    s.define('ch1.isml');
    expect((await replay(`${s.base}/ch1.isml/Streams(ch1)`, F.all)).status).toBe(200);
  }
  // Every record on disk: from here on, fragments are read from the files.
  const point = disk.handler.origin.points()[0]!;
  await until(() => {
    const dirs = readdirSync(folder);
    if (dirs.length !== 1) return false;
    const dir = path.join(folder, dirs[0]!);
    const written = readdirSync(dir)
      .filter((f) => f.endsWith('.frag'))
      .reduce((n, f) => n + statSync(path.join(dir, f)).size, 0);
    return written > 0 && written === point.bytes;
  });
});

afterAll(async () => {
  await memory.close();
  await disk.close();
  rmSync(folder, { recursive: true, force: true });
});

/** Every fragment URL the manifest lists, per quality level. */
async function fragmentUrls(base: string): Promise<string[]> {
  const m = parseManifest((await get(`${base}/ch1.isml/Manifest`)).body.toString('utf8'));
  const urls: string[] = [];
  for (const s of m.streams) {
    for (const bitrate of s.bitrates) {
      for (const f of s.fragments) urls.push(`QualityLevels(${bitrate})/Fragments(${s.name}=${f.t})`);
    }
  }
  return urls;
}

describe('diskStore behind liveSmooth', () => {
  it('keeps the fragments in files named with numbers only, in a folder of its own', () => {
    const stores = readdirSync(folder);
    expect(stores).toHaveLength(1);
    expect(stores[0]).toMatch(/^[0-9a-f]{16}-[0-9a-f]{8}$/);
    const files = readdirSync(path.join(folder, stores[0]!)).sort();
    expect(files).toEqual(['0-0.frag', '1-0.frag', '2-0.frag', 'owner']);
  });

  it('lists the same manifest as the memory store', async () => {
    const a = parseManifest((await get(`${memory.base}/ch1.isml/Manifest`)).body.toString('utf8'));
    const b = parseManifest((await get(`${disk.base}/ch1.isml/Manifest`)).body.toString('utf8'));
    expect(b.streams).toEqual(a.streams);
    expect(a.streams.flatMap((s) => s.fragments)).toHaveLength(8);
  });

  it('answers every fragment, FragmentInfo, RawFragments and HEAD with the memory store’s bytes and headers', async () => {
    const urls = await fragmentUrls(memory.base);
    expect(urls).toHaveLength(12);
    for (const url of urls) {
      for (const [variant, method] of [
        [url, 'GET'],
        [url.replace('/Fragments(', '/FragmentInfo('), 'GET'],
        [url.replace('/Fragments(', '/RawFragments('), 'GET'],
        [url, 'HEAD'],
      ] as const) {
        const a = await get(`${memory.base}/ch1.isml/${variant}`, {}, method);
        const b = await get(`${disk.base}/ch1.isml/${variant}`, {}, method);
        expect({ variant, method, status: b.status }).toEqual({ variant, method, status: 200 });
        expect(b.body.equals(a.body)).toBe(true);
        for (const h of ['content-type', 'content-length', 'cache-control']) expect(b.headers[h]).toBe(a.headers[h]);
        if (method === 'GET') expect(Number(b.headers['content-length'])).toBe(b.body.length);
      }
    }
  });
});
