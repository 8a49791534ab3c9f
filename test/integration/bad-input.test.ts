/**
 * Malformed ingest against a running server. Every bad POST stays open like an encoder's (ffmpeg never
 * reads the status while it pushes), so the server must answer 400 with a short reason AND close the
 * connection. Meanwhile a good stream keeps pushing to another point and must not notice.
 */
import * as net from 'node:net';
import { REFUSAL_DRAIN_MS } from '../../lib/http/middleware';
import { startServer, TestServer } from '../helpers/server';
import { ffmpegPath, withTool } from '../helpers/tools';
import { push } from '../helpers/ffmpeg';
import {
  RawPost,
  Reply,
  box,
  fixture,
  fragmentsOfRound,
  get,
  headerWithLsm,
  parseManifest,
  replay,
  sleep,
  until,
} from '../helpers/raw-ingest';

/** A live encoder replaying the fixture in an endless, time-shifted loop (4 s of media every ~300 ms). */
class GoodStream {
  readonly post: RawPost;
  readonly #running: Promise<void>;
  #stopped = false;
  fragmentsSent = 0;

  constructor(url: string, pace = 25) {
    this.post = new RawPost(url);
    this.#running = this.#run(pace);
  }

  async #run(pace: number): Promise<void> {
    await this.post.write(fixture().header);
    for (let round = 0; !this.#stopped; round++) {
      for (const f of fragmentsOfRound(round)) {
        if (this.#stopped || this.post.isClosed) return;
        await this.post.write(f);
        this.fragmentsSent++;
        await sleep(pace);
      }
    }
  }

