/**
 * Small `.ismv` files built in code for the simulated encoder's unit tests, shaped like ffmpeg's
 * `-f ismv` output: ftyp, moov (with mvex), one moof+mdat per track per fragment with tfxd v1, then an
 * mfra. The audio track starts one sample early, as ffmpeg's AAC priming does.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Bytes, TrackSpec, cat, fragment, ftyp, mfra, moov, payload } from './fmp4';

/** Ticks (10 MHz) per video fragment and per audio sample. */
export const FRAGMENT = 20_000_000n;
export const AUDIO_SAMPLE = 1_000_000n;

export interface IsmvSpec {
  /** Fragments per track (2 s each). Default 3. */
  fragments?: number;
  /** Video tracks (bitrates); default one at 300 kbit/s. */
  video?: number[];
  /** Audio track present. Default true. */
  audio?: boolean;
  /** Samples per video fragment. Default 4. */
  videoSamples?: number;
  /** Several trafs per moof (one moof per fragment time for all tracks) instead of one per track. */
  multiTraf?: boolean;
  /** Also write a tfdt with the fragment time in every traf. */
  tfdt?: boolean;
}

/** Track specs (video first, then audio), for the moov and for expectations. */
export function tracksOf(spec: IsmvSpec): TrackSpec[] {
  const video = spec.video ?? [300_000];
  const out: TrackSpec[] = video.map((bitrate, i) => ({ trackId: i + 1, kind: 'video', bitrate, width: 320 >> i, height: 180 >> i }));
  if (spec.audio ?? true) out.push({ trackId: video.length + 1, kind: 'audio', bitrate: 64_000 });
  return out;
}

/** The bytes of an `.ismv` per `spec`. Sample payloads are deterministic (seeded by track and index). */
export function ismv(spec: IsmvSpec = {}): Buffer {
  const tracks = tracksOf(spec);
  const n = spec.fragments ?? 3;
  const parts: Bytes[] = [ftyp('isml', 1, ['piff', 'iso2']), moov(tracks)];
  let seq = 1;
  for (let i = 0; i < n; i++) {
    const trafs = tracks.map((t) => {
      const video = t.kind === 'video';
      // Audio: the first fragment starts one sample early (priming) and holds one more sample.
      const start = video || i === 0 ? BigInt(i) * FRAGMENT - (video ? 0n : AUDIO_SAMPLE) : BigInt(i) * FRAGMENT;
      const end = BigInt(i + 1) * FRAGMENT;
      const count = video ? (spec.videoSamples ?? 4) : Number((end - start) / AUDIO_SAMPLE);
      return {
        trackId: t.trackId,
        time: start,
        duration: end - start,
        samples: Array.from({ length: count }, (_, s) => payload(video ? 200 + s : 50, t.trackId * 1000 + i * 50 + s)),
        flags: video ? undefined : Array.from({ length: count }, () => 0x02000000),
        ...(spec.tfdt ? { decodeTime: start < 0n ? 0n : start } : {}),
      };
    });
    if (spec.multiTraf) parts.push(fragment(seq++, trafs));
    else for (const t of trafs) parts.push(fragment(seq++, [t]));
  }
  parts.push(mfra());
  return cat(...parts);
}

/** Writes `data` as `name` in a fresh temporary folder; returns its path. */
export function writeTemp(name: string, data: Buffer | string, dir?: string): string {
  const folder = dir ?? mkdtempSync(path.join(tmpdir(), 'live-smooth-enc-'));
  const file = path.join(folder, name);
  writeFileSync(file, data);
  return file;
}
