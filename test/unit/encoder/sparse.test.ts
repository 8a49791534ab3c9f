/**
 * The simulated encoder's sparse tracks: the header and fragments read back by the library's Smooth
 * ingest parser (track descriptions, TTML captions, SCTE-35 markers), the marker schedule, option
 * checks, and the `Streams(<id>-sparse)` POST of a real push (aligned with the video, never ahead of
 * it, closed between markers without captions, ended by an empty mfra).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { SimulatedEncoder } from '../../../lib/encoder/push';
import { SparseTracks, captionDocument, clockText } from '../../../lib/encoder/sparse';
import { crc32Mpeg2 } from '../../../lib/encoder/scte35';
import { madeUpStreamHeader } from '../../../lib/ismv/header';
import { sampleFragment } from '../../../lib/ismv/fragment';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import type { IngestEvent, IngestTrack } from '../../../lib/ingest/types';
import { SCTE35_SCHEME } from '../../../lib/model';
import { ismv } from '../../helpers/ismv';

const TS = 10_000_000;
const FRAGMENT = 20_000_000n;
const parent = { name: 'video', timescale: TS, averageFragment: FRAGMENT };

/** One fragment as the ingest parser returned it: track, times and its one sample's bytes. */
interface Got {
  trackId: number;
  time: bigint;
  duration: bigint;
  sample: Buffer;
}

/** Feeds bytes to a fresh parser in small chunks (any split must give the same events). */
function parse(...parts: Buffer[]): { tracks: IngestTrack[]; fragments: Got[]; eos: boolean; skipped: string[] } {
  const parser = new SmoothIngestParser({ maxBoxSize: 1 << 24 });
  const all = Buffer.concat(parts);
  const events: IngestEvent[] = [];
  for (let i = 0; i < all.length; i += 333) events.push(...parser.push(all.subarray(i, i + 333)));
  events.push(...parser.end());
  const out = { tracks: [] as IngestTrack[], fragments: [] as Got[], eos: false, skipped: [] as string[] };
  for (const e of events) {
    if (e.type === 'header') {
      out.tracks = e.tracks;
      out.skipped = e.skipped ?? [];
    } else if (e.type === 'fragment') {
      const f = e.fragment;
      out.fragments.push({ trackId: f.trackId, time: f.time, duration: f.duration, sample: Buffer.concat(f.data) });
    } else out.eos = true;
  }
  return out;
}

/** The `<p>` of a caption document. */
function cue(doc: string): { begin: string; end: string; text: string; lang: string } {
  expect(XMLValidator.validate(doc)).toBe(true);
  const x = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '' }).parse(doc) as {
    tt: { 'xml:lang': string; 'ttp:timeBase': string; body: { div: { p: { begin: string; end: string; '#text': string } } } };
  };
  expect(x.tt['ttp:timeBase']).toBe('media');
  const p = x.tt.body.div.p;
  return { begin: p.begin, end: p.end, text: p['#text'], lang: x.tt['xml:lang'] };
}

/** What a marker sample says: Azure's header and the splice_insert fields. */
interface Marker {
  version: number;
  id: number;
  delta: number;
  eventId: number;
  outOfNetwork: boolean;
  pts: bigint;
  duration: bigint;
  autoReturn: boolean;
}

/** The splice_insert fields a marker carries (fixed offsets of a section without descriptors, with time and duration). */
function marker(sample: Buffer): Marker {
  const section = sample.subarray(12);
  expect(section[0]).toBe(0xfc);
  expect(section[13]).toBe(0x05); // splice_insert
  expect(crc32Mpeg2(section)).toBe(0);
  const c = section.subarray(14);
  const flags = c[5]!;
  const time = (BigInt(c[6]! & 1) << 32n) | BigInt(c.readUInt32BE(7));
  const duration = (BigInt(c[11]! & 1) << 32n) | BigInt(c.readUInt32BE(12));
  return {
    version: sample.readUInt32BE(0),
    id: sample.readUInt32BE(4),
    delta: sample.readUInt32BE(8),
    eventId: c.readUInt32BE(0),
    outOfNetwork: (flags & 0x80) !== 0,
    pts: time,
    duration,
    autoReturn: (c[11]! & 0x80) !== 0,
  };
}