  /** Stops after the current fragment, sends the EOS mfra and ends the body. */
  async stop(): Promise<Reply> {
    this.#stopped = true;
    await this.#running;
    await this.post.write(fixture().mfra);
    return this.post.end();
  }
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

/**
 * The refusal contract: 400 (or `status`), a short plain-text reason matching `reason`, `Connection:
 * close`, and the socket closed by the server although the client never ended its body.
 */
async function expectRefused(post: RawPost, reason: RegExp, status = 400): Promise<Reply> {
  const reply = await within(post.response, 5000, 'response');
  expect(reply.status).toBe(status);
  expect(reply.headers['content-type']).toMatch(/^text\/plain/);
  expect(reply.headers.connection).toBe('close');
  expect(reply.text).toMatch(reason);
  expect(reply.text.length).toBeLessThan(300);
  // Box types come from the peer: control bytes must be escaped before they reach a reply.
  expect(reply.text.trimEnd()).not.toMatch(/[\x00-\x1f\x7f]/);
  await within(post.closed, 3000, 'socket close');
  expect(post.req.writableEnded).toBe(false);
  return reply;
}

type Manifest = ReturnType<typeof parseManifest>;

describe('bad ingest input while a good stream is live', () => {
  const MAX_BOX = 64 * 1024; // the fixture's largest box is a 19.9 kB mdat
  let srv: TestServer;
  let good: GoodStream;
  const rejected: Array<{ point: string; streamId: string; code: string; message: string }> = [];
  let memoryBefore: NodeJS.MemoryUsage;
  let videoBefore = 0;

  const url = (point: string, stream = 'bad'): string => `${srv.base}/${point}.isml/Streams(${stream})`;
  const goodManifest = async (): Promise<Manifest> => {
    const r = await get(`${srv.base}/good.isml/Manifest`);
    expect(r.status).toBe(200);
    return parseManifest(r.text);
  };
  const videoCount = (m: Manifest): number => m.streams.find((s) => s.type === 'video')?.fragments.length ?? 0;
  const codeOf = (point: string): string[] => rejected.filter((e) => e.point === `${point}.isml`).map((e) => e.code);

  beforeAll(async () => {
    srv = await startServer({ maxBoxSize: MAX_BOX });
    srv.handler.origin.on('inputRejected', (e) => rejected.push(e));
    srv.define('good.isml');
    good = new GoodStream(url('good', 'good'));
    const m = await until(async () => {
      const r = await get(`${srv.base}/good.isml/Manifest`);
      if (r.status !== 200) return undefined;
      const parsed = parseManifest(r.text);
      return videoCount(parsed) >= 4 ? parsed : undefined;
    });
    videoBefore = videoCount(m);
    global.gc?.();
    memoryBefore = process.memoryUsage();
  });

  afterAll(async () => {
    if (good && !good.post.isClosed) await good.stop().catch(() => undefined);
    await srv?.close();
  });

  it('garbage text: 400 naming the oversized "box" it parses as, then closes', async () => {
    srv.define('garbage-text.isml');
    const post = new RawPost(url('garbage-text'));
    await post.write(Buffer.from('this is not an MP4 stream, just text\n'.repeat(50)));
    await expectRefused(post, /exceeds maxBoxSize 65536/);
    expect(codeOf('garbage-text')).toEqual(['ERR_BOX_TOO_LARGE']);
  });

  it('garbage binary with a plausible size: 400 "must start with ftyp", type escaped', async () => {
    srv.define('garbage-bin.isml');
    const post = new RawPost(url('garbage-bin'));
    const junk = Buffer.from([0, 0, 0, 16, 0xff, 0x00, 0x0a, 0x41, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 8]);
    await post.write(junk);
    const reply = await expectRefused(post, /must start with ftyp, got '\\xff\\x00\\x0aA'/);
    expect(reply.text).not.toContain('\xff');
    expect(codeOf('garbage-bin')).toEqual(['ERR_BAD_HEADER']);
  });

  it('a moof before the header: 400 "moof before the stream header"', async () => {
    srv.define('moof-first.isml');
    const f = fixture();
    const post = new RawPost(url('moof-first'));
    await post.write(Buffer.concat([f.ftyp, f.fragments[0]!]));
    await expectRefused(post, /'moof' before the stream header/);
    // and as the very first box
    const post2 = new RawPost(url('moof-first', 'bad2'));
    await post2.write(f.fragments[0]!);
    await expectRefused(post2, /must start with ftyp, got 'moof'/);
    expect(codeOf('moof-first')).toEqual(['ERR_BAD_HEADER', 'ERR_BAD_HEADER']);
  });

  it('a box whose size field says 3: 400 "smaller than its header"', async () => {
    srv.define('size3.isml');
    const f = fixture();
    const post = new RawPost(url('size3'));
    await post.write(Buffer.concat([f.header, f.fragments[0]!, box('moof', Buffer.alloc(64), 3)]));
    await expectRefused(post, /box 'moof' declares size 3, smaller than its header/);
    expect(codeOf('size3')).toEqual(['ERR_BAD_BOX']);
  });

  it('a box that claims more bytes than follow: no answer while it may still arrive, 400 truncated when the body ends', async () => {
    srv.define('size-lie.isml');
    const f = fixture();
    const frag = Buffer.from(f.fragments[0]!);
    const moofSize = frag.readUInt32BE(0);
    const mdatSize = frag.readUInt32BE(moofSize);
    frag.writeUInt32BE(mdatSize + 5000, moofSize); // mdat claims 5000 bytes that never come
    const post = new RawPost(url('size-lie'));
    await post.write(Buffer.concat([f.header, frag]));
    await sleep(300);
    expect(post.responded).toBe(false); // a real encoder could still be sending the rest
    const reply = await within(post.end(), 5000, 'response');
    expect(reply.status).toBe(400);
    expect(reply.text).toMatch(new RegExp(`input ended inside box 'mdat' \\(${mdatSize} of ${mdatSize + 5000} bytes\\)`));
    await within(post.closed, 3000, 'socket close');
    expect(codeOf('size-lie')).toEqual(['ERR_TRUNCATED']);
  });

  it('a box over maxBoxSize: 400 arrives before the box is sent (32-bit size, 64-bit largesize, size 0)', async () => {
    srv.define('too-big.isml');
    const f = fixture();
    // 32-bit size of 1 MiB: refused on the header alone
    const a = new RawPost(url('too-big', 'a'));
    await a.write(Buffer.concat([f.header, box('mdat', Buffer.alloc(0), 1024 * 1024)]));
    await a.write(Buffer.alloc(4096));
    await expectRefused(a, /box 'mdat' of 1048576 bytes exceeds maxBoxSize 65536/);
    expect(a.sent).toBeLessThan(f.header.length + 8192);

    // largesize (size field 1, 64-bit size follows) of 1 TiB
    const b = new RawPost(url('too-big', 'b'));
    const large = Buffer.alloc(16);
    large.writeUInt32BE(1, 0);
    large.write('mdat', 4, 'latin1');
    large.writeBigUInt64BE(2n ** 40n, 8);
    await b.write(Buffer.concat([f.header, large]));
    await expectRefused(b, /box 'mdat' of 1099511627776 bytes exceeds maxBoxSize/);

    // size 0 ("to the end of the input"): refused as soon as it outgrows maxBoxSize
    const c = new RawPost(url('too-big', 'c'));
    await c.write(Buffer.concat([f.header, box('mdat', Buffer.alloc(0), 0)]));
    while (!c.responded && !c.isClosed && c.sent < 16 * MAX_BOX) {
      await c.write(Buffer.alloc(16 * 1024));
      await sleep(5);
    }
    await expectRefused(c, /box 'mdat' of \d+ bytes exceeds maxBoxSize 65536/);
    expect(c.sent).toBeLessThan(f.header.length + MAX_BOX + 4 * 16 * 1024);
    expect(codeOf('too-big')).toEqual(['ERR_BOX_TOO_LARGE', 'ERR_BOX_TOO_LARGE', 'ERR_BOX_TOO_LARGE']);
  });

  it('a body that ends in the middle of a box or of a box header: 400 truncated', async () => {
    srv.define('truncated.isml');
    const f = fixture();
    const half = f.fragments[1]!.subarray(0, 5000);
    const a = await replay(url('truncated', 'a'), Buffer.concat([f.header, f.fragments[0]!, half]));
    expect(a.status).toBe(400);
    expect(a.headers.connection).toBe('close');
    expect(a.text).toMatch(/input ended inside box 'mdat' \(4680 of 9634 bytes\)/);
    const b = await replay(url('truncated', 'b'), Buffer.concat([f.header, f.fragments[0]!, Buffer.from([0, 0, 0])]));
    expect(b.status).toBe(400);
    expect(b.text).toMatch(/input ended inside a box header \(3 bytes\)/);
    expect(codeOf('truncated')).toEqual(['ERR_TRUNCATED', 'ERR_TRUNCATED']);
  });

  it('an unknown codec FourCC in the Live Server Manifest: 400 naming it', async () => {
    srv.define('codec.isml');
    // A longer FourCC than the original: the LSM box size must follow (lsmBox rewrites it).
    const header = headerWithLsm((s) => s.replace('name="FourCC" value="H264"', 'name="FourCC" value="MPEG4V"'));
    const post = new RawPost(url('codec'));
    await post.write(Buffer.concat([header, fixture().fragments[0]!]));
    await expectRefused(post, /track 1: unknown video FourCC 'MPEG4V'/);
    expect(codeOf('codec')).toEqual(['ERR_UNKNOWN_CODEC']);
  });

  it('a Live Server Manifest that is not well-formed XML: 400', async () => {
    srv.define('lsm-xml.isml');
    const post = new RawPost(url('lsm-xml'));
    await post.write(headerWithLsm((s) => s.replace('</switch>', '')));
    await expectRefused(post, /Live Server Manifest is not well-formed XML/);
    expect(codeOf('lsm-xml')).toEqual(['ERR_BAD_HEADER']);
  });

  it('a Live Server Manifest that passes XML validation but not parsing (unclosed <?pi): 400, not 500', async () => {
    srv.define('lsm-pi.isml');
    const post = new RawPost(url('lsm-pi'));
    await post.write(headerWithLsm((s) => `${s}<?x`));
    await expectRefused(post, /Live Server Manifest is not well-formed XML/);
    expect(codeOf('lsm-pi')).toEqual(['ERR_BAD_HEADER']);
  });

  it('a fragment for a track the header does not describe: 400', async () => {
    srv.define('track-id.isml');
    const f = fixture();
    const frag = Buffer.from(f.fragments[0]!);
    frag.writeUInt32BE(9, frag.indexOf('tfhd') + 8);
    const post = new RawPost(url('track-id'));
    await post.write(Buffer.concat([f.header, frag]));
    await expectRefused(post, /track_ID 9, which the stream header does not describe/);
    expect(codeOf('track-id')).toEqual(['ERR_BAD_FRAGMENT']);
  });

  it('a reconnect whose header changes a known track: 400 ERR_HEADER_CHANGED; the point keeps the old description', async () => {
    srv.define('reconnect.isml');
    const f = fixture();
    // First POST ends cleanly without mfra: not EOS, the tracks wait for a reconnect.
    const first = await replay(url('reconnect', 'all'), Buffer.concat([f.header, ...fragmentsOfRound(0)]));
    expect(first.status).toBe(200);
    const original = parseManifest((await get(`${srv.base}/reconnect.isml/Manifest`)).text);
    const cpd = original.streams[0]!.codecPrivateData;

    const changed = headerWithLsm((s) => s.replace('000000016742C00CDA0A37E4', '000000016742C00DDA0A37E4'));
    const post = new RawPost(url('reconnect', 'all'));
    await post.write(Buffer.concat([changed, ...fragmentsOfRound(1).slice(0, 3)]));
    await expectRefused(post, /stream all describes track video\/video\/100000 differently than before/);
    expect(codeOf('reconnect')).toEqual(['ERR_HEADER_CHANGED']);

    const after = parseManifest((await get(`${srv.base}/reconnect.isml/Manifest`)).text);
    expect(after.streams[0]!.codecPrivateData).toEqual(cpd);
    expect(after.streams[0]!.codecPrivateData[1]).toMatch(/^000000016742C00C/);

    // The same header again is a proper reconnect and is accepted.
    const again = await replay(url('reconnect', 'all'), Buffer.concat([f.header, ...fragmentsOfRound(1)]));
    expect(again.status).toBe(200);
  });

  it('bad encoders on the good point itself are refused without disturbing the good stream', async () => {
    const garbage = new RawPost(url('good', 'intruder'));
    await garbage.write(Buffer.from('\0\0\0\x10junkjunkjunkjunk'));
    await expectRefused(garbage, /must start with ftyp, got 'junk'/);

    const changed = new RawPost(url('good', 'intruder2'));
    await changed.write(headerWithLsm((s) => s.replace('value="118856E500"', 'value="1190"')));
    await expectRefused(changed, /describes track audio\/audio\/32000 differently than before/);
    expect(codeOf('good')).toEqual(['ERR_BAD_HEADER', 'ERR_HEADER_CHANGED']);
    expect(good.post.isClosed).toBe(false);
  });

  it('points whose header was refused stay Idle (404) and hold no connection', async () => {
    for (const p of ['garbage-text', 'garbage-bin', 'moof-first', 'codec', 'lsm-xml', 'lsm-pi']) {
      const r = await get(`${srv.base}/${p}.isml/Manifest`);
      expect([p, r.status]).toEqual([p, 404]);
      expect(r.text).toMatch(/Idle|Starting/); // a client request starts a point with startOnFirstRequest
    }
    for (const point of srv.handler.origin.points()) {
      if (point.path === 'good.isml') continue;
      for (const s of point.streams) expect([point.path, s.id, s.connections]).toEqual([point.path, s.id, 0]);
    }
  });

  it('afterwards the good stream is still growing and its fragments are served', async () => {
    expect(good.post.isClosed).toBe(false);
    expect(good.post.responded).toBe(false);
    const now = videoCount(await goodManifest());
    expect(now).toBeGreaterThan(videoBefore);
    const later = await until(async () => {
      const m = await goodManifest();
      return videoCount(m) > now ? m : undefined;
    });
    for (const s of later.streams) {
      const last = s.fragments[s.fragments.length - 1]!;
      for (const bitrate of s.bitrates) {
        const r = await get(`${srv.base}/good.isml/QualityLevels(${bitrate})/Fragments(${s.name}=${last.t})`);
        expect([s.name, bitrate, r.status]).toEqual([s.name, bitrate, 200]);
        expect(r.headers['content-type']).toBe(s.type === 'video' ? 'video/mp4' : 'audio/mp4');
        expect(r.body.subarray(4, 8).toString('latin1')).toBe('moof');
      }
    }
    // The good point never saw a rejection of its own stream and has exactly one live connection.
    const point = srv.handler.origin.points().find((p) => p.path === 'good.isml')!;
    expect(point.state).toBe('Started');
    expect(point.streams.find((s) => s.id === 'good')).toMatchObject({ connections: 1, state: 'connected' });
  });

  it('memory did not balloon and the good stream ends cleanly', async () => {
    global.gc?.();
    const after = process.memoryUsage();
    // Everything above sent well under 2 MB of bad input; the good stream stores a few MB.
    expect(after.arrayBuffers - memoryBefore.arrayBuffers).toBeLessThan(64 * 2 ** 20);
    expect(after.rss - memoryBefore.rss).toBeLessThan(256 * 2 ** 20);
    const end = await within(good.stop(), 5000, 'good stream end');
    expect(end.status).toBe(200);
    const point = srv.handler.origin.points().find((p) => p.path === 'good.isml')!;
    expect(point.state).toBe('Stopped');
  });
});

describe('huge declared boxes with the default maxBoxSize', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer();
    srv.define('huge.isml');
  });
  afterAll(() => srv.close());

  it('a 1 GB box (32-bit size or largesize) is refused at once, without allocating it', async () => {
    const f = fixture();
    global.gc?.();
    const before = process.memoryUsage().arrayBuffers;
    const cases: Array<[string, Buffer]> = [
      ['32-bit', box('mdat', Buffer.alloc(0), 2 ** 30)],
      ['largesize', Buffer.concat([box('mdat', Buffer.alloc(8), 1).subarray(0, 8), Buffer.from('0000000040000000', 'hex')])],
      ['largesize 2^63', Buffer.concat([box('moov', Buffer.alloc(8), 1).subarray(0, 8), Buffer.from('8000000000000000', 'hex')])],
    ];
    for (const [name, head] of cases) {
      const post = new RawPost(`${srv.base}/huge.isml/Streams(${name.replace(/\W/g, '')})`);
      const started = Date.now();
      // As the first box, and after a valid header.
      await post.write(name === '32-bit' ? head : Buffer.concat([f.header, head]));
      await expectRefused(post, /exceeds maxBoxSize 33554432/);
      expect([name, Date.now() - started < 2000]).toEqual([name, true]);
    }
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 2 ** 20);
  });
});

