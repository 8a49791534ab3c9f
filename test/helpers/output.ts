/**
 * Hand-built {@link OutputSnapshot} parts for the DASH and HLS renderer tests: tracks, groups and
 * segment runs at 10 MHz, the timescale Smooth encoders use.
 */
import { representationId, type OutputGroup, type OutputRepresentation, type OutputSnapshot } from '../../lib/manifest/output';
import type { FragmentTime, TrackInfo } from '../../lib/model';

export const TS = 10_000_000;
/** 12 345 678 s at 10 MHz: above 2^32, which a uint32 would wrap. */
export const V0 = 123_456_780_000_000n;
export const AST = Date.UTC(2025, 5, 17, 8, 0, 0, 0);

/** A video (1280×720 H.264) or AAC (48 kHz stereo, English) track, with `over` applied. */
export function info(type: TrackInfo['type'], bitrate: number, over: Partial<TrackInfo> = {}): TrackInfo {
  const base: TrackInfo =
    type === 'video'
      ? {
          type, name: 'video', bitrate, customAttributes: [], fourCC: 'H264', codecPrivateData: '', timescale: TS, subtype: '',
          language: undefined, maxWidth: 1280, maxHeight: 720,
        }
      : {
          type, name: type, bitrate, customAttributes: [], fourCC: 'AACL', codecPrivateData: '1190', timescale: TS, subtype: '',
          language: 'en', channels: 2, samplingRate: 48000,
        };
  return { ...base, ...over };
}

export function rep(i: TrackInfo, codecs: string | undefined, frameRate?: number): OutputRepresentation {
  return { id: representationId(i), info: i, codecs, frameRate };
}

/** A group of `reps` listing `segments`, numbered from 0 with a 2 s target. */
export function group(reps: OutputRepresentation[], segments: FragmentTime[], over: Partial<OutputGroup> = {}): OutputGroup {
  const r = reps[0]!;
  return {
    type: r.info.type, name: r.info.name, language: r.info.language, timescale: r.info.timescale, representations: reps, segments,
    mediaSequence: 0, discontinuitySequence: 0, discontinuities: new Set(), targetDuration: 2, ...over,
  };
}

/** `n` segments of `duration` from `start`, without gaps. */
export function run(start: bigint, duration: bigint, n: number): FragmentTime[] {
  return Array.from({ length: n }, (_, i) => ({ time: start + BigInt(i) * duration, duration }));
}

/** 48 kHz AAC frames at 10 MHz: 2 s segments alternate 20 053 333 / 19 946 667 and add up to 4 s per pair. */
export function aacRun(start: bigint, n: number): FragmentTime[] {
  const out: FragmentTime[] = [];
  let t = start;
  for (let i = 0; i < n; i++) {
    const duration = i % 2 === 0 ? 20_053_333n : 19_946_667n;
    out.push({ time: t, duration });
    t += duration;
  }
  return out;
}

/** A live snapshot of `groups` (anchored at {@link AST}, lookahead 2, no window), with `over` applied. */
export function outputSnapshot(groups: OutputGroup[], over: Partial<OutputSnapshot> = {}): OutputSnapshot {
  return { ended: false, availabilityStart: AST, liveStart: 0n, publishTime: AST + 12_345_700_000, window: 0, lookahead: 2, groups, ...over };
}
