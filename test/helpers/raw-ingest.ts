/**
 * Encoder-side tools for integration tests that need byte-level control of an ingest body: the
 * captured ffmpeg push split into boxes, builders for altered copies of it, a raw chunked POST that
 * stays open like an encoder's, and a raw HTTP client that sends the request target unnormalised
 * (fetch/URL would resolve `%2e%2e` and turn `\` into `/`).
 */
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { BoxReader } from '../../lib/mp4/reader';

export const FIXTURE_PATH = path.join(__dirname, '..', 'fixtures', 'ffmpeg-push-all.bin');

const UUID_TFXD = Buffer.from('6d1d9b0542d544e680e2141daff757b2', 'hex');

/** The captured ffmpeg push (two H.264 bitrates + AAC, 1 s fragments, ended by an empty mfra), in parts. */
export interface Fixture {
  /** The whole body. */
  all: Buffer;
  /** Every top-level box, in order. */
  boxes: Array<{ type: string; data: Buffer }>;
  ftyp: Buffer;
  /** The Live Server Manifest uuid box. */
  lsm: Buffer;
  moov: Buffer;
  /** ftyp + LSM + moov. */
  header: Buffer;
  /** One `moof`+`mdat` pair per element, in stream order (video 100k, video 50k, audio, …). */
  fragments: Buffer[];
  /** The 8-byte empty mfra (end of stream). */
  mfra: Buffer;
}

let cached: Fixture | undefined;

export function fixture(): Fixture {
  if (cached) return cached;
  const all = readFileSync(FIXTURE_PATH);
  const reader = new BoxReader({ maxBoxSize: all.length });
  const boxes = [...reader.push(all), ...reader.end()].map((b) => ({ type: b.type, data: Buffer.from(b.data) }));
  const of = (type: string): Buffer => {
    const b = boxes.find((x) => x.type === type);
    if (!b) throw new Error(`fixture has no ${type}`);
    return b.data;
  };
  const fragments: Buffer[] = [];
  for (let i = 0; i < boxes.length; i++) {
    if (boxes[i]!.type === 'moof') fragments.push(Buffer.concat([boxes[i]!.data, boxes[i + 1]!.data]));
  }
  const ftyp = of('ftyp');
  const lsm = of('uuid');
  const moov = of('moov');
  cached = { all, boxes, ftyp, lsm, moov, header: Buffer.concat([ftyp, lsm, moov]), fragments, mfra: of('mfra') };
  return cached;
}

/** The SMIL text of a Live Server Manifest box. */
export function lsmText(lsm: Buffer): string {
  return lsm.subarray(28).toString('utf8');
}

/** A Live Server Manifest box with `text` as its SMIL, keeping the uuid, version and flags of `template`. */
export function lsmBox(text: string, template: Buffer = fixture().lsm): Buffer {
  const xml = Buffer.from(text, 'utf8');
  const box = Buffer.concat([template.subarray(0, 28), xml]);
  box.writeUInt32BE(box.length, 0);
  return box;
}

/** The fixture header with its SMIL edited by `edit`. */
export function headerWithLsm(edit: (smil: string) => string): Buffer {
  const f = fixture();
  const text = lsmText(f.lsm);
  const edited = edit(text);
  if (edited === text) throw new Error('headerWithLsm: the edit changed nothing');
  return Buffer.concat([f.ftyp, lsmBox(edited), f.moov]);
}

/** A box of `type` with `payload`, or with a forged size field when `size` is given. */
export function box(type: string, payload: Buffer = Buffer.alloc(0), size?: number): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(size ?? 8 + payload.length, 0);
  head.write(type, 4, 'latin1');
  return Buffer.concat([head, payload]);
}

/** tfxd time and duration of a `moof`(+`mdat`) buffer. */
export function tfxdOf(fragment: Buffer): { time: bigint; duration: bigint } {
  const at = fragment.indexOf(UUID_TFXD);
  if (at < 0) throw new Error('no tfxd');
  const version = fragment[at + 16]!;
  if (version !== 1) throw new Error('tfxd v0 not handled');
  return { time: fragment.readBigInt64BE(at + 20), duration: fragment.readBigUInt64BE(at + 28) };
}

