/**
 * Movie headers rebuilt from a client manifest's QualityLevel (what a pulled point sends its own
 * point): for the captured ffmpeg push, a `moov` of synthesized `trak`/`trex` boxes, with a Live Server
 * Manifest and the Smooth `ftyp`, is taken by a fresh publishing point as the same tracks, even when the
 * Live Server Manifest names nothing but the tracks (the sample entries alone then describe them); its
 * init segments carry the same SPS/PPS and AudioSpecificConfig, and the fixture's fragments play under it
 * to the same manifest. AAC without CodecPrivateData gets an AAC-LC config from the rate and channels;
 * what a manifest cannot describe (HEVC, E-AC-3, text, incomplete H.264 data, a FourCC of another track
 * type) is refused with ERR_UNKNOWN_CODEC.
 */
import { resolveSettings } from '../../../lib/definition';
import { describeTracks } from '../../../lib/ingest/header';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import { smoothFtyp } from '../../../lib/ismv/header';
import { liveServerManifestBox, renderSmil } from '../../../lib/ismv/lsm';
import type { TrackHeader } from '../../../lib/media';
import type { TrackInfo } from '../../../lib/model';
import { parseMoov } from '../../../lib/mp4/boxes';
import type { MoovTrack } from '../../../lib/mp4/boxes';
import { children, findChild } from '../../../lib/mp4/reader';
import { synthesizeMvhd, synthesizeTrack } from '../../../lib/mp4/synth';
import { makeBox } from '../../../lib/mp4/writer';
import { resolveOptions } from '../../../lib/options';
import { PublishingPoint } from '../../../lib/point';
import { smoothErrorOf } from '../../helpers/errors';
import { lsmBox } from '../../helpers/fmp4';
import { fixture, lsmText } from '../../helpers/raw-ingest';

const F = fixture();

function point(): PublishingPoint {
  return new PublishingPoint('ch1.isml', resolveSettings([{ startOnFirstRequest: true }]), resolveOptions({ stateFile: false }));
}

