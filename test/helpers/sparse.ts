/**
 * The sparse tracks the tests push by hand (Smooth `<textstream>`s with `parentTrackName`): TTML
 * captions and SCTE-35 ad markers of the video, as `fmp4.ts` track specs.
 */
import { SCTE35_SCHEME } from '../../lib/model';
import type { TrackSpec } from './fmp4';

/** A video track named `video`. */
export function videoSpec(trackId = 1, bitrate = 800000): TrackSpec {
  return { trackId, kind: 'video', bitrate, params: { trackName: 'video' } };
}

/** TTML captions of `video` (FourCC TTML, Subtype CAPT, a `subt` handler). */
export function captionSpec(trackId: number, params: Record<string, string> = {}): TrackSpec {
  return {
    trackId,
    kind: 'text',
    bitrate: 1000,
    handler: 'subt',
    params: { trackName: 'captions', parentTrackName: 'video', FourCC: 'TTML', Subtype: 'CAPT', ...params },
  };
}

/** SCTE-35 ad markers of `video`, carried in the manifest (Azure's profile: bitrate 0, a `meta` handler). */
export function adSpec(trackId: number, params: Record<string, string> = {}): TrackSpec {
  return {
    trackId,
    kind: 'text',
    bitrate: 0,
    handler: 'meta',
    params: { trackName: 'ads', parentTrackName: 'video', Subtype: 'DATA', Scheme: SCTE35_SCHEME, manifestOutput: 'true', ...params },
  };
}
