import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseMovieFragment } from '../../../lib/ingest/fragment';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import {
  TFHD,
  TRUN,
  UUID_TFRF,
  UUID_TFXD,
  parseMfhd,
  parseTfdt,
  parseTfhd,
  parseTfrf,
  parseTfxd,
  parseTrun,
} from '../../../lib/mp4/boxes';
import { Box, BoxReader, childrenOf } from '../../../lib/mp4/reader';
import { FragmentSource as PackSource, packFragment } from '../../../lib/media';
import type { FragmentTime } from '../../../lib/model';
import { smoothFragment } from '../../../lib/package/smooth';
import { NON_SYNC, SYNC, box, payload, uuidBox } from '../../helpers/fmp4';

const FIXTURE = readFileSync(path.join(__dirname, '../../fixtures/ffmpeg-push-all.bin'));

/** A fragment as ingest hands it over: samples, passthrough boxes, sample bytes in pieces, an ingested tfdt. */
type FragmentSource = PackSource & { samples: PackSource['samples'] & Array<{ duration: number; size: number; flags: number; compositionOffset: number }>; decodeTime: bigint | undefined };

/**
 * The whole Smooth response for `src`, as a client receives it: the fragment is stored (its one copy),
 * then packaged with `time`/`duration` in its tfxd and `lookahead` in its tfrf; header and sample
 * bytes concatenated.
 */
function writeFragment(src: FragmentSource, time: bigint, duration: bigint, lookahead: FragmentTime[] | undefined): { data: Buffer; moofSize: number } {
  const stored = packFragment(src, {
    time,
    duration,
    presentationTime: time,
    decodeTime: src.decodeTime ?? 0n,
    decodeTimeSent: src.decodeTime !== undefined,
    storedAt: 0,
  });
  const { head, moofSize } = smoothFragment(stored, lookahead);
  return { data: Buffer.concat([head, stored.data]), moofSize };
}

function source(over: Partial<FragmentSource> = {}): FragmentSource {
  const data = [payload(300, 1), payload(50, 2), payload(75, 3)];
  return {
    trackId: 1,
    sequenceNumber: 42,
    sampleDescriptionIndex: undefined,
    decodeTime: undefined,
    samples: [
      { duration: 400000, size: 300, flags: SYNC, compositionOffset: 0 },
      { duration: 400000, size: 50, flags: NON_SYNC, compositionOffset: 0 },
      { duration: 400001, size: 75, flags: NON_SYNC, compositionOffset: 0 },
    ],
    data,
    dataSize: 425,
    extra: [],
    ...over,
  };
}

/** Splits a written fragment back into boxes and parses what a client reads. */
function reparse(out: { data: Buffer; moofSize: number }) {
  const reader = new BoxReader({ maxBoxSize: 1 << 24 });
  const top = [...reader.push(out.data), ...reader.end()];
  expect(top.map((b) => b.type)).toEqual(['moof', 'mdat']);
  const [moof, mdat] = top as [Box, Box];
  expect(moof.data.length).toBe(out.moofSize);
  const moofChildren = [...childrenOf(moof)];
  expect(moofChildren.map((c) => c.type)).toEqual(['mfhd', 'traf']);
  const traf = moofChildren[1]!;
  const trafChildren = [...childrenOf(traf)];
  const tfhd = parseTfhd(trafChildren.find((c) => c.type === 'tfhd')!);
  const truns = trafChildren.filter((c) => c.type === 'trun').map(parseTrun);
  const tfxdBox = trafChildren.find((c) => c.type === 'uuid' && c.uuid === UUID_TFXD);
  const tfrfBox = trafChildren.find((c) => c.type === 'uuid' && c.uuid === UUID_TFRF);
  const tfdtBox = trafChildren.find((c) => c.type === 'tfdt');
  return {
    moof,
    mdat,
    sequenceNumber: parseMfhd(moofChildren[0]!),
    trafChildren,
    tfhd,
    truns,
    tfxd: tfxdBox && parseTfxd(tfxdBox),
    tfxdVersion: tfxdBox?.data[24],
    tfrf: tfrfBox && parseTfrf(tfrfBox),
    tfdt: tfdtBox && parseTfdt(tfdtBox),
    payload: mdat.data.subarray(mdat.headerSize),
  };
}