function ingest(p: PublishingPoint, ...parts: Buffer[]): void {
  const session = p.openIngest('ch1', undefined, new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
  for (const part of parts) session.write(part);
}

/** The fixture's tracks as the origin describes them (TrackInfo and init segment), in manifest order. */
const original = (() => {
  const p = point();
  ingest(p, F.header);
  return { tracks: p.tracks, headers: p.headers };
})();

/** A moov of synthesized tracks, numbered by `ids` (1…n by default). */
function synthesizedMoov(tracks: readonly TrackInfo[], ids = tracks.map((_, i) => i + 1)): Buffer {
  const built = tracks.map((info, i) => synthesizeTrack(info, ids[i]!));
  return makeBox(
    'moov',
    synthesizeMvhd(tracks[0]!.timescale, Math.max(...ids) + 1),
    ...built.map((b) => b.trak),
    makeBox('mvex', ...built.map((b) => b.trex)),
  );
}

/** A complete stream header: Smooth ftyp, a Live Server Manifest describing everything, the synthesized moov. */
function synthesizedHeader(tracks: readonly TrackInfo[], ids = tracks.map((_, i) => i + 1)): Buffer {
  const lsm = liveServerManifestBox(tracks.map((info, i) => ({ trackId: ids[i]!, info })));
  return Buffer.concat([smoothFtyp(), lsm, synthesizedMoov(tracks, ids)]);
}

/** The sample entry of a track header's init segment (ftyp + moov of one track). */
function entryOf(h: TrackHeader): MoovTrack {
  const moov = [...children(h.init)].find((b) => b.type === 'moov')!;
  const tracks = parseMoov(moov).tracks;
  expect(tracks).toHaveLength(1);
  return tracks[0]!;
}

const byKey = (headers: readonly TrackHeader[], key: string): TrackHeader => headers.find((h) => h.key === key)!;

const video = (over: Partial<TrackInfo> = {}): TrackInfo => ({ ...original.tracks.find((t) => t.type === 'video')!, ...over });
const audio = (over: Partial<TrackInfo> = {}): TrackInfo => ({ ...original.tracks.find((t) => t.type === 'audio')!, ...over });

describe('round trip through a fresh publishing point', () => {
  it('the fixture has what the round trip must keep: two H.264 levels of different sizes and AAC', () => {
    expect(original.tracks.map((t) => `${t.type} ${t.fourCC} ${t.bitrate}`)).toEqual(['video H264 50000', 'video H264 100000', 'audio AACL 32000']);
    expect(new Set(original.tracks.map((t) => t.maxWidth)).size).toBe(3); // 96, 160, and none for audio
  });

  it('with a full Live Server Manifest: the same TrackInfo, and init segments with the same SPS/PPS and ASC', () => {
    const p = point();
    ingest(p, synthesizedHeader(original.tracks));
    expect(p.tracks).toEqual(original.tracks);
    for (const h of original.headers) {
      const mine = entryOf(byKey(p.headers, h.key));
      const theirs = entryOf(h);
      expect(mine.handler).toBe(theirs.handler);
      expect(mine.timescale).toBe(theirs.timescale);
      if (h.info.type === 'video') {
        expect(mine.entry).toMatchObject({ format: 'avc1', width: h.info.maxWidth, height: h.info.maxHeight });
        expect(mine.entry!.avc!.sps).toEqual(theirs.entry!.avc!.sps);
        expect(mine.entry!.avc!.pps).toEqual(theirs.entry!.avc!.pps);
        expect(mine.entry!.avc!.nalLengthSize).toBe(4);
        expect(mine.entry!.avc!.profileIndication).toBe(theirs.entry!.avc!.profileIndication);
      } else {
        // The Live Server Manifest says mono; ffmpeg's own mp4a says 2 channels. The synthesized one follows the manifest.
        expect(mine.entry).toMatchObject({ format: 'mp4a', channels: 1, sampleRate: 48000, sampleSize: 16, objectTypeIndication: 0x40 });
        expect(mine.entry!.audioSpecificConfig).toEqual(theirs.entry!.audioSpecificConfig);
        expect(mine.entry!.audioSpecificConfig!.toString('hex').toUpperCase()).toBe(h.info.codecPrivateData);
      }
    }
  });

  it('with a Live Server Manifest that names only the tracks: the synthesized sample entries alone give the same TrackInfo', () => {
    // The ingest takes FourCC, CodecPrivateData, sizes and audio format from the moov when the Live
    // Server Manifest lacks them: this is the test of the sample entries themselves.
    const smil = renderSmil(original.tracks.map((t, i) => ({ type: t.type, trackId: i + 1, bitrate: t.bitrate, params: [['trackName', t.name]] })));
    expect(smil).not.toMatch(/FourCC|CodecPrivateData|MaxWidth|Channels|SamplingRate/);
    const p = point();
    ingest(p, smoothFtyp(), lsmBox(smil), synthesizedMoov(original.tracks));
    expect(p.tracks).toEqual(original.tracks);
  });

  it("the fixture's fragments play under a synthesized header (tracks numbered as the encoder did) to the same manifest", () => {
    const moov = [...children(F.moov)][0]!;
    const described = describeTracks(lsmText(F.lsm), parseMoov(moov));
    const up = point();
    ingest(up, F.header, ...F.fragments, F.mfra);
    const p = point();
    ingest(
      p,
      synthesizedHeader(
        described.map((d) => d.info),
        described.map((d) => d.trackId),
      ),
      ...F.fragments,
      F.mfra,
    );
    expect(p.state).toBe('Stopped');
    expect(p.manifest().body.toString()).toBe(up.manifest().body.toString());
  });

  it('the mvhd: the movie timescale and the next track id given', () => {
    const mvhd = synthesizeMvhd(10_000_000, 4);
    const moov = [...children(makeBox('moov', mvhd))][0]!;
    expect(parseMoov(moov).timescale).toBe(10_000_000);
    expect(mvhd.readUInt32BE(mvhd.length - 4)).toBe(4); // next_track_ID, the box's last field
    expect(mvhd.length).toBe(108); // version 0: 8 header + 4 version/flags + 96
  });

  it('the trak and trex carry the track id given', () => {
    const { trak, trex } = synthesizeTrack(video(), 7);
    const moov = [...children(makeBox('moov', trak, makeBox('mvex', trex)))][0]!;
    const [t] = parseMoov(moov).tracks;
    expect(t).toMatchObject({ trackId: 7, handler: 'vide', timescale: 10_000_000, language: 'und' });
    expect(t!.trex).toMatchObject({ trackId: 7, defaultSampleDescriptionIndex: 1 });
  });
});

describe('sample entries from the QualityLevel', () => {
  /** The sample entry synthesizeTrack builds for `info`. */
  function entry(info: TrackInfo): MoovTrack['entry'] {
    const { trak } = synthesizeTrack(info, 1);
    const moov = [...children(makeBox('moov', trak))][0]!;
    return parseMoov(moov).tracks[0]!.entry;
  }

  it('AAC with empty CodecPrivateData gets an AAC-LC AudioSpecificConfig from SamplingRate and Channels', () => {
    // ISO 14496-3 §1.6.2.1: 5 bits object type (2, LC), 4 bits frequency index, 4 bits channel configuration.
    expect(entry(audio({ codecPrivateData: '', samplingRate: 44100, channels: 2 }))!.audioSpecificConfig!.toString('hex')).toBe('1210');
    expect(entry(audio({ codecPrivateData: '', samplingRate: 48000, channels: 1 }))!.audioSpecificConfig!.toString('hex')).toBe('1188');
    expect(entry(audio({ codecPrivateData: '', samplingRate: 8000, channels: 6 }))!.audioSpecificConfig!.toString('hex')).toBe('15b0');
    // …and the point then lists it as the manifest's CodecPrivateData.
    const p = point();
    const info = audio({ codecPrivateData: '', samplingRate: 44100, channels: 2 });
    ingest(p, synthesizedHeader([info]));
    expect(p.tracks[0]).toMatchObject({ fourCC: 'AACL', codecPrivateData: '1210', samplingRate: 44100, channels: 2 });
  });

  it('AAC without CodecPrivateData and without an AAC rate or channels is refused', () => {
    for (const over of [{ samplingRate: 44000 }, { samplingRate: undefined }, { channels: 0 }, { channels: 8 }, { channels: undefined }]) {
      const err = smoothErrorOf(() => synthesizeTrack(audio({ codecPrivateData: '', samplingRate: 44100, channels: 2, ...over }), 1));
      expect(err.code).toBe('ERR_UNKNOWN_CODEC');
      expect(err.message).toMatch(/no CodecPrivateData/);
    }
  });

  it('H.264 CodecPrivateData with three-byte start codes, and NALUnitLengthField 1 and 2', () => {
    const cpd = video().codecPrivateData.replace(/^00000001/, '000001').replace(/0000000168/, '00000168');
    const e = entry(video({ codecPrivateData: cpd, nalUnitLengthField: 2 }))!;
    expect(e.avc!.sps).toEqual(entryOf(original.headers[0]!).entry!.avc!.sps);
    expect(e.avc!.pps).toEqual(entryOf(original.headers[0]!).entry!.avc!.pps);
    expect(e.avc!.nalLengthSize).toBe(2);
    expect(entry(video({ nalUnitLengthField: 1 }))!.avc!.nalLengthSize).toBe(1);
  });

  it.each<[string, Partial<TrackInfo>, RegExp]>([
    ['HEVC', { fourCC: 'HVC1' }, /FourCC HVC1/],
    ['E-AC-3 audio', { type: 'audio', name: 'audio', fourCC: 'EC-3', codecPrivateData: '' }, /FourCC EC-3/],
    ['a text track', { type: 'text', name: 'textstream', fourCC: 'TTML', codecPrivateData: '' }, /FourCC TTML/],
    ['H.264 data without an SPS', { codecPrivateData: '0000000168CE3C80' }, /SPS and PPS/],
    ['H.264 data without a PPS', { codecPrivateData: video().codecPrivateData.replace(/0000000168CE3C80$/, '') }, /SPS and PPS/],
    ['no H.264 data at all', { codecPrivateData: '' }, /SPS and PPS/],
    ['NALUnitLengthField 3', { nalUnitLengthField: 3 }, /NALUnitLengthField 3/],
    ['an audio level with a video FourCC', { type: 'audio', name: 'audio', fourCC: 'H264', codecPrivateData: '1190', channels: 2, samplingRate: 44100 }, /FourCC H264/],
    ['a video level with an audio FourCC', { fourCC: 'AACL' }, /FourCC AACL/],
    ['AAC whose CodecPrivateData is one byte', { type: 'audio', name: 'audio', fourCC: 'AACL', codecPrivateData: '12' }, /AudioSpecificConfig/],
  ])('refuses %s with ERR_UNKNOWN_CODEC', (_name, over, message) => {
    const err = smoothErrorOf(() => synthesizeTrack(video(over), 1));
    expect(err.code).toBe('ERR_UNKNOWN_CODEC');
    expect(err.message).toMatch(message);
  });
});
