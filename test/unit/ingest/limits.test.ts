/**
 * Ingest input whose cost would not follow the bytes sent: sample counts that the received bytes do not
 * back, sample data described twice, Live Server Manifest boxes that are huge, deeply nested, attribute
 * lists, or NUL runs. Each is refused with a reason, in time and memory bounded by the input, and the
 * same way for any split of the input.
 */
import { SmoothError } from '../../../lib/errors';
import { MAX_FRAGMENT_SAMPLES } from '../../../lib/ingest/fragment';
import { LSM_LIMITS, parseLiveServerManifest } from '../../../lib/ingest/header';
import { MAX_LSM_BOX_SIZE, SmoothIngestParser } from '../../../lib/ingest/smooth';
import type { IngestEvent } from '../../../lib/ingest/types';
import { packFragment } from '../../../lib/media';
import { liveServerManifestText } from '../../../lib/mp4/boxes';
import { BoxReader } from '../../../lib/mp4/reader';
import { smoothFragment } from '../../../lib/package/smooth';
import {
  TrackSpec,
  cat,
  fragment,
  ftyp,
  fullBox,
  i32,
  ingestHeader,
  lsmBox,
  lsmSmil,
  mfhd,
  moov,
  payload,
  selfOffsetFragment,
  tfhd,
  tfxd,
  traf,
  trun,
  u32,
  zeros,
} from '../../helpers/fmp4';

const MAX = 64 << 20;
const tracks: TrackSpec[] = [
  { trackId: 1, kind: 'video' },
  { trackId: 2, kind: 'audio' },
];
const header = ingestHeader(tracks);

function parse(chunks: Buffer[]): IngestEvent[] {
  const p = new SmoothIngestParser({ maxBoxSize: MAX });
  const events: IngestEvent[] = [];
  for (const c of chunks) events.push(...p.push(c));
  events.push(...p.end());
  return events;
}

/** The error `input` is refused with, whole and in 4099-byte chunks (which must agree). */
function refusal(input: Buffer): { code: string; message: string } {
  const outcome = (chunks: Buffer[]): { code: string; message: string } => {
    try {
      parse(chunks);
    } catch (err) {
      if (!(err instanceof SmoothError)) throw err;
      return { code: err.code, message: err.message };
    }
    throw new Error('accepted');
  };
  const whole = outcome([input]);
  const pieces: Buffer[] = [];
  for (let i = 0; i < input.length; i += 4099) pieces.push(input.subarray(i, i + 4099));
  expect(outcome(pieces)).toEqual(whole);
  return whole;
}

/**
 * A fragment of track 1 whose trun carries no per-sample fields: `count` samples of `size` bytes from
 * the tfhd defaults, and `data` in the mdat. `padding` bytes after the trun's fields make it as large
 * as a box that could hold `count` one-byte records.
 */
function defaultsFragment(count: number, size: number, data: Buffer, padding = 0): Buffer {
  return selfOffsetFragment(
    (off) => [
      mfhd(1),
      traf(
        tfhd({ trackId: 1, defaultSampleDuration: 1, defaultSampleSize: size, defaultSampleFlags: 0 }),
        fullBox('trun', 0, 0x000001, u32(count), i32(off), zeros(padding)),
        tfxd(0, 10_000_000),
      ),
    ],
    data,
  );
}

