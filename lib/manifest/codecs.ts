/**
 * RFC 6381 `codecs` strings for the DASH and HLS outputs, derived from what the Smooth header says of a
 * track (FourCC and CodecPrivateData), so that players can pick a decoder before fetching an init segment.
 */
import type { TrackInfo } from '../model';

const H264 = new Set(['H264', 'AVC1', 'DAVC', 'X264']);
const AAC = new Set(['AACL', 'AACH', 'AACP', 'AAC']);
const FIXED: ReadonlyMap<string, string> = new Map([
  ['EC-3', 'ec-3'],
  ['AC-3', 'ac-3'],
  ['MP3', 'mp4a.6b'],
  ['OPUS', 'opus'],
  // TTML in ISO BMFF (`stpp`, ISO/IEC 14496-30) as the IMSC1 text profile: the form HLS requires in
  // CODECS, which hls.js needs to pick its IMSC1 parser, and which Shaka and dash.js read for DASH.
  ['TTML', 'stpp.ttml.im1t'],
]);

/**
 * The RFC 6381 codecs string of a track (`avc1.64001f`, `mp4a.40.2`, `ec-3`, `stpp.ttml.im1t`), or
 * `undefined` when it cannot be derived (HEVC, VC-1, WMA, text other than TTML, or a CodecPrivateData
 * without the needed bytes).
 */
export function codecsOf(info: Pick<TrackInfo, 'fourCC' | 'codecPrivateData'>): string | undefined {
  const fourCC = info.fourCC.toUpperCase();
  const cpd = Buffer.from(info.codecPrivateData, 'hex');
  if (H264.has(fourCC)) return avc(cpd);
  if (AAC.has(fourCC)) {
    if (cpd.length > 0) return aac(cpd);
    // Without an AudioSpecificConfig only the FourCC is left; AACP does not say which profile it is.
    if (fourCC === 'AACL') return 'mp4a.40.2';
    if (fourCC === 'AACH') return 'mp4a.40.5';
    return undefined;
  }
  return FIXED.get(fourCC);
}

function hex2(b: number): string {
  // A plain toString(16) drops the leading zero of bytes below 0x10 (`avc1.42c0c` instead of `avc1.42c00c`).
  return b.toString(16).padStart(2, '0');
}

function avc(cpd: Buffer): string | undefined {
  // An avcC record (configurationVersion 1) carries profile, constraint flags and level at bytes 1..3.
  if (cpd[0] === 1) return cpd.length >= 4 ? `avc1.${hex2(cpd[1]!)}${hex2(cpd[2]!)}${hex2(cpd[3]!)}` : undefined;
  const sps = findSps(cpd);
  if (sps === undefined || sps + 3 >= cpd.length) return undefined;
  return `avc1.${hex2(cpd[sps + 1]!)}${hex2(cpd[sps + 2]!)}${hex2(cpd[sps + 3]!)}`;
}

/** Offset of the header byte of the first SPS NAL unit after an Annex-B start code (3 or 4 bytes). */
function findSps(b: Buffer): number | undefined {
  for (let i = 0; i + 3 < b.length; i++) {
    if (b[i] !== 0 || b[i + 1] !== 0 || b[i + 2] !== 1) continue;
    // nal_ref_idc varies between encoders (0x67, 0x27, 0x47); only the type tells an SPS.
    if ((b[i + 3]! & 0x1f) === 7) return i + 3;
  }
  return undefined;
}

function aac(asc: Buffer): string | undefined {
  let aot = asc[0]! >> 3;
  if (aot === 31) {
    // Escape value: the real object type is 32 + the next 6 bits, which straddle the first two bytes.
    if (asc.length < 2) return undefined;
    aot = 32 + (((asc[0]! & 0x07) << 3) | (asc[1]! >> 5));
  }
  return aot === 0 ? undefined : `mp4a.40.${aot}`;
}
