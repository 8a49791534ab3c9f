import { KNOWN_FOURCC, codecPrivateDataFromEntry, fourCCFromEntry } from '../../../lib/mp4/codec';

describe('fourCCFromEntry', () => {
  it.each([
    ['avc1', undefined, undefined, 'H264'],
    ['avc3', undefined, undefined, 'H264'],
    ['hvc1', undefined, undefined, 'HVC1'],
    ['hev1', undefined, undefined, 'HEV1'],
    ['ec-3', undefined, undefined, 'EC-3'],
    ['ac-3', undefined, undefined, 'AC-3'],
    ['mp4a', 0x40, '1190', 'AACL'], // AAC-LC
    ['mp4a', 0x40, '2b920800', 'AACH'], // object type 5 (SBR)
    ['mp4a', 0x40, 'eb0a8880', 'AACH'], // object type 29 (PS)
    ['mp4a', 0x6b, undefined, 'MP3'],
    ['mp4a', 0x69, undefined, 'MP3'],
    ['mp4a', undefined, undefined, 'AACL'],
    ['mp4v', undefined, undefined, undefined],
    ['encv', undefined, undefined, undefined],
  ])('%s (object type %p, ASC %p) -> %p', (format, objectTypeIndication, asc, fourCC) => {
    const entry = { format, objectTypeIndication, audioSpecificConfig: asc === undefined ? undefined : Buffer.from(asc, 'hex') };
    expect(fourCCFromEntry(entry)).toBe(fourCC);
  });

  it('only names FourCCs the manifest knows', () => {
    for (const format of ['avc1', 'hvc1', 'hev1', 'ec-3', 'ac-3']) {
      const f = fourCCFromEntry({ format })!;
      expect([...KNOWN_FOURCC.video, ...KNOWN_FOURCC.audio]).toContain(f);
    }
  });
});

describe('codecPrivateDataFromEntry', () => {
  const sps = Buffer.from('6742c00cda0a37e4c044', 'hex');
  const pps = Buffer.from('68ce3c80', 'hex');

  it('writes 00000001 SPS 00000001 PPS in upper-case hex', () => {
    expect(codecPrivateDataFromEntry({ format: 'avc1', avc: { sps: [sps], pps: [pps], nalLengthSize: 4, profileIndication: 66 } })).toBe(
      '000000016742C00CDA0A37E4C04400000001' + '68CE3C80',
    );
  });

  it('writes every SPS and PPS with 4-byte start codes', () => {
    const out = codecPrivateDataFromEntry({ format: 'avc1', avc: { sps: [sps, sps], pps: [pps, pps], nalLengthSize: 4, profileIndication: 66 } })!;
    expect(out.split('00000001').filter(Boolean)).toEqual(['6742C00CDA0A37E4C044', '6742C00CDA0A37E4C044', '68CE3C80', '68CE3C80']);
  });

  it('needs both an SPS and a PPS', () => {
    expect(codecPrivateDataFromEntry({ format: 'avc1', avc: { sps: [sps], pps: [], nalLengthSize: 4, profileIndication: 66 } })).toBeUndefined();
  });

  it('writes the AudioSpecificConfig for AAC', () => {
    expect(codecPrivateDataFromEntry({ format: 'mp4a', audioSpecificConfig: Buffer.from('118856e500', 'hex') })).toBe('118856E500');
  });

  it('returns undefined without codec configuration', () => {
    expect(codecPrivateDataFromEntry({ format: 'mp4a' })).toBeUndefined();
  });
});
