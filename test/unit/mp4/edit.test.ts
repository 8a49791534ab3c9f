/**
 * Box editing for the simulated encoder: re-timing a moof (tfxd v0 → v1, tfdt shift, renumbering) keeps
 * the samples reachable and never writes into its input; track ids in tkhd/trex; the empty mfra.
 */
import { parseMovieFragment } from '../../../lib/ingest/fragment';
import { UUID_TFXD, parseMfhd, parseTfdt, parseTfhd, parseTfxd } from '../../../lib/mp4/boxes';
import { emptyMfra, renumberTrak, retimeMoof, withTrackId } from '../../../lib/mp4/edit';
import { makeBox, tfxdBox } from '../../../lib/mp4/writer';
import { Box, children, childrenOf, findChild } from '../../../lib/mp4/reader';
import {
  box,
  cat,
  fullBox,
  mdat,
  mfhd,
  moof,
  payload,
  selfOffsetFragment,
  tfdt,
  tfhd,
  tfrf,
  tfxd,
  tkhd,
  traf,
  trak,
  trex,
  trun,
  u32,
} from '../../helpers/fmp4';

function boxes(buf: Buffer): Box[] {
  return [...children(buf)];
}

/** A one-traf fragment with a tfxd of the given version, a tfdt, an sdtp and a stale tfrf. */
function sourceFragment(version: 0 | 1): { moof: Box; mdat: Box; samples: Buffer[] } {
  const samples = [payload(300, 1), payload(120, 2), payload(80, 3)];
  const bytes = selfOffsetFragment(
    (dataOffset) => [
      mfhd(7),
      traf(
        tfhd({ trackId: 3, defaultSampleFlags: 0x01010000 }),
        tfdt(1000),
        trun({ dataOffset, samples: samples.map((s) => ({ duration: 3333, size: s.length })) }),
        box('sdtp', [0, 0, 0, 0, 0x20, 0x10, 0x10]),
        tfxd(1000, 9999, version),
        tfrf([{ time: 10999, duration: 9999 }]),
      ),
    ],
    ...samples,
  );
  const [m, d] = boxes(bytes);
  return { moof: m!, mdat: d!, samples };
}

function trafOf(m: Box): Box {
  return findChild(m, 'traf')!;
}

