/**
 * Pushing a real live stream with ffmpeg's `ismv` muxer.
 */
import { ChildProcess, spawn } from 'node:child_process';

export interface PushOptions {
  /** ffmpeg binary. */
  ffmpeg: string;
  /** Publishing point URL, e.g. `http://127.0.0.1:1234/live/ch1.isml`. */
  url: string;
  /** Seconds of media to push (in real time unless `realtime` is false). */
  seconds: number;
  /** Read the sources at their frame rate (`-re`), as a live encoder sends. Default true; false pushes as fast as ffmpeg encodes. */
  realtime?: boolean;
  /** Video bitrates in kbit/s, highest first; sizes halve per step. Default [800, 400, 200]. */
  bitrates?: number[];
  /** One POST per track (`Streams(video0)`, …, `Streams(audio)`) instead of one for all. */
  perTrack?: boolean;
  /**
   * CMAF ingest (DASH-IF live media ingest) instead of Smooth: one fragmented CMAF POST per track,
   * `Streams(video-<kbit/s>k.cmfv)` per bitrate and `Streams(audio.cmfa)`, timed by `tfdt`.
   */
  cmaf?: boolean;
  /**
   * CMAF upload (DASH-IF live media ingest, one segment per request) with ffmpeg's DASH muxer: the MPD
   * PUT to `<url>/manifest.mpd` again and again, each track's init segment and 2 s segments of
   * one-frame chunks (`-streaming 1`) PUT beside it, old segments DELETEd past a window of 10.
   */
  dash?: boolean;
  /** Stream id of the single POST. Default `ch1`. */
  streamId?: string;
  /** Seconds added to every time (`-output_ts_offset`), e.g. a UTC-based clock: 1764000000 puts 10 MHz times above 2^53. */
  tsOffset?: number;
}

const SIZES = ['640x360', '480x270', '320x180', '160x90'];

/** Arguments for a live push of N H.264 bitrates with aligned 2 s GOPs plus AAC audio. */
export function pushArgs(o: PushOptions): string[] {
  const bitrates = o.bitrates ?? [800, 400, 200];
  const n = bitrates.length;
  const split = `[0:v]split=${n}${bitrates.map((_, i) => `[s${i}]`).join('')};` +
    bitrates.map((_, i) => `[s${i}]scale=${SIZES[i]!.replace('x', ':')}[v${i}]`).join(';');
  const re = o.realtime === false ? [] : ['-re'];
  const args = [
    '-hide_banner', '-loglevel', 'error', '-nostdin',
    ...re, '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25',
    ...re, '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-filter_complex', split,
  ];
  const video = [
    '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p',
    '-g', '50', '-keyint_min', '50', '-sc_threshold', '0',
  ];
  const audio = ['-c:a', 'aac', '-b:a', '96k', '-ac', '2'];
  // `-t` is an output option: every output needs its own, or the others run forever.
  const isml = ['-t', String(o.seconds), ...offset(o), '-movflags', 'isml+frag_keyframe', '-f', 'ismv'];
  if (o.cmaf) {
    // ffmpeg's mp4 muxer with `cmaf`: ftyp + a one-track moov (with btrt), then moof (tfdt) + mdat.
    const cmaf = (frag: string): string[] => ['-t', String(o.seconds), ...offset(o), '-f', 'mp4', '-movflags', `cmaf+${frag}empty_moov+default_base_moof`];
    bitrates.forEach((b, i) => {
      args.push('-map', `[v${i}]`, ...video, '-b:v', `${b}k`, ...cmaf('frag_keyframe+'), `${o.url}/Streams(video-${b}k.cmfv)`);
    });
    args.push('-map', '1:a', ...audio, '-frag_duration', '2000000', ...cmaf(''), `${o.url}/Streams(audio.cmfa)`);
    return args;
  }
  if (o.dash) {
    args.push(...bitrates.flatMap((_, i) => ['-map', `[v${i}]`]), '-map', '1:a', ...video, ...bitrates.flatMap((b, i) => [`-b:v:${i}`, `${b}k`]), ...audio);
    args.push(
      '-t', String(o.seconds), ...offset(o), '-f', 'dash', '-streaming', '1', '-ldash', '0', '-seg_duration', '2',
      '-use_template', '1', '-use_timeline', '1', '-window_size', '10', '-adaptation_sets', 'id=0,streams=v id=1,streams=a',
      '-method', 'PUT', '-http_persistent', '0', `${o.url}/manifest.mpd`,
    );
    return args;
  }
  if (!o.perTrack) {
    args.push(...bitrates.flatMap((_, i) => ['-map', `[v${i}]`]), '-map', '1:a', ...video);
    args.push(...bitrates.flatMap((b, i) => [`-b:v:${i}`, `${b}k`]), ...audio, ...isml, `${o.url}/Streams(${o.streamId ?? 'ch1'})`);
    return args;
  }
  bitrates.forEach((b, i) => {
    args.push('-map', `[v${i}]`, ...video, '-b:v', `${b}k`, ...isml, `${o.url}/Streams(video${i})`);
  });
  // An audio-only ismv output with frag_keyframe would send nothing until the end (every AAC frame is a
  // keyframe, so ffmpeg needs a fragment duration).
  args.push('-map', '1:a', ...audio, '-frag_duration', '2000000', ...isml, `${o.url}/Streams(audio)`);
  return args;
}