describe('sample counts the received bytes do not back', () => {
  it('a trun declaring one sample per byte of its own size (size 0 from the tfhd default, empty mdat): refused, nothing built per sample', () => {
    const input = cat(header, defaultsFragment(4_000_000, 0, Buffer.alloc(0), 4_000_000));
    const before = process.memoryUsage();
    const r = refusal(input);
    expect(r).toEqual({ code: 'ERR_BAD_FRAGMENT', message: expect.stringMatching(/declares 4000000 samples but its mdat holds 0 bytes/) });
    // One record per declared sample took 346 MB per million; a table of them would take 64 MB.
    const after = process.memoryUsage();
    expect(after.heapUsed - before.heapUsed).toBeLessThan(48 << 20);
    expect(after.arrayBuffers - before.arrayBuffers).toBeLessThan(48 << 20);
  });

  it('a trun declaring 33 M samples in a few bytes is refused too', () => {
    expect(refusal(cat(header, defaultsFragment(33_000_000, 0, Buffer.alloc(0)))).code).toMatch(/^ERR_BAD_(FRAGMENT|BOX)$/);
  });

  it('more samples than the mdat has bytes: refused before the table is allocated', () => {
    const r = refusal(cat(header, defaultsFragment(60_000, 1, payload(1000, 1))));
    expect(r).toEqual({ code: 'ERR_BAD_FRAGMENT', message: expect.stringMatching(/60000 samples but its mdat holds 1000 bytes/) });
  });

  it('a sample of size 0 is refused, from a default or from the trun', () => {
    expect(refusal(cat(header, defaultsFragment(1, 0, payload(8, 1))))).toEqual({
      code: 'ERR_BAD_FRAGMENT',
      message: expect.stringMatching(/sample 0 of a trun has size 0/),
    });
    const perSample = selfOffsetFragment(
      (off) => [
        mfhd(1),
        traf(tfhd({ trackId: 1 }), trun({ dataOffset: off, samples: [{ size: 4, duration: 1, flags: 0 }, { size: 0, duration: 1, flags: 0 }] }), tfxd(0, 2)),
      ],
      payload(4, 1),
    );
    expect(refusal(cat(header, perSample))).toEqual({ code: 'ERR_BAD_FRAGMENT', message: expect.stringMatching(/sample 1 of a trun has size 0/) });
  });

  it('samples whose sizes exceed the mdat: refused', () => {
    const r = refusal(cat(header, defaultsFragment(10, 100, payload(999, 1))));
    expect(r).toEqual({ code: 'ERR_BAD_FRAGMENT', message: expect.stringMatching(/outside the mdat payload/) });
  });

  it(`more than ${MAX_FRAGMENT_SAMPLES} samples in one track fragment: refused even when the mdat backs them`, () => {
    const r = refusal(cat(header, defaultsFragment(MAX_FRAGMENT_SAMPLES + 1, 1, payload(MAX_FRAGMENT_SAMPLES + 1, 1))));
    expect(r).toEqual({ code: 'ERR_BAD_FRAGMENT', message: expect.stringMatching(new RegExp(`more than the ${MAX_FRAGMENT_SAMPLES} allowed`)) });
  });

  it('two truns describing the same mdat bytes: refused (they would be stored and served twice)', () => {
    const data = payload(1000, 3);
    const twice = selfOffsetFragment(
      (off) => [
        mfhd(1),
        traf(
          tfhd({ trackId: 1, flags: 0x020000 }),
          trun({ dataOffset: off, samples: [{ size: 1000, duration: 1, flags: 0 }] }),
          trun({ dataOffset: off, samples: [{ size: 1000, duration: 1, flags: 0 }] }),
          tfxd(0, 2),
        ),
      ],
      data,
    );
    expect(refusal(cat(header, twice))).toEqual({ code: 'ERR_BAD_FRAGMENT', message: expect.stringMatching(/overlaps another run/) });
  });

  it('two trafs sharing their sample bytes: refused', () => {
    const data = payload(500, 4);
    const shared = selfOffsetFragment(
      (off) => [
        mfhd(1),
        traf(tfhd({ trackId: 1, flags: 0x020000 }), trun({ dataOffset: off, samples: [{ size: 500, duration: 1, flags: 0 }] }), tfxd(0, 1)),
        traf(tfhd({ trackId: 2, flags: 0x020000 }), trun({ dataOffset: off + 100, samples: [{ size: 400, duration: 1, flags: 0 }] }), tfxd(0, 1)),
      ],
      data,
    );
    expect(refusal(cat(header, shared)).code).toBe('ERR_BAD_FRAGMENT');
  });

  it(`${MAX_FRAGMENT_SAMPLES} one-byte samples are accepted; the table takes 16 bytes a sample and the served fragment stays within the upload plus 1 MiB`, () => {
    const upload = defaultsFragment(MAX_FRAGMENT_SAMPLES, 1, payload(MAX_FRAGMENT_SAMPLES, 5));
    const events = parse([header, upload]);
    const f = events.flatMap((e) => (e.type === 'fragment' ? [e.fragment] : []))[0]!;
    expect(f.samples.count).toBe(MAX_FRAGMENT_SAMPLES);
    expect(f.samples.bytes.byteLength).toBe(16 * MAX_FRAGMENT_SAMPLES);
    expect(f.dataSize).toBe(MAX_FRAGMENT_SAMPLES);
    const stored = packFragment(f, { time: 0n, duration: f.duration, presentationTime: 0n, decodeTime: 0n, decodeTimeSent: false, storedAt: 0 });
    const { head } = smoothFragment(stored, undefined);
    expect(head.length + stored.data.length).toBeLessThanOrEqual(upload.length + (1 << 20) + 1024);
  });

  it('a fragment described exactly (sizes add up to the mdat) is still parsed the same for any split', () => {
    const input = cat(header, fragment(1, [{ trackId: 1, time: 0, samples: [payload(10, 1), payload(20, 2), payload(30, 3)] }]));
    const whole = parse([input]);
    const bytes = parse([...input].map((b) => Buffer.from([b])));
    const table = (events: IngestEvent[]) => events.flatMap((e) => (e.type === 'fragment' ? [e.fragment.samples.toArray()] : []));
    expect(table(bytes)).toEqual(table(whole));
    expect(table(whole)[0]!.map((s) => s.size)).toEqual([10, 20, 30]);
  });
});

