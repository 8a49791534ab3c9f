/**
 * The `live-smooth-encoder` command line, run in-process: usage, argument errors (status 2), input
 * errors naming the file (status 1), a finite push with its summary, and Ctrl-C sending end of stream.
 */
import { EventEmitter } from 'node:events';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { main } from '../../../lib/encoder/cli';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import { ismv } from '../../helpers/ismv';

function io(tty = false): { out: string[]; err: string[]; io: Parameters<typeof main>[1] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => err.push(t), isTTY: tty } } };
}

let dir: string;
let media: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'live-smooth-cli-'));
  media = path.join(dir, 'clip.ismv');
  writeFileSync(media, ismv({ fragments: 2 }));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A server that answers each POST 200 once its body ended; `eos()` counts the end-of-stream mfras. */
async function sink(): Promise<{ url: string; eos: () => number; close(): Promise<void> }> {
  let eos = 0;
  const server = http.createServer((req, res) => {
    const parser = new SmoothIngestParser({ maxBoxSize: 1 << 24 });
    const count = (events: ReturnType<SmoothIngestParser['push']>): void => {
      eos += events.filter((e) => e.type === 'end').length;
    };
    req.on('data', (c: Buffer) => count(parser.push(c)));
    req.on('end', () => {
      count(parser.end());
      res.end();
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/live/a.isml`,
    eos: () => eos,
    close: () => new Promise((ok) => server.close(() => ok())),
  };
}

describe('live-smooth-encoder', () => {
  it('prints its usage with --help', async () => {
    const o = io();
    await expect(main(['--help'], o.io)).resolves.toBe(0);
    expect(o.out.join('')).toMatch(/^Usage: live-smooth-encoder \[options\] <publishing-point-url> <file>\.\.\./);
    expect(o.out.join('')).toContain('--per-track');
  });

  it.each([
    [[], /a publishing point URL and at least one input file are required/],
    [['http://h/a.isml'], /at least one input file/],
    [['--loops', 'x', 'http://h/a.isml', 'f.ismv'], /--loops must be a whole number/],
    [['--start', 'soon', 'http://h/a.isml', 'f.ismv'], /--start must be now, zero or a number/],
    [['--header', 'nocolon', 'http://h/a.isml', 'f.ismv'], /--header must look like/],
    [['--bogus', 'http://h/a.isml', 'f.ismv'], /Unknown option '--bogus'/],
    [['--ad-markers', '60', 'http://h/a.isml', 'f.ismv'], /--ad-markers must be <every>:<duration>/],
  ])('refuses %j with status 2', async (argv, message) => {
    const o = io();
    await expect(main(argv, o.io)).resolves.toBe(2);
    expect(o.err.join('')).toMatch(message);
    expect(o.err.join('')).toContain('Usage:');
  });

  it('names the bad input file and exits with 1', async () => {
    const bad = path.join(dir, 'broken.ismv');
    writeFileSync(bad, 'not a movie');
    const o = io();
    await expect(main(['http://127.0.0.1:1/live/a.isml', bad], o.io)).resolves.toBe(1);
    expect(o.err.join('')).toBe(`live-smooth-encoder: ${bad}: not an MP4/ISMV file (it does not start with an 'ftyp' box)\n`);
  });

  it('pushes a finite number of loops and says what it sent', async () => {
    const server = await sink();
    const o = io();
    await expect(main(['--loops', '2', '--speed', '50', '--start', 'now', server.url, media], o.io)).resolves.toBe(0);
    await server.close();
    const text = o.err.join('');
    expect(text).toMatch(/^pushing video \d+k, audio 64k \(loop 4\.0 s, 1 POST\) to http:\/\/127\.0\.0\.1:\d+\/live\/a\.isml\n/);
    expect(text).toContain('connected: Streams(live-smooth)\n');
    expect(text).toMatch(/done: 00:00:08 loop 2 \| fragments 4 4 \| \d+ kbit\/s \| reconnects 0\n$/);
    expect(server.eos()).toBe(1);
  });

  it('adds captions and ad markers in a sparse POST that ends with its own end of stream', async () => {
    const server = await sink();
    const o = io();
    const argv = ['--loops', '2', '--speed', '50', '--captions-language', 'de', '--ad-markers', '3:1.5', server.url, media];
    await expect(main(argv, o.io)).resolves.toBe(0);
    await server.close();
    const text = o.err.join('');
    expect(text).toMatch(/^pushing video \d+k, audio 64k, captions, ad markers every 3 s \(loop 4\.0 s, 1 POST \+ 1 sparse POST\)/);
    expect(text).toContain('connected: Streams(live-smooth-sparse)\n');
    // Fragments at 0, 2, 4, 6 s: 4 captions; a marker at 4 s (the first start ≥ 3 s), the next not before 7 s.
    expect(text).toMatch(/done: 00:00:08 loop 2 \| fragments 4 4 4 1 \|/);
    expect(server.eos()).toBe(2);
  });

  it('refuses a bad sparse option with status 1 and the reason', async () => {
    const o = io();
    await expect(main(['--ad-markers', '10:20', 'http://127.0.0.1:1/live/a.isml', media], o.io)).resolves.toBe(1);
    expect(o.err.join('')).toMatch(/^live-smooth-encoder: option adMarkers\.duration must be/);
  });

  it('stops on SIGINT with end of stream, drawing a status line on a TTY', async () => {
    const server = await sink();
    const o = io(true);
    const signals = new EventEmitter();
    const run = main(['--speed', '4', server.url, media], o.io, signals as unknown as NodeJS.Process);
    await new Promise((ok) => setTimeout(ok, 1500));
    signals.emit('SIGINT');
    await expect(run).resolves.toBe(0);
    await server.close();
    const text = o.err.join('');
    expect(text).toMatch(/\r\x1b\[K00:00:0\d loop 1 \| fragments \d+ \d+ \|/);
    expect(text).toContain('stopping: sending end of stream');
    expect(server.eos()).toBe(1);
    expect(signals.listenerCount('SIGINT')).toBe(0);
  });
});