describe('an encoder that stalls', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ ingestIdleTimeout: 300 });
    srv.define('stall.isml');
  });
  afterAll(() => srv.close());

  it('is answered 408 and disconnected after ingestIdleTimeout; its tracks wait for a reconnect', async () => {
    const f = fixture();
    const post = new RawPost(`${srv.base}/stall.isml/Streams(all)`);
    const started = Date.now();
    await post.write(Buffer.concat([f.header, ...f.fragments.slice(0, 9)]));
    await sleep(100);
    await post.write(f.fragments[9]!); // data re-arms the timer
    const reply = await expectRefused(post, /no data from the encoder within the idle timeout/, 408);
    expect(reply.status).toBe(408);
    expect(Date.now() - started).toBeGreaterThanOrEqual(380);
    const point = srv.handler.origin.points()[0]!;
    expect(point.state).toBe('Started');
    expect(point.streams).toEqual([{ id: 'all', connections: 0, state: 'disconnected', remoteAddress: '127.0.0.1' }]);
    // The encoder comes back with the same header and continues.
    const again = await replay(`${srv.base}/stall.isml/Streams(all)`, Buffer.concat([f.header, ...f.fragments.slice(9), f.mfra]));
    expect(again.status).toBe(200);
    const m = parseManifest((await get(`${srv.base}/stall.isml/Manifest`)).text);
    expect(m.streams[0]!.fragments).toHaveLength(4);
  });
});