function offset(o: PushOptions): string[] {
  return o.tsOffset ? ['-output_ts_offset', String(o.tsOffset)] : [];
}

/**
 * Arguments for one encoder of a push made by separate processes: video bitrate `index` of
 * {@link pushArgs}'s ladder, or the audio (`'audio'`), each its own POST (`Streams(video<i>)`,
 * `Streams(audio)`). All start their times at 0 with the same GOP, so fragment boundaries align.
 */
export function trackArgs(o: PushOptions, index: number | 'audio'): string[] {
  const base = ['-hide_banner', '-loglevel', 'error', '-nostdin'];
  const re = o.realtime === false ? [] : ['-re'];
  const isml = ['-t', String(o.seconds), ...offset(o), '-movflags', 'isml+frag_keyframe', '-f', 'ismv'];
  if (index === 'audio') {
    return [
      ...base, ...re, '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
      '-c:a', 'aac', '-b:a', '96k', '-ac', '2', '-frag_duration', '2000000', ...isml, `${o.url}/Streams(audio)`,
    ];
  }
  const bitrate = (o.bitrates ?? [800, 400, 200])[index]!;
  return [
    ...base, ...re, '-f', 'lavfi', '-i', `testsrc2=size=${SIZES[index]}:rate=25`,
    '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p',
    '-g', '50', '-keyint_min', '50', '-sc_threshold', '0', '-b:v', `${bitrate}k`,
    ...isml, `${o.url}/Streams(video${index})`,
  ];
}

/** A running push. `done` resolves with ffmpeg's exit code and its stderr. */
export interface Push {
  child: ChildProcess;
  done: Promise<{ code: number | null; stderr: string }>;
}

export function push(o: PushOptions): Push {
  return run(o.ffmpeg, pushArgs(o));
}

/** One ffmpeg process per track, as separate encoders (one per bitrate, one for audio) would push. */
export function pushTracks(o: PushOptions): Push[] {
  const bitrates = o.bitrates ?? [800, 400, 200];
  return [...bitrates.map((_, i) => i), 'audio' as const].map((index) => run(o.ffmpeg, trackArgs(o, index)));
}

function run(ffmpeg: string, args: string[]): Push {
  const child = spawn(ffmpeg, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stderr: string }>((ok) => child.on('exit', (code) => ok({ code, stderr })));
  return { child, done };
}

/**
 * One encoder feeding several publishing points (redundant origins) with the same bytes: ffmpeg's
 * `tee` muxer writes one ismv output per URL of `urls` (each `…/ch1.isml`, POSTed to `Streams(<id>)`),
 * so every origin gets identical fragments with identical times. An output whose origin goes away is
 * dropped (`onfail=ignore`) and the others go on. `o.url` is ignored.
 */
export function pushTee(o: PushOptions & { urls: string[] }): Push {
  const args = pushArgs({ ...o, url: '', perTrack: false });
  // pushArgs ends with the single output: `-movflags isml+frag_keyframe -f ismv <url>/Streams(id)`.
  const tail = args.splice(-5);
  if (tail[0] !== '-movflags' || tail[3] !== 'ismv') throw new Error(`pushTee: unexpected pushArgs tail ${tail.join(' ')}`);
  const slaves = o.urls.map((u) => `[f=ismv:movflags=isml+frag_keyframe:onfail=ignore]${u}/Streams(${o.streamId ?? 'ch1'})`).join('|');
  // The muxers inside tee cannot ask the encoders for global headers (avcC, AudioSpecificConfig): ask here.
  return run(o.ffmpeg, [...args, '-flags', '+global_header', '-f', 'tee', slaves]);
}
