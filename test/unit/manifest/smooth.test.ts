import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { SmoothManifestFormatter } from '../../../lib/manifest/smooth';
import type { ManifestSnapshot, StreamSnapshot } from '../../../lib/manifest/types';
import type { FragmentTime, TrackInfo } from '../../../lib/model';

type Attrs = Record<string, string>;
interface C extends Attrs {}
interface Level extends Attrs {}
interface Index {
  [key: string]: unknown;
  QualityLevel: Array<Level & { CustomAttributes?: { Attribute: Attrs[] } }>;
  c?: C[];
}
interface Doc {
  SmoothStreamingMedia: Attrs & { StreamIndex: Index[] };
}

const xml = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  parseTagValue: false,
  trimValues: false,
  isArray: (name) => ['StreamIndex', 'QualityLevel', 'c', 'Attribute'].includes(name),
});

function read(text: string): Doc {
  expect(XMLValidator.validate(text)).toBe(true);
  return xml.parse(text) as Doc;
}

const T0 = 17_640_000_000_000_001n; // above 2^53: a Number would round it

function video(bitrate: number, over: Partial<TrackInfo> = {}): TrackInfo {
  return {
    type: 'video',
    name: 'video',
    bitrate,
    customAttributes: [],
    fourCC: 'H264',
    codecPrivateData: '000000016742C00CDA0A37E4C044000003000400000300C83C50AA800000000168CE3C80',
    timescale: 10_000_000,
    subtype: '',
    language: undefined,
    maxWidth: bitrate / 1000,
    maxHeight: bitrate / 2000,
    displayWidth: bitrate / 1000,
    displayHeight: bitrate / 2000,
    nalUnitLengthField: 4,
    ...over,
  };
}

function audio(over: Partial<TrackInfo> = {}): TrackInfo {
  return {
    type: 'audio',
    name: 'audio',
    bitrate: 96000,
    customAttributes: [],
    fourCC: 'AACL',
    codecPrivateData: '1190',
    timescale: 10_000_000,
    subtype: '',
    language: 'eng',
    audioTag: 255,
    channels: 2,
    samplingRate: 48000,
    bitsPerSample: 16,
    packetSize: 4,
    ...over,
  };
}

function run(start: bigint, duration: bigint, n: number): FragmentTime[] {
  return Array.from({ length: n }, (_, i) => ({ time: start + BigInt(i) * duration, duration }));
}

function stream(qualityLevels: TrackInfo[], fragments: FragmentTime[], over: Partial<StreamSnapshot> = {}): StreamSnapshot {
  const q = qualityLevels[0]!;
  return { type: q.type, name: q.name, subtype: q.subtype, timescale: q.timescale, language: q.language, qualityLevels, fragments, ...over };
}

function snapshot(streams: StreamSnapshot[], over: Partial<ManifestSnapshot> = {}): ManifestSnapshot {
  return { isLive: true, timeScale: 10_000_000, duration: 0n, lookahead: 2, dvrWindowLength: 600_000_000n, streams, ...over };
}

/** Expands `c` elements back into fragment times (t implicit = previous end, r = total count). */
function expand(cs: C[]): FragmentTime[] {
  const out: FragmentTime[] = [];
  let next = 0n;
  for (const c of cs) {
    if (c.d === undefined) throw new Error('a c without d'); // d on every c
    const d = BigInt(c.d);
    let t = c.t !== undefined ? BigInt(c.t) : next;
    for (let i = 0; i < Number(c.r ?? '1'); i++) {
      out.push({ time: t, duration: d });
      t += d;
    }
    next = t;
  }
  return out;
}