/**
 * An encoder that never reads while it pushes (like ffmpeg): a raw socket that sends a chunked POST
 * and keeps writing until the server closes the connection, collecting whatever the server sent.
 */
class DeafEncoder {
  readonly socket: net.Socket;
  readonly received: Buffer[] = [];
  readonly errors: string[] = [];
  sent = 0;
  /** ms since the start when the first response byte arrived, and when the socket closed. */
  answeredAt?: number;
  closedAt?: number;
  readonly closed: Promise<void>;
  readonly #started = Date.now();

  constructor(url: string, first: Buffer) {
    const u = new URL(url);
    this.socket = net.connect(Number(u.port), u.hostname);
    this.socket.on('data', (d: Buffer) => {
      this.answeredAt ??= Date.now() - this.#started;
      this.received.push(d);
    });
    this.socket.on('error', (err: NodeJS.ErrnoException) => this.errors.push(err.code ?? err.message));
    this.closed = new Promise((ok) => this.socket.once('close', () => {
      this.closedAt = Date.now() - this.#started;
      ok();
    }));
    this.socket.write(`POST ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\nUser-Agent: Lavf/test\r\nTransfer-Encoding: chunked\r\n\r\n`);
    this.#chunk(first);
  }

  get text(): string {
    return Buffer.concat(this.received).toString('latin1');
  }