/** A copy of a `moof`+`mdat` with its tfxd time/duration replaced (ffmpeg writes tfxd v1). */
export function retime(fragment: Buffer, time: bigint, duration?: bigint): Buffer {
  const out = Buffer.from(fragment);
  const at = out.indexOf(UUID_TFXD);
  if (at < 0 || out[at + 16] !== 1) throw new Error('no tfxd v1 in fragment');
  out.writeBigInt64BE(time, at + 20);
  if (duration !== undefined) out.writeBigUInt64BE(duration, at + 28);
  return out;
}

/** The fixture's fragments shifted by `round` × 4 s (the fixture's length): an endless live timeline. */
export function fragmentsOfRound(round: number): Buffer[] {
  const shift = BigInt(round) * 40_000_000n;
  return fixture().fragments.map((f) => retime(f, tfxdOf(f).time + shift));
}

export const sleep = (ms: number): Promise<void> => new Promise((ok) => setTimeout(ok, ms));

/** A complete HTTP response. */
export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  text: string;
}

/**
 * One chunked POST kept open like an encoder's: bytes go out as written, the body ends only on
 * {@link RawPost.end}. Tracks the response and the socket's close independently of the body.
 */
export class RawPost {
  readonly req: http.ClientRequest;
  /** Resolves with the full response; rejects if the socket closes before a response arrived. */
  readonly response: Promise<Reply>;
  /** Resolves when the TCP socket closed (by either side). */
  readonly closed: Promise<void>;
  /** Set once a response started. */
  responded = false;
  isClosed = false;
  /** Errors seen on the request (EPIPE/ECONNRESET after the server closed, …). */
  readonly errors: Error[] = [];
  /** Bytes handed to the socket so far. */
  sent = 0;

  constructor(url: string, headers: http.OutgoingHttpHeaders = {}) {
    const u = new URL(url);
    this.req = http.request({
      host: u.hostname,
      port: u.port,
      method: 'POST',
      path: u.pathname + u.search,
      agent: false,
      headers: { 'Transfer-Encoding': 'chunked', 'User-Agent': 'Lavf/test', ...headers },
    });
    this.req.on('error', (err) => this.errors.push(err));
    this.closed = new Promise<void>((ok) => {
      this.req.on('socket', (s) => s.once('close', () => {
        this.isClosed = true;
        ok();
      }));
    });
    this.response = new Promise<Reply>((ok, fail) => {
      this.req.on('response', (res) => {
        this.responded = true;
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        const done = (): void => {
          const body = Buffer.concat(parts);
          ok({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
        };
        res.on('end', done);
        res.on('aborted', done);
        res.on('error', done);
      });
      void this.closed.then(() => setImmediate(() => {
        if (!this.responded) fail(new Error(`socket closed without a response (${this.errors.map((e) => e.message).join('; ')})`));
      }));
    });
    // The promise may legitimately be ignored by a test that only watches `closed`.
    this.response.catch(() => undefined);
    this.req.flushHeaders();
  }

  /** Writes one chunk; resolves once it was handed to the socket (or the request failed). */
  write(data: Buffer): Promise<void> {
    if (this.req.destroyed || this.isClosed) return Promise.resolve();
    this.sent += data.length;
    return new Promise((ok) => this.req.write(data, () => ok()));
  }

  /** Writes `data` in `chunkSize` pieces, waiting `delayMs` between them. */
  async writeAll(data: Buffer, chunkSize = 32 * 1024, delayMs = 0): Promise<void> {
    for (let i = 0; i < data.length; i += chunkSize) {
      await this.write(data.subarray(i, i + chunkSize));
      if (delayMs > 0) await sleep(delayMs);
    }
  }

  /** Ends the body (final zero-length chunk). */
  end(): Promise<Reply> {
    if (!this.req.destroyed && !this.isClosed) this.req.end();
    return this.response;
  }

  /** Drops the connection without ending the body (like a killed encoder). */
  destroy(): void {
    this.req.destroy();
  }
}

/** POSTs `body` chunked (32 KiB chunks, like ffmpeg) and ends it; resolves with the response. */
export async function replay(url: string, body: Buffer, headers: http.OutgoingHttpHeaders = {}): Promise<Reply> {
  const post = new RawPost(url, headers);
  await post.writeAll(body);
  return post.end();
}

/**
 * One request with the request target sent byte for byte (no URL normalisation), on its own
 * connection. `base` is `http://host:port`.
 */
export function request(
  base: string,
  target: string,
  options: { method?: string; headers?: http.OutgoingHttpHeaders; body?: Buffer | string } = {},
): Promise<Reply> {
  const u = new URL(base);
  return new Promise((ok, fail) => {
    const req = http.request(
      { host: u.hostname, port: u.port, method: options.method ?? 'GET', path: target, agent: false, headers: options.headers },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => {
          const body = Buffer.concat(parts);
          ok({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString('utf8') });
        });
        res.on('error', fail);
      },
    );
    req.on('error', fail);
    req.end(options.body);
  });
}