describe('sparse tracks read back by the Smooth ingest parser', () => {
  it('describes captions and ad markers as sparse text tracks of the parent', () => {
    const sparse = new SparseTracks({ captions: { language: 'pt-BR' }, adMarkers: { every: 10, duration: 4 } }, parent, ['video', 'audio']);
    const { tracks, skipped } = parse(madeUpStreamHeader(sparse.tracks, 'demo'));
    expect(skipped).toEqual([]);
    expect(tracks.map((t) => t.trackId)).toEqual([1, 2]);
    const [captions, ads] = tracks.map((t) => t.info);
    expect(captions).toMatchObject({
      type: 'text',
      name: 'captions',
      fourCC: 'TTML',
      subtype: 'CAPT',
      parent: 'video',
      manifestOutput: false,
      language: 'pt-BR',
      timescale: TS,
      codecPrivateData: '',
    });
    expect(captions!.scheme).toBeUndefined();
    expect(captions!.bitrate).toBeGreaterThan(0);
    expect(ads).toMatchObject({
      type: 'text',
      name: 'ads',
      bitrate: 0,
      fourCC: 'DATA',
      subtype: 'DATA',
      parent: 'video',
      manifestOutput: true,
      scheme: SCTE35_SCHEME,
      timescale: TS,
    });
    // Each track has an init segment with its sample entry: stpp for captions, scte for markers.
    expect(tracks[0]!.init.includes(Buffer.from('stpp'))).toBe(true);
    expect(tracks[0]!.init.includes(Buffer.from('http://www.w3.org/ns/ttml\0\0\0'))).toBe(true);
    expect(tracks[1]!.init.includes(Buffer.from('scte'))).toBe(true);
  });

  it('writes the Live Server Manifest params of both tracks', () => {
    const sparse = new SparseTracks({ captions: true, adMarkers: { every: 10, duration: 4, trackName: 'scte35' } }, parent, ['video']);
    const text = madeUpStreamHeader(sparse.tracks).toString('utf8');
    const params = (from: string): Record<string, string> => {
      const el = text.slice(text.indexOf(from), text.indexOf('</textstream>', text.indexOf(from)));
      return Object.fromEntries([...el.matchAll(/<param name="([^"]+)" value="([^"]*)"/g)].map((m) => [m[1]!, m[2]!]));
    };
    expect(text).toMatch(/<textstream src="Streams" systemBitrate="\d+" systemLanguage="en">/);
    expect(text).toContain('<textstream src="Streams" systemBitrate="0">');
    expect(params('systemLanguage="en"')).toMatchObject({
      trackID: '1',
      trackName: 'captions',
      timescale: String(TS),
      FourCC: 'TTML',
      Subtype: 'CAPT',
      parentTrackName: 'video',
      manifestOutput: 'false',
    });
    expect(params('systemBitrate="0"')).toMatchObject({
      trackID: '2',
      trackName: 'scte35',
      FourCC: 'DATA',
      Subtype: 'DATA',
      parentTrackName: 'video',
      manifestOutput: 'true',
      Scheme: 'urn:scte:scte35:2013:bin',
    });
  });

  it('sends one caption per parent fragment, its cue relative to the fragment and naming its time', () => {
    const sparse = new SparseTracks({ captions: true }, parent, ['video']);
    const start = 0n;
    const fragments: Buffer[] = [];
    let seq = 0;
    for (let i = 0; i < 40; i++) {
      const time = BigInt(i) * FRAGMENT;
      for (const s of sparse.samplesFor(time, FRAGMENT, start)) {
        const f = sampleFragment(s.sample, s.local + 1, ++seq, s.time, s.duration);
        fragments.push(f.moof, f.mdat);
      }
    }
    const got = parse(madeUpStreamHeader(sparse.tracks), ...fragments);
    expect(got.fragments).toHaveLength(40);
    got.fragments.forEach((f, i) => {
      expect(f).toMatchObject({ trackId: 1, time: BigInt(i) * FRAGMENT, duration: FRAGMENT });
      const c = cue(f.sample.toString('utf8'));
      expect(c).toEqual({ begin: '00:00:00.000', end: '00:00:02.000', text: `live-smooth ${clockText(f.time, TS)}`, lang: 'en' });
    });
    expect(cue(got.fragments[37]!.sample.toString('utf8')).text).toBe('live-smooth 00:01:14');
  });

  it('ends a cue at the fragment end, rounded down to the millisecond', () => {
    expect(cue(captionDocument('x', 20_020_004n, TS, 'en'))).toMatchObject({ begin: '00:00:00.000', end: '00:00:02.002' });
    expect(cue(captionDocument('a < b & "c"', 900n, 90_000, 'fr'))).toMatchObject({ end: '00:00:00.010', text: 'a < b & "c"', lang: 'fr' });
  });

  it('places a marker at the first fragment start every N seconds after the previous one, lasting the break', () => {
    // Fragments of 2 s from a start of 100 s; markers every 5 s: at the first starts ≥ 105 s, then ≥ 5 s later.
    const start = 100n * BigInt(TS);
    const sparse = new SparseTracks({ adMarkers: { every: 5, duration: 3 } }, parent, ['video']);
    const fragments: Buffer[] = [];
    let seq = 0;
    for (let i = 0; i < 10; i++) {
      for (const s of sparse.samplesFor(start + BigInt(i) * FRAGMENT, FRAGMENT, start)) {
        const f = sampleFragment(s.sample, s.local + 1, ++seq, s.time, s.duration);
        fragments.push(f.moof, f.mdat);
      }
    }
    const got = parse(madeUpStreamHeader(sparse.tracks), ...fragments);
    expect(got.fragments.map((f) => Number(f.time) / TS)).toEqual([106, 112, 118]);
    got.fragments.forEach((f, i) => {
      expect(f.duration).toBe(3n * BigInt(TS));
      expect(marker(f.sample)).toEqual({
        version: 1,
        id: i + 1,
        delta: 0,
        eventId: i + 1,
        outOfNetwork: true,
        pts: (f.time * 9n) / 1000n, // 90 kHz
        duration: 270_000n,
        autoReturn: true,
      });
    });
  });

  it('checks its options', () => {
    const make = (o: object, taken = ['video']): unknown => {
      try {
        return new SparseTracks(o, parent, taken);
      } catch (err) {
        return err;
      }
    };
    expect(make({ captions: { language: 'not a tag' } })).toMatchObject({ code: 'ERR_INVALID_OPTION', message: /captions\.language/ });
    expect(make({ captions: { trackName: 'video' } })).toMatchObject({ message: /captions\.trackName.*already/ });
    expect(make({ captions: true, adMarkers: { every: 10, duration: 5, trackName: 'captions' } })).toMatchObject({ message: /adMarkers\.trackName/ });
    expect(make({ captions: { trackName: '1x' } })).toMatchObject({ message: /captions\.trackName/ });
    expect(make({ adMarkers: { every: 0, duration: 1 } })).toMatchObject({ message: /adMarkers\.every/ });
    expect(make({ adMarkers: { every: 10, duration: 11 } })).toMatchObject({ message: /adMarkers\.duration/ });
    expect(make({ adMarkers: { every: 1000, duration: 500 } })).toMatchObject({ message: /adMarkers\.duration.*at most 429 s/ });
    expect(make({ adMarkers: 30 })).toMatchObject({ message: /adMarkers/ });
    expect((make({ captions: false }) as SparseTracks).tracks).toEqual([]);
  });
});

