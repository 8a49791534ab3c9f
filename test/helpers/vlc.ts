/**
 * VLC 3 (its `adaptive` demux, which plays Smooth) on a live manifest for a while, headless, with what it
 * played: video frames from the `stats` command of the old rc interface on stdin (asked once a second,
 * so a test sees when playback stalled), the seconds of audio the audio output wrote to a WAV file, and
 * every HTTP exchange VLC logged at `-vv`.
 *
 * VLC refuses to run as root: as root it runs as `nobody` through `setpriv`, with HOME and the WAV file
 * in a temporary folder that user can write. `timeout` stops it; with `--play-and-exit` an input that
 * ends or fails makes VLC exit by itself, so exit 124 means it was still playing.
 *
 * Linux only (`timeout`, `setpriv`, `/proc` for the CPU time).
 */
import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/**
 * One answer to the rc `stats` command: the input's counters since it opened.
 *
 * VLC 3.0 adds each decoded picture and audio block to `video decoded` and `audio decoded` twice (a
 * 6 s, 150-frame file reads 301 decoded, 150 displayed): count frames with `framesDisplayed`, which the
 * video output adds once per picture it shows, and audio with `buffersPlayed` or the WAV file.
 */
export interface VlcStats {
  /** Seconds since VLC was started. */
  at: number;
  /** `video decoded`: twice the pictures decoded. */
  videoDecoded: number;
  /** `frames displayed`: pictures the (dummy) video output showed. */
  framesDisplayed: number;
  /** `frames lost`: pictures dropped (late, or the output queue full). */
  framesLost: number;
  /** `audio decoded`: twice the audio blocks decoded. */
  audioDecoded: number;
  /** `buffers played`: audio blocks the audio output took (one AAC frame, 1024 samples, each). */
  buffersPlayed: number;
  buffersLost: number;
  /** KiB the demux read (the fragments' bytes). */
  demuxKiB: number;
}

/** One HTTP exchange from VLC's `-vv` log. */
export interface VlcHttp {
  /** Request target as sent, e.g. `/live/ch1.isml/QualityLevels(800000)/Fragments(video=0)`. */
  path: string;
  /** Response status; undefined when VLC logged none (the request failed, or was in flight at the end). */
  status?: number;
  /** Why it got no response, e.g. `connection failed` (VLC retries a reused connection the server closed). */
  failed?: string;
}

/** What one run did. */
export interface VlcRun {
  /** Exit status; 124 = still playing when `timeout` stopped it (`--play-and-exit` ends earlier). */
  code: number | null;
  /**
   * VLC played until `timeout` stopped it: exit 124, or killed after the time was up (VLC sometimes
   * ignores SIGTERM; `timeout -k` then kills its whole process group, itself included).
   */
  stoppedByTimeout: boolean;
  /** Video frames decoded and shown: `frames displayed` of the last stats answer (see {@link VlcStats}). */
  videoFrames: number;
  /** Seconds of PCM in the WAV file the audio output wrote: audio decoded and played. */
  audioSeconds: number;
  /** Every stats answer, once a second, in order: when playback progressed, and when it stopped. */
  stats: VlcStats[];
  /**
   * Seconds since start of the last stats answer in which `frames displayed` had grown (video played
   * until about then); undefined if no frame was shown.
   */
  lastVideoProgress: number | undefined;
  /** Every request VLC logged, in order, with the status it got. */
  http: VlcHttp[];
  /**
   * Statuses >= 400, and requests that failed and were not answered on a retry, as `status path` or
   * `failed (why) path`. A request still in flight when VLC stopped is not one.
   */
  httpErrors: string[];
  /** VLC logged that the input reached its end ("EOF reached"): a live stream never should. */
  eof: boolean;
  /** Those lines. */
  eofLines: string[];
  /**
   * VLC `error:` lines and libavcodec error lines, without the ones every headless start logs. A switch
   * to a bitrate of another picture size logs `[h264 @ …] decode_slice_header error` a few times while the
   * video output is rebuilt; frames go on.
   */
  errors: string[];
  /** CPU seconds (user + system) VLC used, sampled with the stats; undefined where /proc is missing. */
  cpuSeconds: number | undefined;
  /** The log without the rc interface's output and the configure line (for failure messages). */
  output: string;
  /** One line for a test's log: exit code, frames, audio, when video last progressed, HTTP, EOF, CPU. */
  summary: string;
}

