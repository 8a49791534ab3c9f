#!/usr/bin/env node
/**
 * `live-smooth-encoder`: the simulated encoder's command line. Run with `--help` for the usage.
 * Exit status: 0 after the last loop or a clean stop (Ctrl-C), 1 when the input or the server failed,
 * 2 for a usage error.
 */
import { parseArgs } from 'node:util';
import { isSmoothError } from '../errors';
import { EncoderError } from './errors';
import { EncoderOptions, SimulatedEncoder, formatStatus, shortBitrate } from './push';

const USAGE = `Usage: live-smooth-encoder [options] <publishing-point-url> <file>...

Pushes .ismv/.isma files (ffmpeg -f ismv, IIS) or .ism presentations to a Live Smooth Streaming
publishing point in real time, as a live encoder would: POST <url>/Streams(<id>) with ftyp, Live
Server Manifest box, moov, then moof+mdat per fragment; loops with increasing timestamps; reconnects
and resends the last two fragments per track; ends with an empty mfra on Ctrl-C.

  <publishing-point-url>   e.g. http://127.0.0.1:3000/live/ch1.isml

Options:
  -l, --loops <n>          play the content n times (default 0: forever)
  -s, --start <when>       first timestamp: zero (default), now (UTC in 100-ns units), or a number
  -p, --per-track          one POST per track instead of one for all tracks
  -i, --stream-id <id>     id in Streams(<id>) (default live-smooth; per track: <id>-<name>-<bitrate>)
  -t, --title <text>       title meta of the Live Server Manifest
      --speed <x>          pace at x times real time (default 1)
  -b, --backlog <s>        send the first s seconds at once, then real time (default 0)
  -c, --captions           add a TTML caption track (one caption per video fragment, naming its time)
      --captions-language <lang>  language of the captions (default en; implies --captions)
      --ad-markers <every>:<duration>
                           add SCTE-35 ad markers: a break of <duration> s every <every> s of media
      --max-reconnects <n> give up after n failed connection attempts in a row (default: never)
  -H, --header <h: v>      extra request header (repeatable)
      --token <t>          ingest token, sent as Authorization: Bearer <t>
  -k, --insecure           accept any TLS certificate (https)
  -q, --quiet              no status line, only errors
  -h, --help               this text
`;

/** Where the CLI writes; `stderr.isTTY` switches the live status line on. */
export interface CliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean };
}

/** A usage error: exit status 2. */
class UsageError extends Error {}

