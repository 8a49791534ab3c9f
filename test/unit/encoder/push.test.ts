/**
 * The simulated encoder's HTTP side against a bare `node:http` server that parses every POST with the
 * library's ingest parser: resend-on-reconnect (identical header, the last two fragments of each track,
 * then the rest, nothing lost), end of stream on stop, per-track POSTs, refusals and giving up.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SimulatedEncoder, formatStatus } from '../../../lib/encoder/push';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import type { IngestEvent } from '../../../lib/ingest/types';
import { ismv } from '../../helpers/ismv';

/** One POST as the server saw it. */
interface Post {
  url: string;
  header: Buffer | undefined;
  /** `trackId@time` of each complete fragment, in order. */
  fragments: string[];
  eos: boolean;
  closed: boolean;
}

interface Server {
  url: string;
  posts: Post[];
  close(): Promise<void>;
}

/**
 * A server that records POSTs. `cut(post, fragments)` returning true destroys that POST's socket;
 * `refuse` answers every POST with that status at once.
 */
async function ingestServer(o: { cut?: (index: number, fragments: number) => boolean; refuse?: number } = {}): Promise<Server> {
  const posts: Post[] = [];
  const server = http.createServer((req, res) => {
    if (req.headers['content-length'] === '0') {
      // The encoder's empty probe POST before each connection: answered, not recorded.
      res.writeHead(o.refuse ?? 200, { 'Content-Type': 'text/plain' });
      res.end(o.refuse ? 'no such publishing point' : '');
      return;
    }
    const post: Post = { url: req.url!, header: undefined, fragments: [], eos: false, closed: false };
    const index = posts.push(post) - 1;
    if (o.refuse) {
      res.writeHead(o.refuse, { 'Content-Type': 'text/plain', Connection: 'close' });
      res.end('no such publishing point');
      req.resume();
      return;
    }
    const parser = new SmoothIngestParser({ maxBoxSize: 1 << 24 });
    const onEvents = (events: IngestEvent[]): void => {
      for (const e of events) {
        if (e.type === 'header') post.header = e.boxes;
        else if (e.type === 'fragment') post.fragments.push(`${e.fragment.trackId}@${e.fragment.time}`);
        else post.eos = true;
      }
    };
    req.on('data', (chunk: Buffer) => {
      if (post.closed) return;
      onEvents(parser.push(chunk));
      if (o.cut?.(index, post.fragments.length)) {
        post.closed = true;
        req.socket.destroy();
      }
    });
    req.on('end', () => {
      onEvents(parser.end());
      res.end('ok');
    });
    req.on('close', () => (post.closed = true));
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/live/ch1.isml`,
    posts,
    close: () => {
      server.closeAllConnections();
      return new Promise((ok) => server.close(() => ok()));
    },
  };
}

let dir: string;
let media: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'live-smooth-push-'));
  media = path.join(dir, 'clip.ismv');
  writeFileSync(media, ismv({ fragments: 3 })); // video + audio, 3 × 2 s
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));

describe('SimulatedEncoder over HTTP', () => {
  it('reconnects after a cut with the identical header and the last two fragments of each track, losing nothing', async () => {
    const server = await ingestServer({ cut: (post, fragments) => post === 0 && fragments === 5 });
    const encoder = await SimulatedEncoder.open({
      url: server.url,
      files: [media],
      loops: 2,
      start: 17_640_720_000_000_001n,
      speed: 40, // a 2 s fragment every 50 ms: each is parsed before the next is written
      reconnect: { minDelay: 10 },
    });
    const sent: string[] = [];
    const seen: string[] = [];
    encoder.on('fragment', (f) => sent.push(`${f.track + 1}@${f.time}`));
    encoder.on('disconnected', () => seen.push('disconnected'));
    encoder.on('connected', ({ reconnect }) => seen.push(reconnect ? 'reconnected' : 'connected'));
    await encoder.start();
    await server.close();

    expect(sent).toHaveLength(12); // 2 tracks × 3 fragments × 2 loops
    expect(server.posts).toHaveLength(2);
    const [first, second] = server.posts as [Post, Post];
    expect(first.fragments).toEqual(sent.slice(0, 5));
    expect(first.eos).toBe(false);
    expect(second.header!.equals(first.header!)).toBe(true);
    // The encoder noticed the cut before writing fragment 6 (j = 5) or when writing fragment 7 (j = 6).
    const resendAfter = (j: number): string[] => {
      const before = sent.slice(0, j);
      const last2 = ['1', '2'].flatMap((t) => before.filter((f) => f.startsWith(`${t}@`)).slice(-2));
      return [...before.filter((f) => last2.includes(f)), ...sent.slice(j)];
    };
    expect([resendAfter(5), resendAfter(6)]).toContainEqual(second.fragments);
    expect(second.eos).toBe(true);
    // Together: every fragment, in order per track, none missing.
    const union = [...new Set([...first.fragments, ...second.fragments])];
    expect(union.sort()).toEqual([...sent].sort());
    expect(seen).toEqual(['connected', 'disconnected', 'reconnected']);
    expect(encoder.status()).toMatchObject({ state: 'stopped', reconnects: 1 });
  });

  it('ends the POST with an empty mfra (end of stream) on stop()', async () => {
    const server = await ingestServer();
    const encoder = await SimulatedEncoder.open({ url: `${server.url}/Streams(cam)`, files: [media], speed: 20 });
    void encoder.start();
    while (!server.posts[0] || server.posts[0].fragments.length < 3) await sleep(20);
    await encoder.stop();
    await server.close();
    expect(server.posts).toHaveLength(1);
    expect(server.posts[0]).toMatchObject({ url: '/live/ch1.isml/Streams(cam)', eos: true });
    const s = encoder.status();
    expect(s.state).toBe('stopped');
    expect(s.tracks.map((t) => t.streamId)).toEqual(['cam', 'cam']);
    expect(formatStatus(s)).toMatch(/^00:00:0\d loop 1 \| fragments \d+ \d+ \| \d+ kbit\/s \| reconnects 0$/);
  });

  it('sends one POST per track with perTrack, each with track_ID 1 and its own end of stream', async () => {
    const server = await ingestServer();
    const encoder = await SimulatedEncoder.open({ url: server.url, files: [media], loops: 1, speed: 50, perTrack: true, streamId: 'enc' });
    await encoder.start();
    await server.close();
    expect(server.posts.map((p) => p.url).sort()).toEqual([
      '/live/ch1.isml/Streams(enc-audio-64000)',
      expect.stringMatching(/^\/live\/ch1\.isml\/Streams\(enc-video-\d+\)$/),
    ]);
    for (const p of server.posts) {
      expect(p.eos).toBe(true);
      expect(p.fragments).toHaveLength(3);
      expect(p.fragments.every((f) => f.startsWith('1@'))).toBe(true);
    }
  });

  it('fails with ERR_ENCODER_REJECTED when the server refuses the stream', async () => {
    const server = await ingestServer({ refuse: 404 });
    const encoder = await SimulatedEncoder.open({ url: server.url, files: [media], speed: 50 });
    await expect(encoder.start()).rejects.toMatchObject({
      code: 'ERR_ENCODER_REJECTED',
      status: 404,
      message: expect.stringContaining('no such publishing point'),
    });
    expect(encoder.status().state).toBe('failed');
    await server.close();
  });

  it('gives up after reconnect.maxAttempts failed attempts in a row', async () => {
    const server = await ingestServer();
    await server.close(); // nothing listens on that port any more
    const encoder = await SimulatedEncoder.open({ url: server.url, files: [media], speed: 50, reconnect: { minDelay: 5, maxAttempts: 3 } });
    const retries: number[] = [];
    encoder.on('disconnected', ({ retryIn }) => retries.push(retryIn));
    await expect(encoder.start()).rejects.toMatchObject({ code: 'ERR_ENCODER_GAVE_UP' });
    expect(retries).toEqual([5, 10]); // doubling backoff between the 3 attempts
  });

  it('checks its options', async () => {
    const bad = async (options: object): Promise<unknown> =>
      SimulatedEncoder.open({ url: 'http://127.0.0.1:1/live/a.isml', files: [media], ...options }).catch((e: unknown) => e);
    await expect(bad({ url: 'ftp://x/a.isml' })).resolves.toMatchObject({ code: 'ERR_INVALID_OPTION', message: /url/ });
    await expect(bad({ url: 'http://x/a.mp4' })).resolves.toMatchObject({ message: /publishing point/ });
    await expect(bad({ url: 'http://x/a.isml/Streams(s)', perTrack: true })).resolves.toMatchObject({ message: /perTrack/ });
    await expect(bad({ loops: -1 })).resolves.toMatchObject({ message: /loops/ });
    await expect(bad({ speed: 0 })).resolves.toMatchObject({ message: /speed/ });
    await expect(bad({ start: 'yesterday' })).resolves.toMatchObject({ message: /start/ });
    await expect(bad({ streamId: 'a b' })).resolves.toMatchObject({ message: /streamId/ });
    await expect(bad({ files: [] })).resolves.toMatchObject({ message: /files/ });
  });
});
