/**
 * What caches are told about live responses. Entity tags derived from what a response holds, never
 * from the process: two origins fed the same
 * stream (redundant origins behind one edge or CDN) give the same tag for the same bytes, so a cache
 * can revalidate against either and a player notices nothing when one of them goes away.
 */
import { createHash } from 'node:crypto';
import type { FragmentMeta } from '../media';

/** A short tag of `body`'s bytes (SHA-1, 96 bits in base64url). */
export function contentTag(body: Uint8Array): string {
  return createHash('sha1').update(body).digest('base64url').slice(0, 16);
}

/** FNV-1a offset basis and prime (32 bits). */
const FNV_BASIS = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/**
 * A fingerprint of a fragment's content that costs a few hundred operations, not a pass over its
 * sample bytes: every sample's duration, size, flags and composition offset, the passthrough boxes'
 * sizes, the data size and the track id (which the moof repeats). With the fragment's start (which the tag sits beside), a restarted encoder
 * that reuses times with other pictures practically never collides, while twins agree exactly.
 */
export function fragmentTag(f: FragmentMeta): string {
  let h = FNV_BASIS;
  const mix = (v: number): void => {
    h = Math.imul(h ^ (v >>> 0), FNV_PRIME);
  };
  const s = f.samples;
  for (let i = 0; i < s.count; i++) {
    mix(s.duration(i));
    mix(s.size(i));
    mix(s.flags(i));
    mix(s.compositionOffset(i));
  }
  for (const b of f.extra) mix(b.length);
  mix(f.dataSize);
  mix(f.trackId);
  // Only a decode time the moof carries (a tfdt the encoder sent) is part of the bytes.
  if (f.decodeTimeSent) mix(Number(f.decodeTime & 0xffffffffn));
  return (h >>> 0).toString(36);
}

/**
 * Seconds a cache may keep a live response that changes with the next fragment (a manifest, a
 * playlist, a fragment whose tfrf can still grow): half a fragment in whole seconds, with 5 % of slack.
 * Rounding down alone would make AAC's 1.984 s fragments (next to 2.005 s ones) uncacheable every other
 * fragment, sending every viewer's refresh to the origin.
 * @param fragmentSeconds - the shortest duration among the newest fragments
 */
export function liveMaxAge(fragmentSeconds: number): number {
  return Math.floor((fragmentSeconds / 2) * 1.05);
}