describe('SmoothManifestFormatter', () => {
  const v = [video(800000), video(2500000)];

  it('writes the root of a live manifest (MinorVersion 0 by default: GStreamer mishandles live r runs)', () => {
    const doc = read(new SmoothManifestFormatter().render(snapshot([stream(v, run(T0, 20_000_000n, 3))], { lookahead: 3, dvrWindowLength: 1_200_000_000n })));
    expect(doc.SmoothStreamingMedia).toMatchObject({
      MajorVersion: '2',
      MinorVersion: '0',
      TimeScale: '10000000',
      Duration: '0',
      IsLive: 'TRUE',
      LookAheadFragmentCount: '3',
      DVRWindowLength: '1200000000',
    });
    expect(doc.SmoothStreamingMedia).not.toHaveProperty('LookaheadCount');
  });

  it('writes DVRWindowLength 0 (infinite) and LookAheadFragmentCount 0 when so configured', () => {
    const doc = read(new SmoothManifestFormatter().render(snapshot([stream(v, [])], { lookahead: 0, dvrWindowLength: 0n })));
    expect(doc.SmoothStreamingMedia).toMatchObject({ IsLive: 'TRUE', LookAheadFragmentCount: '0', DVRWindowLength: '0' });
  });

  it('omits the live attributes when not live, and writes Duration', () => {
    const doc = read(new SmoothManifestFormatter().render(snapshot([stream(v, run(0n, 20n, 2))], { isLive: false, duration: 40n })));
    expect(doc.SmoothStreamingMedia.Duration).toBe('40');
    for (const name of ['IsLive', 'LookAheadFragmentCount', 'DVRWindowLength']) expect(doc.SmoothStreamingMedia).not.toHaveProperty(name);
  });

  it('has the Smooth Streaming content type', () => {
    expect(new SmoothManifestFormatter().contentType).toBe('application/vnd.ms-sstr+xml; charset=utf-8');
  });

  it('writes StreamIndex and QualityLevel attributes', () => {
    const text = new SmoothManifestFormatter().render(snapshot([stream(v, run(T0, 20_000_000n, 5)), stream([audio()], run(T0, 20_053_333n, 4))]));
    const [vi, ai] = read(text).SmoothStreamingMedia.StreamIndex;
    expect(vi).toMatchObject({
      Type: 'video',
      Name: 'video',
      Subtype: '',
      Chunks: '5',
      QualityLevels: '2',
      TimeScale: '10000000',
      MaxWidth: '2500',
      MaxHeight: '1250',
      DisplayWidth: '2500',
      DisplayHeight: '1250',
      Url: 'QualityLevels({bitrate})/Fragments(video={start time})',
    });
    expect(vi).not.toHaveProperty('Language');
    expect(vi!.QualityLevel.map((q) => [q.Index, q.Bitrate, q.MaxWidth, q.NALUnitLengthField])).toEqual([
      ['0', '800000', '800', '4'],
      ['1', '2500000', '2500', '4'],
    ]);
    expect(vi!.QualityLevel[0]!.CodecPrivateData).toMatch(/^00000001/);
    expect(ai).toMatchObject({ Type: 'audio', Name: 'audio', Language: 'eng', Chunks: '4', Url: 'QualityLevels({bitrate})/Fragments(audio={start time})' });
    expect(ai).not.toHaveProperty('MaxWidth');
    expect(ai!.QualityLevel[0]).toEqual({
      Index: '0',
      Bitrate: '96000',
      FourCC: 'AACL',
      CodecPrivateData: '1190',
      SamplingRate: '48000',
      Channels: '2',
      BitsPerSample: '16',
      PacketSize: '4',
      AudioTag: '255',
    });
  });

  describe('timeline', () => {
    // `r` runs are asserted on on-demand snapshots; whether a *live* manifest uses them is a client
    // compatibility decision (GStreamer), so live timelines are checked by expanding them instead.
    const vod = { isLive: false, duration: 100_000_000n };

    it('writes one c with r for a contiguous run of equal durations (MinorVersion 2)', () => {
      const doc = read(new SmoothManifestFormatter({ minorVersion: 2 }).render(snapshot([stream(v, run(T0, 20_000_000n, 5))], vod)));
      expect(doc.SmoothStreamingMedia.MinorVersion).toBe('2');
      expect(doc.SmoothStreamingMedia.StreamIndex[0]!.c).toEqual([{ t: '17640000000000001', d: '20000000', r: '5' }]);
    });

    it.each([
      ['live', {}],
      ['on demand', vod],
    ])('writes one c per fragment and no r with MinorVersion 0 (%s)', (_name, over) => {
      const text = new SmoothManifestFormatter({ minorVersion: 0 }).render(snapshot([stream(v, run(T0, 20_000_000n, 3))], over));
      const doc = read(text);
      expect(doc.SmoothStreamingMedia.MinorVersion).toBe('0');
      expect(doc.SmoothStreamingMedia.StreamIndex[0]!.c).toEqual([{ t: '17640000000000001', d: '20000000' }, { d: '20000000' }, { d: '20000000' }]);
      expect(text).not.toMatch(/ r="/);
    });

    it('lists a live timeline exactly, with t on the first c and d on every c (MinorVersion 2)', () => {
      const f = [...run(T0, 20_000_000n, 4), ...run(T0 + 200_000_000n, 20_000_000n, 2)];
      const doc = read(new SmoothManifestFormatter({ minorVersion: 2 }).render(snapshot([stream(v, f)])));
      expect(doc.SmoothStreamingMedia.MinorVersion).toBe('2');
      const c = doc.SmoothStreamingMedia.StreamIndex[0]!.c!;
      expect(c[0]!.t).toBe('17640000000000001');
      expect(expand(c)).toEqual(f);
      expect(c.filter((x) => x.t !== undefined).map((x) => x.t)).toEqual(['17640000000000001', '17640000200000001']);
    });

    it('puts t on the first c and after a gap, d on every c, and breaks runs at a new duration', () => {
      const f = [
        ...run(T0, 20_000_000n, 2),
        { time: T0 + 40_000_000n, duration: 19_999_999n }, // contiguous, other duration
        ...run(T0 + 100_000_000n, 20_000_000n, 3), // after a gap
      ];
      const c2 = read(new SmoothManifestFormatter({ minorVersion: 2 }).render(snapshot([stream(v, f)], vod))).SmoothStreamingMedia.StreamIndex[0]!.c;
      expect(c2).toEqual([
        { t: '17640000000000001', d: '20000000', r: '2' },
        { d: '19999999' },
        { t: '17640000100000001', d: '20000000', r: '3' },
      ]);
      const c0 = read(new SmoothManifestFormatter({ minorVersion: 0 }).render(snapshot([stream(v, f)]))).SmoothStreamingMedia.StreamIndex[0]!.c;
      expect(c0).toEqual([
        { t: '17640000000000001', d: '20000000' },
        { d: '20000000' },
        { d: '19999999' },
        { t: '17640000100000001', d: '20000000' },
        { d: '20000000' },
        { d: '20000000' },
      ]);
    });

    it('writes an explicit t when a fragment overlaps the previous one', () => {
      const f = [{ time: 100n, duration: 20n }, { time: 110n, duration: 20n }];
      const c = read(new SmoothManifestFormatter().render(snapshot([stream(v, f)]))).SmoothStreamingMedia.StreamIndex[0]!.c;
      expect(c).toEqual([{ t: '100', d: '20' }, { t: '110', d: '20' }]);
    });

    it('writes t="0" on a first fragment at 0 and negative times as they are', () => {
      const c = read(new SmoothManifestFormatter().render(snapshot([stream([audio()], [{ time: -213_333n, duration: 10_240_000n }, { time: 10_026_667n, duration: 10n }])])))
        .SmoothStreamingMedia.StreamIndex[0]!.c;
      expect(c).toEqual([{ t: '-213333', d: '10240000' }, { d: '10' }]);
      const z = read(new SmoothManifestFormatter().render(snapshot([stream(v, run(0n, 5n, 1))]))).SmoothStreamingMedia.StreamIndex[0]!.c;
      expect(z).toEqual([{ t: '0', d: '5' }]);
    });

    it('writes no c for an empty timeline', () => {
      const si = read(new SmoothManifestFormatter().render(snapshot([stream(v, [])]))).SmoothStreamingMedia.StreamIndex[0]!;
      expect(si.c).toBeUndefined();
      expect(si.Chunks).toBe('0');
    });

    it('round-trips random timelines exactly, live and on demand, with both minor versions (times above 2^53)', () => {
      let seed = 12345;
      const random = (n: number): number => {
        seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
        return seed % n;
      };
      for (let round = 0; round < 20; round++) {
        const f: FragmentTime[] = [];
        let t = T0 + BigInt(random(1000));
        for (let i = 0; i < 40; i++) {
          const d = [20_000_000n, 20_000_000n, 20_000_000n, 19_999_999n][random(4)]!;
          f.push({ time: t, duration: d });
          t += d + (random(10) === 0 ? BigInt(1 + random(50_000_000)) : 0n);
        }
        for (const [minorVersion, isLive] of [[0, true], [2, true], [2, false]] as const) {
          const doc = read(new SmoothManifestFormatter({ minorVersion }).render(snapshot([stream(v, f)], { isLive })));
          const si = doc.SmoothStreamingMedia.StreamIndex[0]!;
          expect(expand(si.c!)).toEqual(f);
          expect(si.c![0]!.t).toBeDefined();
          expect(si.Chunks).toBe('40');
        }
      }
    });
  });

  describe('escaping', () => {
    const hostile = `x" onload="alert(1)' & <y> \u0001\u001f`;

    it('escapes hostile language and subtype strings so they parse back verbatim (minus control characters)', () => {
      const a = audio({ subtype: hostile, language: hostile });
      const text = new SmoothManifestFormatter().render(snapshot([stream([a], run(0n, 10n, 1))]));
      expect(text).not.toContain('onload="');
      const si = read(text).SmoothStreamingMedia.StreamIndex[0]!;
      expect(si.Subtype).toBe(`x" onload="alert(1)' & <y> `);
      expect(si.Language).toBe(`x" onload="alert(1)' & <y> `);
    });

    it('escapes FourCC, CodecPrivateData and custom attribute names and values', () => {
      const q = video(1, { fourCC: 'A"&<', codecPrivateData: '<>', customAttributes: [['N"', 'V<&']] });
      const text = new SmoothManifestFormatter().render(snapshot([stream([q], [])]));
      expect(XMLValidator.validate(text)).toBe(true);
      expect(text).toContain('FourCC="A&quot;&amp;&lt;"');
      expect(text).toContain('<Attribute Name="N&quot;" Value="V&lt;&amp;"/>');
    });
  });

  describe('custom attributes', () => {
    it('writes CustomAttributes and {CustomAttributes} in the Url when a QualityLevel has them', () => {
      const a = video(307200, { customAttributes: [['Compatibility', 'Handheld']] });
      const b = video(307200, { customAttributes: [['Compatibility', 'Desktop'], ['Profile', 'High']] });
      const si = read(new SmoothManifestFormatter().render(snapshot([stream([a, b], run(0n, 20n, 1))]))).SmoothStreamingMedia.StreamIndex[0]!;
      expect(si.Url).toBe('QualityLevels({bitrate},{CustomAttributes})/Fragments(video={start time})');
      expect(si.QualityLevel[0]!.CustomAttributes!.Attribute).toEqual([{ Name: 'Compatibility', Value: 'Handheld' }]);
      expect(si.QualityLevel[1]!.CustomAttributes!.Attribute).toEqual([
        { Name: 'Compatibility', Value: 'Desktop' },
        { Name: 'Profile', Value: 'High' },
      ]);
    });

    it('writes neither when no QualityLevel has custom attributes', () => {
      const text = new SmoothManifestFormatter().render(snapshot([stream(v, run(0n, 20n, 1))]));
      expect(text).not.toContain('CustomAttributes');
    });

    it('writes {CustomAttributes} for the whole StreamIndex when only one level has them', () => {
      const si = read(new SmoothManifestFormatter().render(snapshot([stream([video(1), video(2, { customAttributes: [['A', 'b']] })], [])])))
        .SmoothStreamingMedia.StreamIndex[0]!;
      expect(si.Url).toContain('{CustomAttributes}');
      expect(si.QualityLevel[0]!.CustomAttributes).toBeUndefined();
    });
  });
});
