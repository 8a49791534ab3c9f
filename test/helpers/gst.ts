/**
 * GStreamer's `mssdemux` playing a Smooth manifest for a while, with the presentation times of every
 * decoded video frame and audio buffer, so a test can look for gaps and jumps.
 *
 * The pts come from the fakesinks' `last-message` lines (`-v`). gst-launch reads that property when it
 * handles the notify, so a line can repeat the next buffer's message and miss one: look at distinct
 * pts, and allow a missing frame in a gap.
 */
import { ChildProcess, spawn } from 'node:child_process';

/** What one run decoded. */
export interface GstRun {
  /** Exit status; 124 = still playing when `timeout` stopped it. */
  code: number | null;
  /** Presentation times (seconds), in arrival order. */
  video: number[];
  audio: number[];
  /** Lines that mention ERROR. */
  errors: string[];
  /** The log without the per-buffer lines (for failure messages). */
  output: string;
}

/**
 * Pipeline: mssdemux → qtdemux → decoders → fakesinks `vs` and `as`, synchronised to the clock unless
 * `sync` is false (an on-demand presentation then plays as fast as it decodes).
 */
export function gstPipeline(manifest: string, sync = true): string[] {
  return [
    'souphttpsrc', `location=${manifest}`, '!', 'mssdemux', 'name=d',
    'd.video_00', '!', 'queue', '!', 'qtdemux', '!', 'h264parse', '!', 'avdec_h264', '!',
    'fakesink', 'silent=false', `sync=${sync}`, 'name=vs',
    'd.audio_00', '!', 'queue', '!', 'qtdemux', '!', 'aacparse', '!', 'avdec_aac', '!',
    'fakesink', 'silent=false', `sync=${sync}`, 'name=as',
  ];
}

/**
 * Pipeline for DASH and HLS: `uridecodebin3` picks the demuxer by the document's type (dashdemux2 or
 * hlsdemux2, which only run in such a streams-aware bin) and decodes; the first raw video and raw audio
 * pads go to synchronised fakesinks `vs` and `as`, as in {@link gstPipeline}. hlsdemux2 is the HLS
 * demuxer that plays `EXT-X-MEDIA` audio renditions, which the older hlsdemux ignores.
 */
export function uriPipeline(uri: string): string[] {
  return [
    'uridecodebin3', `uri=${uri}`, 'name=d',
    'd.', '!', 'video/x-raw', '!', 'queue', '!', 'fakesink', 'silent=false', 'sync=true', 'name=vs',
    'd.', '!', 'audio/x-raw', '!', 'queue', '!', 'fakesink', 'silent=false', 'sync=true', 'name=as',
  ];
}

/** `h:mm:ss.nnnnnnnnn` → seconds. Hours may be huge (UTC-based times); the float keeps µs there. */
function seconds(s: string): number {
  const [h, m, sec] = s.split(':');
  return Number(h) * 3600 + Number(m) * 60 + Number(sec);
}

/**
 * Runs gst-launch for `duration` seconds (under `timeout`; no `-e`: a live pipeline never finishes its
 * EOS). `children` tracks the process so a test's teardown can kill it. `pipeline` defaults to the
 * Smooth one of {@link gstPipeline}; its fakesinks must be named `vs` and `as`.
 */
export function runGst(
  gst: string,
  manifest: string,
  duration: number,
  children?: Set<ChildProcess>,
  debug = false,
  pipeline: string[] = gstPipeline(manifest),
): Promise<GstRun> {
  const child = spawn('timeout', ['-k', '5', String(duration), gst, '-v', ...pipeline], { stdio: ['ignore', 'pipe', 'pipe'] });
  children?.add(child);
  const run: GstRun = { code: null, video: [], audio: [], errors: [], output: '' };
  let partial = '';
  const onLine = (line: string): void => {
    if (debug) process.stderr.write(`[gst] ${line}\n`);
    if (/\bERROR\b/.test(line)) run.errors.push(line);
    const m = /GstFakeSink:(vs|as): last-message = chain\b.*?pts: ([0-9:.]+)/.exec(line);
    if (m) (m[1] === 'vs' ? run.video : run.audio).push(seconds(m[2]!));
    else run.output += `${line}\n`;
  };
  const onData = (d: Buffer): void => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop()!;
    lines.forEach(onLine);
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  return new Promise((ok, fail) => {
    child.on('error', fail);
    child.on('close', (code) => {
      children?.delete(child);
      if (partial) onLine(partial);
      run.code = code;
      ok(run);
    });
  });
}

/** Distinct pts in order, the largest step between neighbours, and steps that go backwards. */
export function ptsSummary(pts: readonly number[]): { distinct: number; span: number; maxGap: number; backwards: number } {
  let backwards = 0;
  for (let i = 1; i < pts.length; i++) if (pts[i]! < pts[i - 1]! - 1e-6) backwards++;
  const sorted = [...new Set(pts)].sort((a, b) => a - b);
  let maxGap = 0;
  for (let i = 1; i < sorted.length; i++) maxGap = Math.max(maxGap, sorted[i]! - sorted[i - 1]!);
  const span = sorted.length ? sorted[sorted.length - 1]! - sorted[0]! : 0;
  return { distinct: sorted.length, span, maxGap, backwards };
}