describe('Live Server Manifest box: NUL runs', () => {
  const smil = lsmSmil(tracks);

  it('trims a trailing NUL run of 1 MB in linear time', () => {
    const box = lsmBox(smil, 'utf8', Buffer.alloc(1_000_000));
    const reader = new BoxReader({ maxBoxSize: MAX });
    expect(liveServerManifestText(reader.push(box)[0]!)).toBe(smil);
  });

  it('a 1 MB run of NULs that is not at the end: read in linear time, refused as not XML', () => {
    const raw = Buffer.concat([Buffer.from(smil.slice(0, 40)), Buffer.alloc(1_000_000), Buffer.from(smil.slice(40))]);
    const box = lsmBox(raw);
    const reader = new BoxReader({ maxBoxSize: MAX });
    expect(liveServerManifestText(reader.push(box)[0]!).length).toBe(smil.length + 1_000_000);
    const r = refusal(cat(ftyp(), box, moov(tracks)));
    expect(r).toEqual({ code: 'ERR_BAD_HEADER', message: 'Live Server Manifest contains a NUL character' });
  });

  it('NULs followed by one more character, the shape that made the trimming quadratic', () => {
    const box = lsmBox(cat(Buffer.from(smil), Buffer.alloc(1_000_000), Buffer.from(' ')));
    expect(refusal(cat(ftyp(), box, moov(tracks))).code).toBe('ERR_BAD_HEADER');
  });
});