  #chunk(data: Buffer): boolean {
    this.sent += data.length;
    return this.socket.write(Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, Buffer.from('\r\n')]));
  }

  /** Writes `chunk` as fast as the socket takes it (pausing `pace` ms between writes) until the socket closes. */
  async stream(chunk: Buffer, pace = 0): Promise<void> {
    while (!this.socket.destroyed && !this.socket.writableEnded) {
      if (!this.#chunk(chunk)) {
        await new Promise<void>((ok) => {
          const done = (): void => {
            this.socket.off('drain', done).off('close', done);
            ok();
          };
          this.socket.on('drain', done).on('close', done);
        });
      }
      await (pace > 0 ? sleep(pace) : new Promise<void>((ok) => setImmediate(ok)));
    }
  }
}

describe('a refused encoder that keeps sending', () => {
  let srv: TestServer;
  const url = (stream: string): string => `${srv.base}/refused.isml/Streams(${stream})`;
  // A plausible box size with a type that is not ftyp: refused on the first 8 bytes.
  const junk = Buffer.concat([Buffer.from([0, 0, 0, 16]), Buffer.from('junk'), Buffer.alloc(8)]);
  beforeAll(async () => {
    // Fifty encoders at once on one point: above the default connection limits, which answer 503.
    srv = await startServer({ maxBoxSize: 64 * 1024, maxIngestConnections: 256, maxIngestConnectionsPerPoint: 256 });
    srv.define('refused.isml');
  });
  afterAll(() => srv.close());

  it('50 encoders that write on after the refusal without reading (like ffmpeg) all get the 400 and its reason', async () => {
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    const encoders = Array.from({ length: 50 }, (_, i) => new DeafEncoder(url(`deaf${i}`), junk));
    const pushing = encoders.map((e) => e.stream(chunk, 2));
    await Promise.all(encoders.map((e, i) => within(e.closed, 6000, `close ${i}`)));
    await Promise.all(pushing);
    const answered = encoders.filter((e) => /^HTTP\/1\.1 400 Bad Request\r\n[^]*\r\n\r\n.*must start with ftyp, got 'junk'\n$/.test(e.text));
    const lost = encoders.filter((e) => !answered.includes(e)).map((e) => `received ${JSON.stringify(e.text.slice(0, 40))}, errors ${e.errors.join(',')}`);
    expect({ answered: answered.length, lost }).toEqual({ answered: 50, lost: [] });
    for (const e of answered) expect(e.text).toMatch(/\r\nconnection: close\r\n/i);
  });

  it('50 Node HTTP clients that write on after the refusal all read the 400 and its reason', async () => {
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const post = new RawPost(url(`s${i}`));
        await post.write(junk);
        const pushing = (async () => {
          while (!post.isClosed && post.sent < 64 * 2 ** 20) await Promise.race([post.write(chunk), post.closed]);
        })();
        const outcome = await within(post.response, 10_000, `response ${i}`).then(
          (r) => `${r.status} ${r.text.trim()}`,
          (err: Error) => err.message,
        );
        await within(post.closed, 5000, `close ${i}`);
        await pushing;
        return outcome;
      }),
    );
    const refused = outcomes.filter((o) => /^400 .*must start with ftyp, got 'junk'/.test(o));
    expect({ refused: refused.length, others: outcomes.filter((o) => !refused.includes(o)) }).toEqual({ refused: 50, others: [] });
  });

  it('an encoder that streams as fast as it can for ever gets the answer and is cut off within the bound', async () => {
    const chunk = Buffer.alloc(64 * 1024, 0x62);
    const encoders = Array.from({ length: 4 }, (_, i) => new DeafEncoder(url(`flood${i}`), junk));
    const pushing = encoders.map((e) => e.stream(chunk));
    await Promise.all(encoders.map((e) => within(e.closed, REFUSAL_DRAIN_MS + 3000, 'server close')));
    await Promise.all(pushing);
    for (const e of encoders) {
      expect(e.text).toMatch(/^HTTP\/1\.1 400 Bad Request\r\n[^]*must start with ftyp, got 'junk'\n$/);
      // Read (and discarded) for the bounded drain, then closed however much is still coming.
      expect(e.sent).toBeGreaterThan(1024 * 1024);
      expect(e.closedAt! - e.answeredAt!).toBeLessThan(REFUSAL_DRAIN_MS + 1000);
    }
  });

  it('an encoder that ends its body after the refusal is closed at once, gracefully', async () => {
    const post = new RawPost(url('ends'));
    await post.write(junk);
    await post.write(Buffer.alloc(32 * 1024));
    const started = Date.now();
    const reply = await within(post.end(), 5000, 'response');
    expect(reply.status).toBe(400);
    await within(post.closed, 1000, 'socket close');
    expect(Date.now() - started).toBeLessThan(1000);
    expect(post.errors).toEqual([]);
  });
});