describe('smoothFragment (a stored fragment as a Smooth response)', () => {
  const time = 17_640_000_000_000_001n;
  const lookahead = [
    { time: 17_640_000_001_200_002n, duration: 1_200_001n },
    { time: 17_640_000_002_400_003n, duration: 1_199_999n },
  ];

  it('writes one moof (mfhd + one traf) and one mdat', () => {
    const r = reparse(writeFragment(source(), time, 1_200_001n, lookahead));
    expect(r.sequenceNumber).toBe(42);
    expect(r.trafChildren.map((c) => c.type)).toEqual(['tfhd', 'trun', 'uuid', 'uuid']);
  });

  it('writes a tfhd without base-data-offset, default size or default duration', () => {
    const { tfhd } = reparse(writeFragment(source({ trackId: 3 }), time, 1_200_001n, lookahead));
    expect(tfhd.trackId).toBe(3);
    expect(tfhd.flags & (TFHD.BASE_DATA_OFFSET | TFHD.DEFAULT_SAMPLE_SIZE | TFHD.DEFAULT_SAMPLE_DURATION)).toBe(0);
    expect(tfhd.flags & TFHD.DEFAULT_BASE_IS_MOOF).toBe(0);
    expect(tfhd.baseDataOffset).toBeUndefined();
    expect(tfhd.defaultSampleSize).toBeUndefined();
    expect(tfhd.defaultSampleDuration).toBeUndefined();
  });

  it('keeps a sample description index', () => {
    const { tfhd } = reparse(writeFragment(source({ sampleDescriptionIndex: 2 }), time, 1n, undefined));
    expect(tfhd.flags).toBe(TFHD.SAMPLE_DESCRIPTION_INDEX);
    expect(tfhd.sampleDescriptionIndex).toBe(2);
  });

  it('points trun data_offset just past the mdat header (moof size + 8)', () => {
    const out = writeFragment(source(), time, 1_200_001n, lookahead);
    const { truns } = reparse(out);
    expect(truns).toHaveLength(1);
    expect(truns[0]!.dataOffset).toBe(out.moofSize + 8);
    expect(out.data.toString('latin1', out.moofSize + 4, out.moofSize + 8)).toBe('mdat');
  });

  it('writes every sample field in the trun', () => {
    const { truns } = reparse(writeFragment(source(), time, 1_200_001n, lookahead));
    const t = truns[0]!;
    expect(t.flags).toBe(TRUN.DATA_OFFSET | TRUN.SAMPLE_DURATION | TRUN.SAMPLE_SIZE | TRUN.SAMPLE_FLAGS);
    expect(t.samples).toEqual(source().samples);
  });

  it('writes composition offsets as version 0 when none is negative', () => {
    const samples = source().samples.map((s, i) => ({ ...s, compositionOffset: i * 400000 }));
    const { truns } = reparse(writeFragment(source({ samples }), time, 1n, undefined));
    expect(truns[0]!.version).toBe(0);
    expect(truns[0]!.flags & TRUN.SAMPLE_CTO).toBe(TRUN.SAMPLE_CTO);
    expect(truns[0]!.samples.map((s) => s.compositionOffset)).toEqual([0, 400000, 800000]);
  });

  it('writes signed composition offsets as version 1 when one is negative', () => {
    const samples = source().samples.map((s, i) => ({ ...s, compositionOffset: (i - 1) * 400000 }));
    const { truns } = reparse(writeFragment(source({ samples }), time, 1n, undefined));
    expect(truns[0]!.version).toBe(1);
    expect(truns[0]!.samples.map((s) => s.compositionOffset)).toEqual([-400000, 0, 400000]);
  });

  it('writes the tfxd time and duration as given, exact above 2^53, as version 1', () => {
    const r = reparse(writeFragment(source(), time, 1_200_001n, lookahead));
    expect(r.tfxdVersion).toBe(1);
    expect(r.tfxd).toEqual({ version: 1, time, duration: 1_200_001n });
  });

  it('keeps a negative tfxd time (AAC priming)', () => {
    expect(reparse(writeFragment(source(), -213_333n, 10_240_000n, undefined)).tfxd?.time).toBe(-213_333n);
  });

  it('writes the lookahead as a version 1 tfrf', () => {
    const r = reparse(writeFragment(source(), time, 1_200_001n, lookahead));
    expect(r.tfrf).toEqual(lookahead);
  });

  it('writes an empty tfrf for an empty lookahead, and none when lookahead is undefined', () => {
    expect(reparse(writeFragment(source(), time, 1n, [])).tfrf).toEqual([]);
    const r = reparse(writeFragment(source(), time, 1n, undefined));
    expect(r.tfrf).toBeUndefined();
    expect(r.trafChildren.filter((c) => c.type === 'uuid')).toHaveLength(1);
  });

  it('caps the tfrf at 255 entries (a one-byte count)', () => {
    const many = Array.from({ length: 300 }, (_, i) => ({ time: BigInt(i) * 10n, duration: 10n }));
    expect(reparse(writeFragment(source(), 0n, 10n, many)).tfrf).toEqual(many.slice(0, 255));
  });

  it('puts no non-uuid box after the tfxd, passthrough boxes before it', () => {
    const sdtp = box('sdtp', [0, 0, 0, 0, 0x20, 0x10, 0x10]);
    const piff = uuidBox('a2394f525a9b4f14a2446c427c648df4', [0, 0, 0, 0, 0, 0, 0, 0]);
    const r = reparse(writeFragment(source({ extra: [sdtp, piff], decodeTime: 99n }), time, 1n, lookahead));
    const types = r.trafChildren.map((c) => (c.type === 'uuid' ? c.uuid : c.type));
    expect(types).toEqual(['tfhd', 'tfdt', 'trun', 'sdtp', 'a2394f525a9b4f14a2446c427c648df4', UUID_TFXD, UUID_TFRF]);
    const at = types.indexOf(UUID_TFXD);
    expect(r.trafChildren.slice(at).every((c) => c.type === 'uuid')).toBe(true);
    expect(r.trafChildren[3]!.data).toEqual(sdtp);
    expect(r.tfdt).toBe(99n);
  });

  it('writes an mdat payload equal to the concatenated sample data', () => {
    const src = source();
    const out = writeFragment(src, time, 1n, lookahead);
    const r = reparse(out);
    expect(r.payload.equals(Buffer.concat(src.data))).toBe(true);
    expect(r.mdat.data.length).toBe(8 + src.dataSize);
    expect(out.data.length).toBe(out.moofSize + 8 + src.dataSize);
  });

  it('returns a fresh buffer, not a view into the sample data', () => {
    const src = source();
    const out = writeFragment(src, time, 1n, undefined);
    src.data[0]!.fill(0);
    expect(reparse(out).payload.subarray(0, 300).equals(payload(300, 1))).toBe(true);
  });

  it('round-trips through the ingest fragment parser', () => {
    const samples = source().samples.map((s, i) => ({ ...s, compositionOffset: (i - 1) * 400000 }));
    const src = source({ samples, sampleDescriptionIndex: 1, decodeTime: 5n });
    const out = writeFragment(src, time, 1_200_001n, lookahead);
    const r = reparse(out);
    const [parsed] = parseMovieFragment(r.moof, r.mdat, out.moofSize, () => undefined);
    expect({ ...parsed!, samples: parsed!.samples.toArray() }).toMatchObject({
      trackId: 1,
      sequenceNumber: 42,
      time,
      duration: 1_200_001n,
      sampleDescriptionIndex: 1,
      decodeTime: 5n,
      samples,
      dataSize: 425,
    });
    expect(Buffer.concat(parsed!.data).equals(Buffer.concat(src.data))).toBe(true);
  });

  it('rewrites every fragment of the fixture losslessly', () => {
    const parser = new SmoothIngestParser({ maxBoxSize: 1 << 24 });
    const events = [...parser.push(FIXTURE), ...parser.end()];
    let count = 0;
    for (const e of events) {
      if (e.type !== 'fragment') continue;
      const f = e.fragment;
      const samples = f.samples.toArray();
      const out = writeFragment({ ...f, samples }, f.time, f.duration, [{ time: f.time + f.duration, duration: f.duration }]);
      const r = reparse(out);
      expect(r.tfxd).toEqual({ version: 1, time: f.time, duration: f.duration });
      expect(r.truns[0]!.samples).toEqual(samples);
      expect(r.payload.equals(Buffer.concat(f.data))).toBe(true);
      count++;
    }
    expect(count).toBe(12);
  });
});
