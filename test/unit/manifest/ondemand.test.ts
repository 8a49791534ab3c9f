/**
 * The on-demand manifest snapshot shared by the archive's `.ismc` and presentations without one.
 */
import { onDemandSnapshot } from '../../../lib/manifest/ondemand';
import type { TrackInfo } from '../../../lib/model';

const info = (type: TrackInfo['type'], name: string, bitrate: number, timescale = 10_000_000): TrackInfo => ({
  type,
  name,
  bitrate,
  customAttributes: [],
  fourCC: type === 'video' ? 'H264' : 'AACL',
  codecPrivateData: '',
  timescale,
  subtype: '',
  language: undefined,
});
const frags = (start: bigint, d: bigint, n: number): Array<{ time: bigint; duration: bigint }> =>
  Array.from({ length: n }, (_, i) => ({ time: start + BigInt(i) * d, duration: d }));

describe('onDemandSnapshot', () => {
  it('groups by type and name, video first, bitrates ascending, the first QualityLevel listing; Duration from the earliest start to the latest end', () => {
    const s = onDemandSnapshot([
      { info: info('audio', 'audio', 96_000, 48_000), fragments: frags(96_000n, 96_000n, 3) },
      { info: info('video', 'video', 800_000), fragments: frags(20_000_000n, 20_000_000n, 3) },
      { info: info('video', 'video', 400_000), fragments: frags(20_000_000n, 20_000_000n, 2) },
    ]);
    expect(s.isLive).toBe(false);
    expect(s.streams.map((x) => [x.type, x.qualityLevels.map((q) => q.bitrate), x.fragments.length])).toEqual([
      ['video', [400_000, 800_000], 2],
      ['audio', [96_000], 3],
    ]);
    // Earliest start 2 s (both), latest end: audio at 8 s, video (400k listed) at 6 s.
    expect(s.duration).toBe(60_000_000n);
  });

  it('refuses a StreamIndex whose tracks have different timescales', () => {
    expect(() =>
      onDemandSnapshot([
        { info: info('video', 'video', 1, 90_000), fragments: frags(0n, 1n, 1) },
        { info: info('video', 'video', 2), fragments: frags(0n, 1n, 1) },
      ]),
    ).toThrow(/different timescales/);
  });
});