/** `http://host:port` of a base URL such as `http://127.0.0.1:1234/live`. */
export function origin(base: string): string {
  return new URL(base).origin;
}

/** GET `url` (a full URL) without normalising its path. */
export function get(url: string, headers?: http.OutgoingHttpHeaders, method = 'GET'): Promise<Reply> {
  const u = new URL(url);
  return request(u.origin, url.slice(u.origin.length), { method, headers });
}

/** One StreamIndex of a client manifest, with its timeline expanded. */
export interface ManifestStream {
  type: string;
  name: string;
  url: string;
  bitrates: number[];
  codecPrivateData: string[];
  timescale: number;
  /** Fragment start times and durations, `r` runs expanded. */
  fragments: Array<{ t: bigint; d: bigint }>;
}

const manifestXml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  isArray: (name) => ['StreamIndex', 'QualityLevel', 'c'].includes(name),
});

/** Parses a SmoothStreamingMedia document into its streams. */
export function parseManifest(text: string): { root: Record<string, string>; streams: ManifestStream[] } {
  const doc = manifestXml.parse(text) as { SmoothStreamingMedia?: Record<string, unknown> };
  const root = doc.SmoothStreamingMedia;
  if (!root) throw new Error(`not a SmoothStreamingMedia document: ${text.slice(0, 200)}`);
  const streams = ((root.StreamIndex as Array<Record<string, unknown>> | undefined) ?? []).map((si) => {
    const levels = (si.QualityLevel as Array<Record<string, string>> | undefined) ?? [];
    const fragments: Array<{ t: bigint; d: bigint }> = [];
    let next = 0n;
    for (const c of (si.c as Array<Record<string, string>> | undefined) ?? []) {
      let t = c.t !== undefined ? BigInt(c.t) : next;
      const d = BigInt(c.d ?? '0');
      const r = Number(c.r ?? '1');
      for (let i = 0; i < r; i++) {
        fragments.push({ t, d });
        t += d;
      }
      next = t;
    }
    return {
      type: String(si.Type),
      name: String(si.Name),
      url: String(si.Url),
      bitrates: levels.map((q) => Number(q.Bitrate)),
      codecPrivateData: levels.map((q) => q.CodecPrivateData ?? ''),
      timescale: Number(si.TimeScale ?? 10_000_000),
      fragments,
    };
  });
  const attrs: Record<string, string> = {};
  for (const [k, v] of Object.entries(root)) if (typeof v === 'string') attrs[k] = v;
  return { root: attrs, streams };
}

/** Waits until `check()` returns a truthy value, polling every `every` ms. */
export async function until<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 10_000, every = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(every);
  }
}