/** One POST as the server saw it. */
interface Post {
  url: string;
  tracks: IngestTrack[];
  fragments: Got[];
  eos: boolean;
}

/** A server that parses every POST with the library's ingest parser and keeps what it read. */
async function ingestServer(): Promise<{ url: string; posts: Post[]; close(): Promise<void> }> {
  const posts: Post[] = [];
  const server = http.createServer((req, res) => {
    if (req.headers['content-length'] === '0') {
      res.end(); // the encoder's probe
      return;
    }
    const post: Post = { url: req.url!, tracks: [], fragments: [], eos: false };
    posts.push(post);
    const parser = new SmoothIngestParser({ maxBoxSize: 1 << 24 });
    const onEvents = (events: IngestEvent[]): void => {
      for (const e of events) {
        if (e.type === 'header') post.tracks = e.tracks;
        else if (e.type === 'fragment') {
          const f = e.fragment;
          post.fragments.push({ trackId: f.trackId, time: f.time, duration: f.duration, sample: Buffer.concat(f.data) });
        } else post.eos = true;
      }
    };
    req.on('data', (chunk: Buffer) => onEvents(parser.push(chunk)));
    req.on('end', () => {
      onEvents(parser.end());
      res.end('ok');
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/live/ch1.isml`,
    posts,
    close: () => {
      server.closeAllConnections();
      return new Promise((ok) => server.close(() => ok()));
    },
  };
}

describe('the sparse POST of a push', () => {
  let dir: string;
  let media: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'live-smooth-sparse-'));
    media = path.join(dir, 'clip.ismv');
    writeFileSync(media, ismv({ fragments: 3 })); // video + audio, 3 × 2 s
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('follows the video fragment by fragment in Streams(<id>-sparse), never ahead of it, and ends with an mfra', async () => {
    const server = await ingestServer();
    const encoder = await SimulatedEncoder.open({
      url: server.url,
      files: [media],
      loops: 2,
      speed: 50,
      streamId: 'enc',
      captions: true,
      adMarkers: { every: 4, duration: 2 },
    });
    const order: string[] = [];
    encoder.on('fragment', (f) => order.push(`${f.streamId}/${f.track}@${f.time}`));
    const failures: Error[] = [];
    encoder.on('sparseFailed', ({ error }) => failures.push(error));
    await encoder.start();
    await server.close();
    expect(failures).toEqual([]);

    const media0 = server.posts.find((p) => p.url.endsWith('Streams(enc)'))!;
    const sparse = server.posts.filter((p) => p.url === '/live/ch1.isml/Streams(enc-sparse)');
    expect(sparse).toHaveLength(1); // captions keep the POST busy: never closed in between
    const [post] = sparse as [Post];
    expect(post.eos).toBe(true);
    expect(media0.eos).toBe(true);
    expect(post.tracks.map((t) => [t.info.name, t.info.parent])).toEqual([
      ['captions', 'video'],
      ['ads', 'video'],
    ]);
    const video = media0.fragments.filter((f) => f.trackId === 1);
    const captions = post.fragments.filter((f) => f.trackId === 1);
    expect(captions.map((f) => [f.time, f.duration])).toEqual(video.map((f) => [f.time, f.duration]));
    for (const c of captions) expect(cue(c.sample.toString('utf8')).text).toBe(`live-smooth ${clockText(c.time, TS)}`);
    // 12 s of video from 0: markers at 4 s and 8 s.
    expect(post.fragments.filter((f) => f.trackId === 2).map((f) => f.time)).toEqual([40_000_000n, 80_000_000n]);

    // Each sparse fragment went out after the video fragment it belongs to.
    for (const [i, entry] of order.entries()) {
      if (!entry.startsWith('enc-sparse/')) continue;
      const time = entry.slice(entry.indexOf('@') + 1);
      expect(order.slice(0, i)).toContain(`enc/0@${time}`);
    }
    const s = encoder.status();
    expect(s.tracks.map((t) => [t.name, t.streamId, t.fragments])).toEqual([
      ['video', 'enc', 6],
      ['audio', 'enc', 6],
      ['captions', 'enc-sparse', 6],
      ['ads', 'enc-sparse', 2],
    ]);
    expect(s.streams).toBe(2);
  });

  it('without captions, opens a POST per marker (header first) and closes it, then ends with an mfra', async () => {
    const server = await ingestServer();
    const encoder = await SimulatedEncoder.open({ url: server.url, files: [media], loops: 2, speed: 50, adMarkers: { every: 4, duration: 2 } });
    const seen: string[] = [];
    encoder.on('connected', ({ streamId, reconnect }) => seen.push(`${streamId}${reconnect ? ' again' : ''}`));
    await encoder.start();
    await server.close();
    const sparse = server.posts.filter((p) => p.url.endsWith('Streams(live-smooth-sparse)'));
    // One POST per marker, each a complete header and its marker; the last one carries the end of stream.
    expect(sparse.map((p) => p.fragments.map((f) => f.time))).toEqual([[40_000_000n], [80_000_000n], []]);
    expect(sparse.map((p) => p.tracks.map((t) => t.info.name))).toEqual([['ads'], ['ads'], ['ads']]);
    expect(sparse.map((p) => p.eos)).toEqual([false, false, true]);
    expect(seen.filter((s) => s.startsWith('live-smooth-sparse'))).toEqual(['live-smooth-sparse', 'live-smooth-sparse', 'live-smooth-sparse']);
    expect(encoder.status().reconnects).toBe(0);
  });

  it('leaves the default push alone: one POST, no sparse tracks', async () => {
    const server = await ingestServer();
    const encoder = await SimulatedEncoder.open({ url: server.url, files: [media], loops: 1, speed: 50 });
    await encoder.start();
    await server.close();
    expect(server.posts.map((p) => p.url)).toEqual(['/live/ch1.isml/Streams(live-smooth)']);
    expect(encoder.status().tracks.map((t) => t.type)).toEqual(['video', 'audio']);
  });
});