/**
 * VLC's arguments, without the binary. Headless (`--vout=dummy`, audio to a WAV file), the old rc
 * interface on stdin for `stats`, `-vv` for the HTTP and adaptive logs.
 */
export function vlcArgs(manifestUrl: string, wavFile: string, rate = 1): string[] {
  return [
    '-I', 'oldrc', '--rc-fake-tty',
    '-vv',
    '--vout=dummy',
    '--aout=afile', `--audiofile-file=${wavFile}`,
    // Exit when the input ends or fails, so that the exit code tells it from a run `timeout` stopped.
    '--play-and-exit',
    // Software decoding (no VA-API probing), no tempo filter, no on-screen text, no D-Bus, no library scanning.
    '--avcodec-hw=none', '--no-audio-time-stretch',
    '--no-video-title-show', '--no-osd', '--no-spu',
    '--no-dbus', '--no-media-library', '--no-metadata-network-access',
    // Faster than real time (on demand): audio is resampled, so the WAV file holds 1/rate of the media.
    ...(rate === 1 ? [] : [`--rate=${rate}`]),
    manifestUrl,
  ];
}

/**
 * Lines every headless start logs (no X display for global hotkeys), and VLC raising its own buffering
 * when the machine is slow (seen at 4x on two busy cores): timing, not the stream.
 */
const NOISE = [
  /interface "globalhotkeys,none" initialization failed/,
  /main interface error: no suitable interface module/,
  /ES_OUT_SET_\(GROUP_\)PCR +is called too late \(pts_delay increased to \d+ ms\)/,
];

const STAT_FIELDS: Record<string, keyof Omit<VlcStats, 'at'>> = {
  'video decoded': 'videoDecoded',
  'frames displayed': 'framesDisplayed',
  'frames lost': 'framesLost',
  'audio decoded': 'audioDecoded',
  'buffers played': 'buffersPlayed',
  'buffers lost': 'buffersLost',
  'demux bytes read': 'demuxKiB',
};

/** Seconds of PCM in a WAV file: the bytes after the `data` chunk header over the `fmt ` byte rate. */
export function wavSeconds(file: string): number {
  if (!existsSync(file)) return 0;
  const wav = readFileSync(file);
  if (wav.length < 12 || wav.toString('latin1', 0, 4) !== 'RIFF' || wav.toString('latin1', 8, 12) !== 'WAVE') return 0;
  let byteRate = 0;
  let blockAlign = 1;
  for (let at = 12; at + 8 <= wav.length; ) {
    const id = wav.toString('latin1', at, at + 4);
    const size = wav.readUInt32LE(at + 4);
    if (id === 'fmt ' && at + 24 <= wav.length) {
      byteRate = wav.readUInt32LE(at + 16);
      blockAlign = wav.readUInt16LE(at + 20) || 1;
    }
    if (id === 'data') {
      // The rest of the file, not the header's size: VLC writes the sizes only when it closes the file,
      // and a killed VLC never does.
      const bytes = wav.length - (at + 8);
      return byteRate ? (bytes - (bytes % blockAlign)) / byteRate : 0;
    }
    at += 8 + size + (size & 1);
  }
  return 0;
}

function httpErrors(http: readonly VlcHttp[]): string[] {
  return http.flatMap((h, i) => {
    if (h.status !== undefined) return h.status >= 400 ? [`${h.status} ${h.path}`] : [];
    const retried = http.slice(i + 1).some((later) => later.path === h.path && later.status !== undefined && later.status < 400);
    return h.failed && !retried ? [`failed (${h.failed}) ${h.path}`] : [];
  });
}

function summarize(r: VlcRun): string {
  const progress = r.lastVideoProgress === undefined ? '' : ` (the last by ${r.lastVideoProgress.toFixed(0)} s)`;
  return (
    `vlc exit ${r.code}, ${r.videoFrames} video frames shown${progress}, ` +
    `${r.audioSeconds.toFixed(1)} s of audio played, ${r.http.length} requests` +
    `${r.httpErrors.length ? `, HTTP errors: ${r.httpErrors.join(', ')}` : ''}${r.eof ? ', EOF reached' : ''}` +
    `${r.errors.length ? `, ${r.errors.length} error lines` : ''}` +
    `${r.cpuSeconds === undefined ? '' : `, ${r.cpuSeconds.toFixed(1)} s CPU`}`
  );
}