describe('a real ffmpeg encoder', () => {
  const ffmpeg = ffmpegPath();
  withTool('ffmpeg', ffmpeg)(
    'whose header changed is answered 400 and cut off, and exits, while another ffmpeg push goes on',
    async () => {
      const srv = await startServer();
      try {
        srv.define('live.isml', { lookaheadChunks: '0' });
        srv.define('changed.isml');
        const rejected: string[] = [];
        srv.handler.origin.on('inputRejected', (e) => rejected.push(`${e.point} ${e.code}`));
        // The point learns video/100000 and video/50000 as 160x90 and 96x54 from the fixture (no EOS).
        const f = fixture();
        const first = await replay(`${srv.base}/changed.isml/Streams(ch1)`, Buffer.concat([f.header, ...f.fragments]));
        expect(first.status).toBe(200);

        const goodPush = push({ ffmpeg: ffmpeg!, url: `${srv.base}/live.isml`, seconds: 8, bitrates: [200] });
        // Same track names and bitrates, other sizes and codec data: a changed header.
        const badPush = push({ ffmpeg: ffmpeg!, url: `${srv.base}/changed.isml`, seconds: 30, bitrates: [100, 50] });
        const started = Date.now();
        const bad = await within(badPush.done, 15_000, 'refused ffmpeg exit');
        // ffmpeg ignores the status but notices the closed connection at its next write.
        expect(Date.now() - started).toBeLessThan(15_000);
        expect(bad.code).not.toBe(0);
        expect(rejected).toEqual(['changed.isml ERR_HEADER_CHANGED']);

        const m = await until(async () => {
          const r = await get(`${srv.base}/live.isml/Manifest`);
          if (r.status !== 200) return undefined;
          const parsed = parseManifest(r.text);
          return (parsed.streams.find((s) => s.type === 'video')?.fragments.length ?? 0) >= 2 ? parsed : undefined;
        }, 15_000, 200);
        const video = m.streams.find((s) => s.type === 'video')!;
        const r = await get(`${srv.base}/live.isml/QualityLevels(${video.bitrates[0]})/Fragments(video=${video.fragments[1]!.t})`);
        expect(r.status).toBe(200);
        const done = await goodPush.done;
        expect(done.code).toBe(0);
      } finally {
        await srv.close();
      }
    },
    60_000,
  );
});
