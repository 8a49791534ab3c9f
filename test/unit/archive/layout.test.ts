/**
 * Archive layout and the random-access index: folder and file names stay plain names whatever a
 * definition or an encoder says, and the `mfra` a file ends with is found from its last 16 bytes.
 */
import * as path from 'node:path';
import { movieFragmentRandomAccess, sessionFolder, sessionName, trackFileName } from '../../../lib/archive';
import type { TrackInfo } from '../../../lib/model';
import { children } from '../../../lib/mp4/reader';

const info = (over: Partial<TrackInfo>): TrackInfo => ({
  type: 'video',
  name: 'video',
  bitrate: 800000,
  customAttributes: [],
  fourCC: 'H264',
  codecPrivateData: '',
  timescale: 10_000_000,
  subtype: '',
  language: undefined,
  ...over,
});

describe('archive layout', () => {
  it('a session folder is the point path without .isml, then the UTC start without colons', () => {
    const at = Date.UTC(2026, 11, 1, 21, 34, 45, 678);
    expect(sessionName(at)).toBe('2026-12-01T21-34-45Z');
    expect(sessionFolder('/a', 'events/ch1.isml', at)).toBe(path.join('/a', 'events', 'ch1', '2026-12-01T21-34-45Z'));
  });

  it('refuses a point path segment that is not a plain name', () => {
    for (const bad of ['../x.isml', 'a/./b.isml', 'a//b.isml', 'a b.isml', 'a\\b.isml']) {
      expect(() => sessionFolder('/a', bad, 0)).toThrow(/cannot name an archive folder/);
    }
  });

  it('track files are named by name, bitrate and custom attributes, made safe and unique', () => {
    expect(trackFileName(info({}), new Set())).toBe('video_800000.ismv');
    expect(trackFileName(info({ type: 'audio', name: 'audio_en', bitrate: 96000 }), new Set())).toBe('audio_en_96000.isma');
    const attrs = info({ customAttributes: [['hardwareProfile', 'a:b']] });
    expect(trackFileName(attrs, new Set())).toBe('video_800000_hardwareProfile-a_b.ismv');
    expect(trackFileName(info({}), new Set(['video_800000.ismv']))).toBe('video_800000_2.ismv');
  });
});

describe('movieFragmentRandomAccess', () => {
  it('writes a version-1 tfra for track 1 and an mfro giving the mfra size', () => {
    const entries = [
      { time: 0n, offset: 1234 },
      { time: 2n ** 60n, offset: 2 ** 40 },
    ];
    const mfra = movieFragmentRandomAccess({ count: entries.length, time: (i) => entries[i]!.time, offset: (i) => entries[i]!.offset });
    expect(mfra.readUInt32BE(mfra.length - 4)).toBe(mfra.length);
    const [tfra, mfro] = [...children(mfra.subarray(8))];
    expect([tfra!.type, mfro!.type]).toEqual(['tfra', 'mfro']);
    const d = tfra!.data;
    expect([d[8], d.readUInt32BE(12), d.readUInt32BE(16), d.readUInt32BE(20)]).toEqual([1, 1, 0, 2]);
    expect(d.readBigUInt64BE(24 + 19)).toBe(2n ** 60n);
    expect(Number(d.readBigUInt64BE(24 + 19 + 8))).toBe(2 ** 40);
  });
});
