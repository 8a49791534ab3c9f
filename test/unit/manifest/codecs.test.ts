import { codecsOf } from '../../../lib/manifest/codecs';
import { describeTracks } from '../../../lib/ingest/header';
import { parseMoov } from '../../../lib/mp4/boxes';
import { BoxReader } from '../../../lib/mp4/reader';
import { avcC, PPS, SPS } from '../../helpers/fmp4';
import { fixture, lsmText } from '../../helpers/raw-ingest';

const annexB = (...nals: Buffer[]): string =>
  Buffer.concat(nals.flatMap((n) => [Buffer.from([0, 0, 0, 1]), n])).toString('hex').toUpperCase();

/** The payload of an avcC box, as a CodecPrivateData that carries the record instead of Annex-B. */
const record = (sps: Buffer, pps: Buffer): string => avcC([sps], [pps]).subarray(8).toString('hex').toUpperCase();

describe('codecsOf', () => {
  it('derives the strings of the captured ffmpeg push (two libx264 baseline tracks, AAC-LC)', () => {
    const f = fixture();
    const reader = new BoxReader({ maxBoxSize: f.moov.length });
    const moov = [...reader.push(f.moov), ...reader.end()][0]!;
    const tracks = describeTracks(lsmText(f.lsm), parseMoov(moov));
    expect(tracks.map((t) => codecsOf(t.info))).toEqual(['avc1.42c00c', 'avc1.42d00b', 'mp4a.40.2']);
  });

  describe('H.264', () => {
    it('reads profile, constraint flags and level after the SPS header, zero-padded lower-case hex', () => {
      expect(codecsOf({ fourCC: 'H264', codecPrivateData: annexB(SPS, PPS) })).toBe('avc1.42c00c');
      const high = Buffer.from('6764001facd9', 'hex');
      expect(codecsOf({ fourCC: 'AVC1', codecPrivateData: annexB(high, PPS) })).toBe('avc1.64001f');
      const low = Buffer.from('6742000aabcd', 'hex'); // constraint byte 0x00 and level 0x0a keep their leading zero
      expect(codecsOf({ fourCC: 'DAVC', codecPrivateData: annexB(low, PPS) })).toBe('avc1.42000a');
    });

    it('finds the SPS whatever nal_ref_idc it has, after 3-byte start codes and other NAL units', () => {
      const aud = Buffer.from('09f0', 'hex');
      const sps = Buffer.from('274d4028ab', 'hex'); // nal_ref_idc 1
      const cpd = Buffer.concat([Buffer.from('00000109f0', 'hex'), Buffer.from([0, 0, 1]), sps, Buffer.from([0, 0, 1]), PPS]);
      expect(codecsOf({ fourCC: 'X264', codecPrivateData: cpd.toString('hex') })).toBe('avc1.4d4028');
      expect(codecsOf({ fourCC: 'H264', codecPrivateData: annexB(aud, SPS, PPS) })).toBe('avc1.42c00c');
    });

    it('reads bytes 1..3 of an avcC record', () => {
      expect(codecsOf({ fourCC: 'H264', codecPrivateData: record(Buffer.from('6764002a', 'hex'), PPS) })).toBe('avc1.64002a');
    });

    it('is undefined without an SPS, or with one cut short', () => {
      expect(codecsOf({ fourCC: 'H264', codecPrivateData: '' })).toBeUndefined();
      expect(codecsOf({ fourCC: 'H264', codecPrivateData: annexB(PPS) })).toBeUndefined();
      expect(codecsOf({ fourCC: 'H264', codecPrivateData: '000000016742C0' })).toBeUndefined();
      expect(codecsOf({ fourCC: 'H264', codecPrivateData: '0142C0' })).toBeUndefined();
    });
  });

  describe('AAC', () => {
    it('takes the audio object type from the first 5 bits of the AudioSpecificConfig', () => {
      expect(codecsOf({ fourCC: 'AACL', codecPrivateData: '1190' })).toBe('mp4a.40.2');
      expect(codecsOf({ fourCC: 'AACH', codecPrivateData: '2B092000' })).toBe('mp4a.40.5'); // 00101: SBR
      expect(codecsOf({ fourCC: 'AACP', codecPrivateData: 'EB098800' })).toBe('mp4a.40.29'); // 11101: PS
      expect(codecsOf({ fourCC: 'AAC', codecPrivateData: '0A10' })).toBe('mp4a.40.1'); // AAC Main
    });

    it('reads the escaped object type: 32 + the next 6 bits', () => {
      // 11111 000010 ...: AOT 34 (MPEG-1/2 Layer 3 in MPEG-4)
      expect(codecsOf({ fourCC: 'AACL', codecPrivateData: 'F840' })).toBe('mp4a.40.34');
      // 11111 000110 ...: AOT 38
      expect(codecsOf({ fourCC: 'AACL', codecPrivateData: 'F8C0' })).toBe('mp4a.40.38');
      expect(codecsOf({ fourCC: 'AACL', codecPrivateData: 'F8' })).toBeUndefined();
    });

    it('falls back on the FourCC without CodecPrivateData', () => {
      expect(codecsOf({ fourCC: 'AACL', codecPrivateData: '' })).toBe('mp4a.40.2');
      expect(codecsOf({ fourCC: 'AACH', codecPrivateData: '' })).toBe('mp4a.40.5');
      expect(codecsOf({ fourCC: 'AACP', codecPrivateData: '' })).toBeUndefined();
    });
  });

  it('names the other audio codecs by FourCC, in any case', () => {
    expect(codecsOf({ fourCC: 'EC-3', codecPrivateData: '' })).toBe('ec-3');
    expect(codecsOf({ fourCC: 'AC-3', codecPrivateData: '00' })).toBe('ac-3');
    expect(codecsOf({ fourCC: 'MP3', codecPrivateData: '' })).toBe('mp4a.6b');
    expect(codecsOf({ fourCC: 'opus', codecPrivateData: '' })).toBe('opus');
    expect(codecsOf({ fourCC: 'aacl', codecPrivateData: '1190' })).toBe('mp4a.40.2');
  });

  it('is the IMSC1 text profile for TTML, as HLS CODECS and hls.js need it', () => {
    expect(codecsOf({ fourCC: 'TTML', codecPrivateData: '' })).toBe('stpp.ttml.im1t');
  });

  it('is undefined for HEVC, VC-1, WMA and text other than TTML', () => {
    for (const fourCC of ['HVC1', 'HEV1', 'WVC1', 'WMAP', 'DATA']) {
      expect(codecsOf({ fourCC, codecPrivateData: '0102030405' })).toBeUndefined();
    }
  });
});