let clockTicks: number | undefined;
/** The kernel's clock ticks per second, which /proc/<pid>/stat counts CPU time in. */
function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU seconds of a live process, or undefined. */
function cpuOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may hold spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** The first child of `pid` (VLC under `timeout`; `setpriv` execs it, so it keeps the pid). */
function childOf(pid: number): number | undefined {
  try {
    const first = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ')[0];
    return first ? Number(first) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads VLC's `-vv` log line by line: the HTTP exchanges, the error lines, "EOF reached", and the log
 * itself without the huge configure line.
 *
 * VLC's http client logs a request as "[obj] http … debug: outgoing request:" followed by bare lines
 * ("GET /… HTTP/1.1", headers), and the answer likewise ("incoming response:", then "HTTP/1.1 200 OK").
 * Requests wait per logging object, first in first out, for their answer or for a line of the same
 * object saying the request failed ("connection failed", an http/access error).
 */
export class VlcLog {
  readonly http: VlcHttp[] = [];
  readonly errors: string[] = [];
  readonly eofLines: string[] = [];
  output = '';
  private readonly waiting = new Map<string, VlcHttp[]>();
  private expect: { obj: string; what: 'request' | 'response' } | undefined;

  line(line: string): void {
    if (/ main libvlc debug: configured with /.test(line)) return;
    this.output += `${line}\n`;
    // "[obj] module object-type level: text"; the type may be several words, info messages have no level.
    const head = /^\[([0-9a-f]+)\] (\S+) .+?(?: (debug|warning|error))?: (.*)$/.exec(line);
    if (head) {
      const [, obj, module, level, text] = head as unknown as [string, string, string, string | undefined, string];
      this.expect = undefined;
      if (module === 'http' && level === 'debug' && text === 'outgoing request:') this.expect = { obj, what: 'request' };
      else if (module === 'http' && level === 'debug' && text === 'incoming response:') this.expect = { obj, what: 'response' };
      else if ((module === 'http' && text === 'connection failed') || ((module === 'http' || module === 'access') && level === 'error')) {
        const exchange = this.waiting.get(obj)?.shift();
        if (exchange) exchange.failed = text;
      }
      if (/EOF reached/.test(text)) this.eofLines.push(line);
      if (level === 'error' && !NOISE.some((re) => re.test(line))) this.errors.push(line);
      return;
    }
    // libavcodec's own log lines, e.g. "[h264 @ 0x55…] decode_slice_header error".
    if (/^\[\w+ @ 0x[0-9a-f]+\] .*error/i.test(line)) this.errors.push(line);
    const expect = this.expect;
    if (!expect) return;
    const request = expect.what === 'request' && /^[A-Z]+ (\S+) HTTP\/1\.[01]$/.exec(line);
    if (request) {
      const exchange: VlcHttp = { path: request[1]! };
      this.http.push(exchange);
      this.waiting.set(expect.obj, [...(this.waiting.get(expect.obj) ?? []), exchange]);
      this.expect = undefined;
      return;
    }
    const response = expect.what === 'response' && /^HTTP\/1\.[01] (\d{3})\b/.exec(line);
    if (response) {
      const exchange = this.waiting.get(expect.obj)?.shift();
      if (exchange) exchange.status = Number(response[1]);
      this.expect = undefined;
    }
  }
}

/**
 * Runs VLC on `manifestUrl` for `seconds` (under `timeout`), asking for its stats every second.
 * `children` tracks the process so a test's teardown can kill it; killing it (the `timeout` process) also
 * kills VLC, which `timeout` put in a process group of its own. `debug` prints VLC's log to stderr;
 * `rate` plays faster than real time (`--rate`; VLC 3 drops the audio above 4).
 */
export function runVlc(vlc: string, manifestUrl: string, seconds: number, children?: Set<ChildProcess>, debug = false, rate = 1): Promise<VlcRun> {
  const dir = mkdtempSync(path.join(tmpdir(), 'live-smooth-vlc-'));
  const wavFile = path.join(dir, 'out.wav');
  const asRoot = process.getuid?.() === 0;
  // VLC as `nobody` must write its HOME (config, cache) and the WAV file here.
  if (asRoot) chmodSync(dir, 0o777);
  const command = [
    'timeout', '-k', '2', String(seconds),
    ...(asRoot ? ['setpriv', '--reuid=nobody', '--regid=nogroup', '--clear-groups'] : []),
    vlc, ...vlcArgs(manifestUrl, wavFile, rate),
  ];
  const child = spawn(command[0]!, command.slice(1), {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, HOME: dir, XDG_CONFIG_HOME: path.join(dir, 'config'), XDG_CACHE_HOME: path.join(dir, 'cache'), XDG_DATA_HOME: path.join(dir, 'data') },
  });
  children?.add(child);
  const started = Date.now();
  const run: VlcRun = {
    code: null, stoppedByTimeout: false, videoFrames: 0, audioSeconds: 0, stats: [],
    lastVideoProgress: undefined, http: [], httpErrors: [], eof: false, eofLines: [], errors: [], cpuSeconds: undefined,
    output: '', summary: '',
  };

  const vlcLog = new VlcLog();
  const onLog = (line: string): void => {
    if (debug) process.stderr.write(`[vlc] ${line}\n`);
    vlcLog.line(line);
  };

  // stdout: the rc interface. A stats answer is a block of `| name : value` lines between two markers.
  let block: VlcStats | undefined;
  const onRc = (line: string): void => {
    if (/begin of statistical info/.test(line)) {
      block = { at: (Date.now() - started) / 1000, videoDecoded: 0, framesDisplayed: 0, framesLost: 0, audioDecoded: 0, buffersPlayed: 0, buffersLost: 0, demuxKiB: 0 };
    } else if (/end of statistical info/.test(line) && block) {
      run.stats.push(block);
      block = undefined;
    } else if (block) {
      const m = /\|\s*([a-z ]+?)\s*:\s*(\d+)/.exec(line);
      const field = m && STAT_FIELDS[m[1]!];
      if (field) block[field] = Number(m[2]);
    }
  };

  const lines = (onLine: (line: string) => void): { data: (d: Buffer) => void; flush: () => void } => {
    let partial = '';
    return {
      data: (d) => {
        // VLC dumps HTTP messages with their CRLF line ends.
        const parts = (partial + d.toString()).split(/\r?\n/);
        partial = parts.pop()!;
        parts.forEach(onLine);
      },
      flush: () => {
        if (partial) onLine(partial);
        partial = '';
      },
    };
  };
  const log = lines(onLog);
  const rc = lines(onRc);
  child.stderr!.on('data', log.data);
  child.stdout!.on('data', rc.data);
  // VLC may exit while a command is on its way: the pipe's EPIPE is not an error of the run.
  child.stdin!.on('error', () => undefined);

  let vlcPid: number | undefined;
  const poll = setInterval(() => {
    vlcPid ??= child.pid === undefined ? undefined : childOf(child.pid);
    const cpu = vlcPid === undefined ? undefined : cpuOf(vlcPid);
    if (cpu !== undefined) run.cpuSeconds = cpu;
    if (child.stdin!.writable) child.stdin!.write('stats\n');
  }, 1000);

  return new Promise((ok, fail) => {
    child.on('error', (err) => {
      clearInterval(poll);
      children?.delete(child);
      rmSync(dir, { recursive: true, force: true });
      fail(err);
    });
    child.on('exit', (_code, signal) => {
      // `timeout` killed from outside (a teardown's SIGKILL) leaves VLC running: end its process group.
      if (signal && child.pid !== undefined) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    });
    child.on('close', (code, signal) => {
      clearInterval(poll);
      run.stoppedByTimeout = code === 124 || (signal === 'SIGKILL' && Date.now() - started >= seconds * 1000);
      children?.delete(child);
      log.flush();
      rc.flush();
      run.code = code;
      const last = run.stats[run.stats.length - 1];
      run.videoFrames = last?.framesDisplayed ?? 0;
      for (let i = run.stats.length - 1; i >= 0; i--) {
        const s = run.stats[i]!;
        if (s.framesDisplayed > (i ? run.stats[i - 1]!.framesDisplayed : 0)) {
          run.lastVideoProgress = s.at;
          break;
        }
      }
      run.http = vlcLog.http;
      run.errors = vlcLog.errors;
      run.eofLines = vlcLog.eofLines;
      run.output = vlcLog.output;
      run.httpErrors = httpErrors(run.http);
      run.audioSeconds = wavSeconds(wavFile);
      run.eof = run.eofLines.length > 0;
      run.summary = summarize(run);
      rmSync(dir, { recursive: true, force: true });
      ok(run);
    });
  });
}