function parse(argv: string[]): { options: EncoderOptions; quiet: boolean } | 'help' {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        loops: { type: 'string', short: 'l' },
        start: { type: 'string', short: 's' },
        'per-track': { type: 'boolean', short: 'p' },
        'stream-id': { type: 'string', short: 'i' },
        title: { type: 'string', short: 't' },
        speed: { type: 'string' },
        backlog: { type: 'string', short: 'b' },
        captions: { type: 'boolean', short: 'c' },
        'captions-language': { type: 'string' },
        'ad-markers': { type: 'string' },
        'max-reconnects': { type: 'string' },
        header: { type: 'string', short: 'H', multiple: true },
        token: { type: 'string' },
        insecure: { type: 'boolean', short: 'k' },
        quiet: { type: 'boolean', short: 'q' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const v = parsed.values;
  if (v.help) return 'help';
  const [url, ...files] = parsed.positionals;
  if (!url || files.length === 0) throw new UsageError('a publishing point URL and at least one input file are required');
  const number = (name: string, text: string | undefined, integer: boolean): number | undefined => {
    if (text === undefined) return undefined;
    const n = Number(text);
    if (text.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
      throw new UsageError(`--${name} must be a ${integer ? 'whole ' : ''}number, got "${text}"`);
    }
    return n;
  };
  let start: EncoderOptions['start'];
  if (v.start === undefined || v.start === 'now' || v.start === 'zero') start = v.start;
  else if (/^\d{1,20}$/.test(v.start)) start = BigInt(v.start);
  else throw new UsageError(`--start must be now, zero or a number of 100-ns units, got "${v.start}"`);
  const headers: Record<string, string> = {};
  for (const h of v.header ?? []) {
    const colon = h.indexOf(':');
    if (colon < 1) throw new UsageError(`--header must look like "Name: value", got "${h}"`);
    headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
  }
  const maxAttempts = number('max-reconnects', v['max-reconnects'], true);
  let adMarkers: EncoderOptions['adMarkers'];
  if (v['ad-markers'] !== undefined) {
    const m = /^([\d.]+):([\d.]+)$/.exec(v['ad-markers']);
    if (!m) throw new UsageError(`--ad-markers must be <every>:<duration> in seconds, e.g. 60:30, got "${v['ad-markers']}"`);
    adMarkers = { every: number('ad-markers', m[1], false)!, duration: number('ad-markers', m[2], false)! };
  }
  const language = v['captions-language'];
  return {
    quiet: !!v.quiet,
    options: {
      url,
      files,
      loops: number('loops', v.loops, true),
      start,
      perTrack: !!v['per-track'],
      streamId: v['stream-id'],
      title: v.title,
      speed: number('speed', v.speed, false),
      backlog: number('backlog', v.backlog, false),
      reconnect: maxAttempts === undefined ? undefined : { maxAttempts },
      headers,
      token: v.token,
      requestOptions: v.insecure ? { rejectUnauthorized: false } : undefined,
      captions: language !== undefined ? { language } : !!v.captions,
      adMarkers,
    },
  };
}

/**
 * Runs the CLI.
 * @param argv - the arguments after the program name
 * @param signals - where SIGINT/SIGTERM come from (the process, by default)
 * @returns the exit status
 */
export async function main(
  argv: string[],
  io: CliIo = { stdout: process.stdout, stderr: process.stderr },
  signals: Pick<NodeJS.Process, 'on' | 'off'> = process,
): Promise<number> {
  let args;
  try {
    args = parse(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    io.stderr.write(`live-smooth-encoder: ${err.message}\n\n${USAGE}`);
    return 2;
  }
  if (args === 'help') {
    io.stdout.write(USAGE);
    return 0;
  }
  const { options, quiet } = args;
  let encoder: SimulatedEncoder;
  try {
    encoder = await SimulatedEncoder.open(options);
  } catch (err) {
    if (err instanceof EncoderError || isSmoothError(err)) {
      io.stderr.write(`live-smooth-encoder: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const tty = !!io.stderr.isTTY && !quiet;
  let statusShown = false;
  /** Prints a line above the status line (which is redrawn on the next tick). */
  const say = (line: string, always = false): void => {
    if (quiet && !always) return;
    io.stderr.write(`${statusShown ? '\r\x1b[K' : ''}${line}\n`);
    statusShown = false;
  };
  const sparse: string[] = [];
  if (options.captions) sparse.push('captions');
  if (options.adMarkers) sparse.push(`ad markers every ${options.adMarkers.every} s`);
  const tracks = [...encoder.source.tracks.map((t) => `${t.info.type} ${shortBitrate(t.info.bitrate)}`), ...sparse].join(', ');
  const posts = (options.perTrack ? `${encoder.source.tracks.length} POSTs` : '1 POST') + (sparse.length ? ' + 1 sparse POST' : '');
  say(`pushing ${tracks} (loop ${encoder.timeline.periodSeconds.toFixed(1)} s, ${posts}) to ${options.url}`);
  encoder.on('connected', ({ streamId, reconnect }) => {
    if (reconnect || !tty) say(`${reconnect ? 'reconnected' : 'connected'}: Streams(${streamId})`);
  });
  encoder.on('disconnected', ({ streamId, error, retryIn }) =>
    say(`Streams(${streamId}): ${error.message}${retryIn ? `; retrying in ${retryIn} ms` : '; reconnecting'}`),
  );
  encoder.on('sparseFailed', ({ streamId, error }) => say(`Streams(${streamId}): ${error.message}; going on without it`, true));
  const timer = tty
    ? setInterval(() => {
        io.stderr.write(`\r\x1b[K${formatStatus(encoder.status())}`);
        statusShown = true;
      }, 500)
    : undefined;
  let interrupts = 0;
  const onSignal = (): void => {
    if (++interrupts > 1) {
      say('stopping without end of stream');
      process.exit(130);
    }
    say('stopping: sending end of stream (Ctrl-C again to quit at once)');
    void encoder.stop();
  };
  signals.on('SIGINT', onSignal);
  signals.on('SIGTERM', onSignal);
  try {
    await encoder.start();
    say(`done: ${formatStatus(encoder.status())}`);
    return 0;
  } catch (err) {
    say(`live-smooth-encoder: ${(err as Error).message}`, true);
    return 1;
  } finally {
    if (timer) clearInterval(timer);
    signals.off('SIGINT', onSignal);
    signals.off('SIGTERM', onSignal);
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    },
  );
}