describe('retimeMoof', () => {
  it.each([0, 1] as const)('rewrites a tfxd v%i as v1 and moves data offsets by the size change', (version) => {
    const src = sourceFragment(version);
    const before = Buffer.from(src.moof.data);
    const huge = 17_956_095_395_720_001n; // beyond 2^53 and odd: not a double
    const out = retimeMoof(src.moof, { time: huge, duration: 20_000_000n, decodeTimeShift: huge - 1000n, trackId: 1, sequenceNumber: 42 });
    expect(src.moof.data.equals(before)).toBe(true); // input untouched
    const m = boxes(out)[0]!;
    const t = trafOf(m);
    const x = parseTfxd(findChild(t, 'uuid', UUID_TFXD)!);
    expect(x).toEqual({ version: 1, time: huge, duration: 20_000_000n });
    expect(parseTfdt(findChild(t, 'tfdt')!)).toBe(huge);
    expect(parseTfhd(findChild(t, 'tfhd')!).trackId).toBe(1);
    expect(parseMfhd(findChild(m, 'mfhd')!)).toBe(42);
    expect([...childrenOf(t)].map((c) => c.type)).toEqual(['tfhd', 'tfdt', 'trun', 'sdtp', 'uuid']); // tfrf dropped
    // The samples are still where trun says, with the original mdat right after the new moof.
    const [parsed] = parseMovieFragment(m, src.mdat, m.data.length, () => undefined);
    expect(Buffer.concat(parsed!.data).equals(Buffer.concat(src.samples))).toBe(true);
    expect(parsed!.time).toBe(huge);
  });

  it('adds a tfxd when the traf has none and keeps negative times as two’s complement', () => {
    const samples = [payload(10, 1)];
    const [m, d] = boxes(
      selfOffsetFragment((dataOffset) => [mfhd(1), traf(tfhd({ trackId: 1 }), trun({ dataOffset, samples: [{ duration: 5, size: 10, flags: 0x02000000 }] }))], ...samples),
    );
    const out = boxes(retimeMoof(m!, { time: -213_333n, duration: 5n }))[0]!;
    expect(parseTfxd(findChild(trafOf(out), 'uuid', UUID_TFXD)!).time).toBe(-213_333n);
    const [parsed] = parseMovieFragment(out, d!, out.data.length, () => undefined);
    expect(parsed!.data[0]!.equals(samples[0]!)).toBe(true);
  });

  it('subtracts the bytes that sat between moof and mdat (dataOffsetDelta)', () => {
    const samples = [payload(40, 9)];
    const gap = box('free', [1, 2, 3, 4]);
    // data_offset counts from the moof start, past the free box and the mdat header.
    const build = (off: number) => moof(mfhd(1), traf(tfhd({ trackId: 1 }), trun({ dataOffset: off, samples: [{ duration: 5, size: 40, flags: 0 }] }), tfxd(0, 5)));
    const size = build(0).length;
    const file = cat(build(size + gap.length + 8), gap, mdat(...samples));
    const [m, , d] = boxes(file);
    const out = boxes(retimeMoof(m!, { time: 100n, duration: 5n, dataOffsetDelta: -gap.length }))[0]!;
    const [parsed] = parseMovieFragment(out, d!, out.data.length, () => undefined);
    expect(parsed!.data[0]!.equals(samples[0]!)).toBe(true);
  });

  it('refuses several trafs and base-data-offset', () => {
    const two = boxes(moof(mfhd(1), traf(tfhd({ trackId: 1 })), traf(tfhd({ trackId: 2 }))))[0]!;
    expect(() => retimeMoof(two, { time: 0n, duration: 1n })).toThrow(/several trafs/);
    const based = boxes(moof(mfhd(1), traf(tfhd({ trackId: 1, baseDataOffset: 0 }), tfxd(0, 1))))[0]!;
    expect(() => retimeMoof(based, { time: 0n, duration: 1n })).toThrow(/base-data-offset/);
  });
});

describe('track ids and small boxes', () => {
  it('sets track_ID in tkhd v0/v1, trex and inside a trak (dropping tref)', () => {
    for (const version of [0, 1] as const) {
      const t = boxes(tkhd(5, { version }))[0]!;
      const out = boxes(withTrackId(t, 9))[0]!;
      expect(out.data.readUInt32BE(out.headerSize + 4 + (version ? 16 : 8))).toBe(9);
      expect(t.data.readUInt32BE(t.headerSize + 4 + (version ? 16 : 8))).toBe(5);
    }
    const x = boxes(withTrackId(boxes(trex(4))[0]!, 2))[0]!;
    expect(x.data.readUInt32BE(x.headerSize + 4)).toBe(2);
    const original = trak({ trackId: 4, handler: 'vide', timescale: 10_000_000 });
    const withTref = Buffer.concat([original, box('tref', box('chap', u32(1)))]);
    withTref.writeUInt32BE(withTref.length, 0);
    const renumbered = boxes(renumberTrak(boxes(withTref)[0]!, 1))[0]!;
    expect([...childrenOf(renumbered)].map((c) => c.type)).toEqual(['tkhd', 'mdia']);
    expect(withTrackId(findChild(renumbered, 'tkhd')!, 1).equals(findChild(renumbered, 'tkhd')!.data)).toBe(true);
  });

  it('writes an 8-byte empty mfra, FullBoxes and v1 tfxd', () => {
    expect(emptyMfra().equals(Buffer.from('000000086d667261', 'hex'))).toBe(true);
    expect(makeBox('free').length).toBe(8);
    expect(fullBox('tfdt', 1, 0, u32(0), u32(5)).equals(makeBox('tfdt', u32(0x01000000), u32(0), u32(5)))).toBe(true);
    expect(tfxdBox(5n, 6n).equals(tfxd(5, 6, 1))).toBe(true);
  });
});