describe('Live Server Manifest box: size and shape caps', () => {
  it(`a box over ${MAX_LSM_BOX_SIZE} bytes is refused from its header, before the rest is buffered`, () => {
    const big = lsmBox(`<smil><body><switch><video ${'a="1" '.repeat(6_000_000)}/></switch></body></smil>`);
    expect(big.length).toBeGreaterThan(31_000_000);
    const p = new SmoothIngestParser({ maxBoxSize: MAX });
    p.push(ftyp());
    let err: unknown;
    try {
      p.push(big.subarray(0, 64)); // the header and a few bytes: enough to refuse it
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SmoothError);
    expect(err).toMatchObject({ code: 'ERR_BAD_HEADER', message: `Live Server Manifest box of ${big.length} bytes exceeds ${MAX_LSM_BOX_SIZE}` });
    // And the same refusal whatever the split, with the rest of the box sent.
    expect(refusal(cat(ftyp(), big, moov(tracks))).code).toBe('ERR_BAD_HEADER');
  });

  it('the refusal comes after the boxes before it: an earlier error wins for any split', () => {
    const big = lsmBox(' '.repeat(MAX_LSM_BOX_SIZE));
    expect(refusal(cat(lsmBox(lsmSmil(tracks)), big))).toEqual({ code: 'ERR_BAD_HEADER', message: expect.stringMatching(/must start with ftyp/) });
  });

  it('a box of exactly the cap is read (and refused only as a manifest)', () => {
    const pad = MAX_LSM_BOX_SIZE - lsmBox('').length;
    const text = lsmSmil(tracks);
    const box = lsmBox(text + ' '.repeat(pad - Buffer.byteLength(text)));
    expect(box.length).toBe(MAX_LSM_BOX_SIZE);
    expect(parse([cat(ftyp(), box, moov(tracks))]).map((e) => e.type)).toEqual(['header']);
  });

  const doc = (inner: string): string => `<smil><body><switch>${inner}</switch></body></smil>`;
  const param = (i: number): string => `<param name="p${i}" value="${i}"/>`;
  const cases: Array<[string, string, RegExp]> = [
    ['more elements than allowed', doc(`<video>${Array.from({ length: LSM_LIMITS.maxElements }, (_, i) => param(i)).join('')}</video>`), /more than 4096 elements/],
    ['too many attributes on one element', doc(`<video ${Array.from({ length: 65 }, (_, i) => `a${i}="1"`).join(' ')}/>`), /more than 64 attributes/],
    [
      'too many attributes in all',
      doc(Array.from({ length: 300 }, () => `<video ${Array.from({ length: 60 }, (_, i) => `a${i}="1"`).join(' ')}/>`).join('')),
      /more than 16384 attributes/,
    ],
    ['an attribute value over 64 KiB', doc(`<video a="${'x'.repeat(65_537)}"/>`), /attribute value longer than 65536/],
    ['an unquoted attribute value over 64 KiB', doc(`<video a=${'x'.repeat(65_537)}/>`), /attribute value longer than 65536/],
    ['an attribute name over 256 characters', doc(`<video ${'a'.repeat(257)}="1"/>`), /attribute name longer than 256/],
    ['an element name over 256 characters', doc(`<${'v'.repeat(257)}/>`), /element name longer than 256/],
    ['elements nested deeper than 32', doc(`${'<a>'.repeat(30)}${'</a>'.repeat(30)}`), /deeper than 32/],
    ['more than 1 Mi characters', doc(' '.repeat(1 << 20)), /characters exceeds 1048576/],
  ];

  it.each(cases)('%s: ERR_BAD_HEADER before parsing', (_name, text, reason) => {
    let err: unknown;
    try {
      parseLiveServerManifest(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(SmoothError);
    expect((err as SmoothError).code).toBe('ERR_BAD_HEADER');
    expect((err as Error).message).toMatch(reason);
  });

  it('counts nothing inside comments, CDATA, processing instructions or attribute values', () => {
    const quoted = `<!-- ${'<a b="c">'.repeat(5000)} --><![CDATA[${'<x y="z">'.repeat(5000)}]]><?pi ${'<p q="r">'.repeat(5000)}?>`;
    const text = `<?xml version="1.0"?><smil>${quoted}<body><switch><video systemBitrate="1" note='${'<v w="1">'.repeat(100)}'><param name="trackID" value="1"/></video></switch></body></smil>`;
    expect(parseLiveServerManifest(text)).toHaveLength(1);
  });

  it('a manifest within every cap parses as before', () => {
    const many = doc(`<video systemBitrate="1">${Array.from({ length: 1000 }, (_, i) => param(i)).join('')}<param name="trackID" value="1"/></video>`);
    const [el] = parseLiveServerManifest(many);
    expect(el!.params.size).toBe(1001);
  });
});
