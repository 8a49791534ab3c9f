/**
 * Reading an upstream's client manifest for a pulled point (`parseUpstreamManifest`) and the fragment
 * URLs built from it (`fragmentPath`): the origin's own manifest of the captured ffmpeg push reads back
 * as the tracks and fragment times the origin holds (with one `c` per fragment and with `r` runs); `r`
 * counts the fragments of a run and a `c` without `t` continues the previous one; times stay exact
 * `bigint`s beyond 2^53. Everything that will reach this origin's manifests, URLs and store keys is
 * checked, and a manifest outside the bounds is refused with ERR_BAD_UPSTREAM, a huge `r` without
 * listing its fragments first.
 */
import { resolveSettings } from '../../../lib/definition';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import { SmoothManifestFormatter } from '../../../lib/manifest/smooth';
import type { TrackInfo } from '../../../lib/model';
import { resolveOptions } from '../../../lib/options';
import { PublishingPoint } from '../../../lib/point';
import { UPSTREAM_LIMITS, UpstreamStream, fragmentPath, parseUpstreamManifest } from '../../../lib/pull/manifest';
import { synthesizeTrack } from '../../../lib/mp4/synth';
import { smoothErrorOf } from '../../helpers/errors';
import { fixture } from '../../helpers/raw-ingest';

const F = fixture();

