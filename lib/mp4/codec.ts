/**
 * Codec description for the client manifest: FourCC and CodecPrivateData derived from a sample entry
 * when the Live Server Manifest does not give them.
 */
import type { SampleEntry } from './boxes';

/** FourCCs this server knows how to describe to players, by track type. */
export const KNOWN_FOURCC: Readonly<Record<'video' | 'audio' | 'text', readonly string[]>> = {
  video: ['H264', 'AVC1', 'DAVC', 'X264', 'WVC1', 'HVC1', 'HEV1'],
  audio: ['AACL', 'AACH', 'AACP', 'AAC', 'WMAP', 'WMA2', 'EC-3', 'AC-3', 'MP3', 'OPUS'],
  text: ['TTML', 'DFXP', 'SCMD', 'DATA'],
};

/** The FourCC a sample entry corresponds to, or `undefined` for one we cannot name. */
export function fourCCFromEntry(entry: SampleEntry): string | undefined {
  switch (entry.format) {
    case 'avc1':
    case 'avc3':
      return 'H264';
    case 'hvc1':
      return 'HVC1';
    case 'hev1':
      return 'HEV1';
    case 'mp4a':
      // MPEG-4 Audio object type 5 (SBR) or 29 (PS) is HE-AAC; the manifest calls that AACH.
      if (entry.objectTypeIndication === 0x40 && entry.audioSpecificConfig) {
        const aot = (entry.audioSpecificConfig[0] ?? 0) >> 3;
        if (aot === 5 || aot === 29) return 'AACH';
      }
      return entry.objectTypeIndication === 0x6b || entry.objectTypeIndication === 0x69 ? 'MP3' : 'AACL';
    case 'ec-3':
      return 'EC-3';
    case 'ac-3':
      return 'AC-3';
    case 'stpp':
      return 'TTML';
    default:
      return undefined;
  }
}

/**
 * CodecPrivateData from a sample entry: for H.264, `00000001 SPS 00000001 PPS` (4-byte start codes, as
 * GStreamer and dash.js require); for AAC, the AudioSpecificConfig. Upper-case hex, as IIS emits it.
 */
export function codecPrivateDataFromEntry(entry: SampleEntry): string | undefined {
  if (entry.avc && entry.avc.sps.length > 0 && entry.avc.pps.length > 0) {
    const start = Buffer.from([0, 0, 0, 1]);
    return Buffer.concat([...entry.avc.sps, ...entry.avc.pps].flatMap((nal) => [start, nal]))
      .toString('hex')
      .toUpperCase();
  }
  if (entry.audioSpecificConfig) return entry.audioSpecificConfig.toString('hex').toUpperCase();
  return undefined;
}