/** A point fed the whole fixture (ended by its mfra), as an upstream origin holds it. */
const origin = (() => {
  const p = new PublishingPoint('ch1.isml', resolveSettings([{ startOnFirstRequest: true }]), resolveOptions({ stateFile: false }));
  const session = p.openIngest('ch1', undefined, new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
  for (const part of [F.header, ...F.fragments, F.mfra]) session.write(part);
  return p;
})();

const URL_TEMPLATE = 'QualityLevels({bitrate})/Fragments(video={start time})';

/** A manifest with one video StreamIndex holding `inner` after one H.264 QualityLevel. */
function manifest(inner: string, streamAttrs = `Type="video" Name="video" Url="${URL_TEMPLATE}"`, root = ''): string {
  return `<?xml version="1.0"?><SmoothStreamingMedia MajorVersion="2" MinorVersion="2"${root}><StreamIndex ${streamAttrs}><QualityLevel Bitrate="1000" FourCC="H264" CodecPrivateData="00000001674D"/>${inner}</StreamIndex></SmoothStreamingMedia>`;
}

/** The message of the ERR_BAD_UPSTREAM `xml` is refused with. */
function refusal(xml: string): string {
  const err = smoothErrorOf(() => parseUpstreamManifest(xml));
  expect(err.code).toBe('ERR_BAD_UPSTREAM');
  expect(err.message).toMatch(/^upstream manifest: /);
  return err.message;
}

const times = (s: UpstreamStream): Array<[bigint, bigint]> => s.fragments.map((f) => [f.time, f.duration]);

describe("the origin's own manifest", () => {
  const snapshot = origin.snapshot();

  it('gives the tracks the origin holds (display sizes are per StreamIndex in a client manifest)', () => {
    const m = parseUpstreamManifest(origin.manifest().body.toString('utf8'));
    expect(m.isLive).toBe(true); // a stopped live point still says IsLive (its window is served)
    expect(m.lookahead).toBe(2);
    expect(m.streams.map((s) => [s.type, s.name, s.timescale, s.url])).toEqual([
      ['video', 'video', 10_000_000, 'QualityLevels({bitrate})/Fragments(video={start time})'],
      ['audio', 'audio', 10_000_000, 'QualityLevels({bitrate})/Fragments(audio={start time})'],
    ]);
    const read = m.streams.flatMap((s) => s.tracks);
    const held = origin.tracks;
    expect(read).toHaveLength(held.length);
    for (const [i, info] of held.entries()) {
      // The StreamIndex's DisplayWidth/Height (the largest level's) is all a client manifest says.
      const display: Partial<TrackInfo> =
        info.type === 'video' ? { displayWidth: Math.max(...held.map((t) => t.displayWidth ?? 0)), displayHeight: Math.max(...held.map((t) => t.displayHeight ?? 0)) } : {};
      expect(read[i]).toEqual({ ...info, ...display });
    }
  });

  it('gives the fragment times the origin lists, with one c per fragment and with r runs', () => {
    const expected = snapshot.streams.map((s) => s.fragments.map((f) => [f.time, f.duration]));
    expect(expected.flat().length).toBe(8);
    for (const minorVersion of [0, 2] as const) {
      const text = new SmoothManifestFormatter({ minorVersion }).render(snapshot);
      if (minorVersion === 2) expect(text).toMatch(/ r="\d+"/);
      const m = parseUpstreamManifest(text);
      expect(m.streams.map(times)).toEqual(expected);
    }
  });
});

describe('sparse StreamIndexes of the upstream', () => {
  it('are read with their gaps and events of duration 0, the rest of the manifest standing; their tracks cannot be rebuilt', () => {
    const sparse = `<StreamIndex Type="text" Name="ads" Subtype="DATA" ParentStreamIndex="video" ManifestOutput="TRUE" Url="QualityLevels({bitrate})/Fragments(ads={start time})"><QualityLevel Index="0" Bitrate="0" FourCC="DATA"/><c t="5" d="0"><f i="0">AAAA</f></c><c t="90" d="20"/></StreamIndex>`;
    const xml = manifest('<c t="0" d="10"/><c d="10"/>').replace('</SmoothStreamingMedia>', `${sparse}</SmoothStreamingMedia>`);
    const m = parseUpstreamManifest(xml);
    expect(m.streams.map((s) => [s.name, times(s)])).toEqual([
      ['video', [[0n, 10n], [10n, 10n]]],
      ['ads', [[5n, 0n], [90n, 20n]]],
    ]);
    // The puller leaves it out with the reason (its source status says "not pulled: ...").
    expect(() => synthesizeTrack(m.streams[1]!.tracks[0]!, 1)).toThrow();
    // Outside a sparse StreamIndex, a c without duration is still refused.
    expect(refusal(manifest('<c t="0" d="0"/>'))).toMatch(/no duration/);
  });
});

describe('c elements', () => {
  it('r counts the fragments of a run (the first included); a c without t continues where the previous one ended', () => {
    const m = parseUpstreamManifest(manifest('<c t="100" d="10" r="3"/><c d="7"/><c t="200" d="5"/><c d="5" r="2"/>'));
    expect(times(m.streams[0]!)).toEqual([
      [100n, 10n],
      [110n, 10n],
      [120n, 10n],
      [130n, 7n],
      [200n, 5n],
      [205n, 5n],
      [210n, 5n],
    ]);
  });

  it('a fragment may start before the previous one ends (AAC priming after an encoder restart)', () => {
    expect(times(parseUpstreamManifest(manifest('<c t="100" d="10" r="2"/><c t="115" d="10"/>')).streams[0]!)).toEqual([
      [100n, 10n],
      [110n, 10n],
      [115n, 10n],
    ]);
  });

  it('the first c without t starts at 0', () => {
    expect(times(parseUpstreamManifest(manifest('<c d="4"/><c d="4"/>')).streams[0]!)).toEqual([
      [0n, 4n],
      [4n, 4n],
    ]);
  });

  it('times above 2^53 stay exact', () => {
    const t = 2n ** 53n + 1n; // 9007199254740993: a double would read 9007199254740992
    const m = parseUpstreamManifest(manifest(`<c t="${t}" d="3" r="2"/><c d="1"/><c t="18446744073709551610" d="5"/>`));
    expect(times(m.streams[0]!)).toEqual([
      [t, 3n],
      [t + 3n, 3n],
      [t + 6n, 1n],
      [18446744073709551610n, 5n],
    ]);
  });

  it(`up to ${UPSTREAM_LIMITS.fragments} fragments are listed`, () => {
    const m = parseUpstreamManifest(manifest(`<c t="0" d="1" r="${UPSTREAM_LIMITS.fragments}"/>`));
    expect(m.streams[0]!.fragments).toHaveLength(UPSTREAM_LIMITS.fragments);
    expect(m.streams[0]!.fragments.at(-1)).toEqual({ time: BigInt(UPSTREAM_LIMITS.fragments - 1), duration: 1n });
  });

  it('a huge r is refused before its fragments are listed', () => {
    // Listing 2^32 − 1 fragments first would take minutes and tens of GB: the refusal comes at once.
    const push = jest.spyOn(Array.prototype, 'push');
    try {
      expect(refusal(manifest('<c t="0" d="1" r="4294967295"/>'))).toMatch(/more than 100000 fragments/);
      expect(push.mock.calls.length).toBeLessThan(1000);
    } finally {
      push.mockRestore();
    }
  });

  it.each<[string, string, RegExp]>([
    ['runs that add up to more than the limit', `<c t="0" d="1" r="60000"/><c d="1" r="60000"/>`, /more than 100000 fragments/],
    ['more c elements than the limit', '<c d="1"/>'.repeat(UPSTREAM_LIMITS.fragments + 1), /more than 100000 fragments/],
    ['times that go back', '<c t="100" d="10"/><c t="50" d="10"/>', /times go back at 50/],
    ['a fragment that starts where the one before starts', '<c t="100" d="10" r="2"/><c t="110" d="10"/>', /times go back at 110/],
    ['a c without d', '<c t="0"/>', /no duration/],
    ['d="0"', '<c t="0" d="0"/>', /no duration/],
    ['r="0"', '<c t="0" d="1" r="0"/>', /r="0"/],
    ['a negative t', '<c t="-1" d="1"/>', /t="-1" is not a valid time/],
    ['a t that is not a number', '<c t="1e9" d="1"/>', /t="1e9" is not a valid time/],
    ['a t of 21 digits', `<c t="${'9'.repeat(21)}" d="1"/>`, /is not a valid time/],
    ['an r that is not a number', '<c t="0" d="1" r="two"/>', /r="two" is not a valid number/],
  ])('refuses %s', (_name, inner, message) => {
    expect(refusal(manifest(inner))).toMatch(message);
  });
});

describe('refusals with ERR_BAD_UPSTREAM', () => {
  const level = '<QualityLevel Bitrate="1000" FourCC="H264"/>';
  const stream = (attrs: string, inner = level): string => `<StreamIndex ${attrs}>${inner}</StreamIndex>`;
  const doc = (...streams: string[]): string => `<SmoothStreamingMedia>${streams.join('')}</SmoothStreamingMedia>`;
  const ok = (name: string, type = 'video'): string => stream(`Type="${type}" Name="${name}" Url="QualityLevels({bitrate})/Fragments(${name}={start time})"`);

  it(`up to ${UPSTREAM_LIMITS.streams} StreamIndex elements`, () => {
    const names = Array.from({ length: UPSTREAM_LIMITS.streams }, (_, i) => `s${i}`);
    expect(parseUpstreamManifest(doc(...names.map((n) => ok(n)))).streams).toHaveLength(UPSTREAM_LIMITS.streams);
    expect(refusal(doc(...names.map((n) => ok(n)), ok('one_more')))).toMatch(/more than 32 StreamIndex/);
  });

  it.each<[string, string, RegExp]>([
    ['text that is not XML', '\u0000\u0001binary\u00ff<=', /not XML/],
    ['XML without SmoothStreamingMedia', '<MPD><Period/></MPD>', /no SmoothStreamingMedia/],
    ['an empty answer', '', /no SmoothStreamingMedia/],
    ['an HTML error page', '<html><body>502 Bad Gateway</body></html>', /no SmoothStreamingMedia/],
    ['a StreamIndex without Type', doc(stream(`Name="v" Url="${URL_TEMPLATE}"`)), /Type "" is not video, audio or text/],
    ['a StreamIndex of Type image', doc(stream(`Type="image" Name="v" Url="${URL_TEMPLATE}"`)), /Type "image"/],
    ['a Name that is not an identifier', doc(stream(`Type="video" Name="../x" Url="${URL_TEMPLATE}"`)), /Name "..\/x" is not a valid identifier/],
    ['a Name that starts with a digit', doc(stream(`Type="video" Name="1video" Url="${URL_TEMPLATE}"`)), /Name "1video"/],
    ['a Name with a space', doc(stream(`Type="video" Name="a b" Url="${URL_TEMPLATE}"`)), /Name "a b"/],
    ['two StreamIndex elements of one Name', doc(ok('video'), ok('video', 'audio')), /two StreamIndex elements are named "video"/],
    ['a Url without {bitrate}', doc(stream('Type="video" Name="v" Url="QualityLevels(1000)/Fragments(v={start time})"')), /Url .* is not a fragment template/],
    ['a Url without {start time}', doc(stream('Type="video" Name="v" Url="QualityLevels({bitrate})/Fragments(v=0)"')), /is not a fragment template/],
    ['no Url', doc(stream('Type="video" Name="v"')), /Url "" is not a fragment template/],
    ['a Url over 256 characters', doc(stream(`Type="video" Name="v" Url="${'x'.repeat(240)}/QualityLevels({bitrate})/Fragments(v={start time})"`)), /is not a fragment template/],
    ['TimeScale 0', doc(stream(`Type="video" Name="v" TimeScale="0" Url="${URL_TEMPLATE}"`)), /TimeScale 0/],
    ['a root TimeScale that is not a number', `<SmoothStreamingMedia TimeScale="ten"/>`, /TimeScale="ten"/],
    ['a StreamIndex without QualityLevel', doc(stream(`Type="video" Name="v" Url="${URL_TEMPLATE}"`, '')), /0 QualityLevels/],
    ['more than 32 QualityLevels', doc(stream(`Type="video" Name="v" Url="${URL_TEMPLATE}"`, level.repeat(33))), /33 QualityLevels/],
    ['a QualityLevel without Bitrate', doc(stream(`Type="video" Name="v" Url="${URL_TEMPLATE}"`, '<QualityLevel FourCC="H264"/>')), /has no Bitrate/],
    ['Bitrate 0', doc(stream(`Type="video" Name="v" Url="${URL_TEMPLATE}"`, '<QualityLevel Bitrate="0" FourCC="H264"/>')), /has no Bitrate/],
    ['a Bitrate over 32 bits', doc(stream(`Type="video" Name="v" Url="${URL_TEMPLATE}"`, '<QualityLevel Bitrate="4294967296" FourCC="H264"/>')), /Bitrate="4294967296"/],
    ['a FourCC that is not one', doc(stream(`Type="video" Name="v" Url="${URL_TEMPLATE}"`, '<QualityLevel Bitrate="1" FourCC="H 26"/>')), /FourCC "H 26"/],
    ['CodecPrivateData of odd length', doc(stream(`Type="video" Name="v" Url="${URL_TEMPLATE}"`, '<QualityLevel Bitrate="1" FourCC="H264" CodecPrivateData="ABC"/>')), /CodecPrivateData is not hex/],
    ['CodecPrivateData that is not hex', doc(stream(`Type="video" Name="v" Url="${URL_TEMPLATE}"`, '<QualityLevel Bitrate="1" FourCC="H264" CodecPrivateData="0x12"/>')), /CodecPrivateData is not hex/],
    ['CodecPrivateData over 4096 bytes', doc(stream(`Type="video" Name="v" Url="${URL_TEMPLATE}"`, `<QualityLevel Bitrate="1" FourCC="H264" CodecPrivateData="${'AB'.repeat(4097)}"/>`)), /CodecPrivateData is not hex/],
    [
      'a custom attribute whose name is not an identifier',
      doc(stream(`Type="video" Name="v" Url="${URL_TEMPLATE}"`, '<QualityLevel Bitrate="1" FourCC="H264"><CustomAttributes><Attribute Name="a,b" Value="1"/></CustomAttributes></QualityLevel>')),
      /custom attribute "a,b"/,
    ],
    [
      'a custom attribute whose value would break the URL',
      doc(stream(`Type="video" Name="v" Url="${URL_TEMPLATE}"`, '<QualityLevel Bitrate="1" FourCC="H264"><CustomAttributes><Attribute Name="hd" Value="a)/x"/></CustomAttributes></QualityLevel>')),
      /custom attribute "hd"/,
    ],
    [
      'a custom attribute without a value',
      doc(stream(`Type="video" Name="v" Url="${URL_TEMPLATE}"`, '<QualityLevel Bitrate="1" FourCC="H264"><CustomAttributes><Attribute Name="hd"/></CustomAttributes></QualityLevel>')),
      /custom attribute "hd"/,
    ],
    ['a MaxWidth that is not a number', doc(stream(`Type="video" Name="v" Url="${URL_TEMPLATE}"`, '<QualityLevel Bitrate="1" FourCC="H264" MaxWidth="-1"/>')), /MaxWidth="-1"/],
    ['Channels over 16 bits', doc(stream(`Type="audio" Name="a" Url="QualityLevels({bitrate})/Fragments(a={start time})"`, '<QualityLevel Bitrate="1" FourCC="AACL" Channels="65536"/>')), /Channels="65536"/],
  ])('refuses %s', (_name, xml, message) => {
    expect(refusal(xml)).toMatch(message);
  });

  it('entities beyond the XML parser’s expansion limit are refused as not XML', () => {
    const xml = `<?xml version="1.0"?><!DOCTYPE s [<!ENTITY a "${'x'.repeat(1000)}">]>${doc(stream(`Type="video" Name="v" Subtype="${'&a;'.repeat(200)}" Url="${URL_TEMPLATE}"`))}`;
    expect(refusal(xml)).toMatch(/not XML/);
  });
});

describe('what is kept', () => {
  it('custom attributes, Language, Subtype, sizes, audio format; a QualityLevel size wins over its StreamIndex', () => {
    const xml =
      '<SmoothStreamingMedia IsLive="true" LookAheadFragmentCount="3" TimeScale="1000">' +
      '<StreamIndex Type="video" Name="cam" Language="en-GB" Subtype="AVC1" MaxWidth="1280" MaxHeight="720" Url="QualityLevels({bitrate},{CustomAttributes})/Fragments(cam={start time})">' +
      '<QualityLevel Bitrate="500000" FourCC="avc1" CodecPrivateData="00000001674d" MaxWidth="640" MaxHeight="360" NALUnitLengthField="2"><CustomAttributes><Attribute Name="angle" Value="wide"/><Attribute Name="hd" Value="0"/></CustomAttributes></QualityLevel>' +
      '<QualityLevel Bitrate="900000" FourCC="AVC1"/>' +
      '</StreamIndex>' +
      '<StreamIndex Type="audio" Name="sound" Language="und!" TimeScale="48000" Url="QualityLevels({bitrate})/Fragments(sound={start_time})">' +
      '<QualityLevel Bitrate="64000" FourCC="AACL" SamplingRate="48000" Channels="2" BitsPerSample="16" PacketSize="4" AudioTag="255"/>' +
      '</StreamIndex></SmoothStreamingMedia>';
    const m = parseUpstreamManifest(xml);
    expect(m).toMatchObject({ isLive: true, lookahead: 3 });
    const [cam, sound] = m.streams;
    expect(cam!.timescale).toBe(1000); // the root's
    expect(cam!.tracks[0]).toEqual({
      type: 'video',
      name: 'cam',
      bitrate: 500000,
      customAttributes: [
        ['angle', 'wide'],
        ['hd', '0'],
      ],
      fourCC: 'AVC1', // upper case, as ingest writes it
      codecPrivateData: '00000001674D',
      timescale: 1000,
      subtype: 'AVC1',
      language: 'en-GB',
      maxWidth: 640,
      maxHeight: 360,
      displayWidth: 640,
      displayHeight: 360,
      nalUnitLengthField: 2,
    });
    expect(cam!.tracks[1]).toMatchObject({ maxWidth: 1280, maxHeight: 720, nalUnitLengthField: 4, customAttributes: [] });
    expect(sound!.tracks[0]).toMatchObject({ type: 'audio', timescale: 48000, language: undefined, samplingRate: 48000, channels: 2, bitsPerSample: 16, packetSize: 4, audioTag: 255 });
    expect(sound!.tracks[0]!.maxWidth).toBeUndefined();
  });

  it('a finished presentation (no IsLive) and one without streams', () => {
    expect(parseUpstreamManifest('<SmoothStreamingMedia Duration="100"/>')).toEqual({ isLive: false, lookahead: 0, streams: [] });
  });
});

describe('fragmentPath', () => {
  const m = parseUpstreamManifest(
    '<SmoothStreamingMedia>' +
      '<StreamIndex Type="video" Name="cam" Url="QualityLevels({bitrate},{CustomAttributes})/Fragments(cam={start time})">' +
      '<QualityLevel Bitrate="500000" FourCC="H264"><CustomAttributes><Attribute Name="angle" Value="wide"/><Attribute Name="hd" Value="1"/></CustomAttributes></QualityLevel>' +
      '</StreamIndex>' +
      '<StreamIndex Type="audio" Name="sound" Url="QualityLevels({Bitrate})/Fragments(sound={start_time})"><QualityLevel Bitrate="64000" FourCC="AACL"/></StreamIndex>' +
      '</SmoothStreamingMedia>',
  );
  const [cam, sound] = m.streams;

  it('fills {bitrate}, {CustomAttributes} (name=value, comma separated) and {start time}', () => {
    expect(fragmentPath(cam!, cam!.tracks[0]!, 123n)).toBe('QualityLevels(500000,angle=wide,hd=1)/Fragments(cam=123)');
  });

  it('accepts the {start_time} spelling and any case of the placeholders', () => {
    expect(fragmentPath(sound!, sound!.tracks[0]!, 0n)).toBe('QualityLevels(64000)/Fragments(sound=0)');
  });

  it('writes a time above 2^53 exactly', () => {
    expect(fragmentPath(sound!, sound!.tracks[0]!, 2n ** 63n + 7n)).toBe('QualityLevels(64000)/Fragments(sound=9223372036854775815)');
  });

  it("the origin's own template gives the URLs the origin answers", () => {
    const own = parseUpstreamManifest(origin.manifest().body.toString('utf8'));
    const [video] = own.streams;
    const path = fragmentPath(video!, video!.tracks[1]!, 10_000_000n);
    expect(path).toBe('QualityLevels(100000)/Fragments(video=10000000)');
    expect(origin.lookup('video', 100000, [], 10_000_000n).status).toBe('ok');
  });
});
