/**
 * TTML samples for DASH and HLS: the time expressions of a document written relative to its sample
 * (Smooth) moved onto the track's media timeline (ISO/IEC 14496-30), in every form TTML has; nested
 * timing left relative; documents that cannot be read served as they came; and the CMAF segment of a
 * fragment of several documents, each shifted by its own start, with the new sizes in its `trun`.
 */
import { packFragment } from '../../../lib/media';
import { children, findChild } from '../../../lib/mp4/reader';
import { MAX_TTML_BYTES, formatTtmlTime, parseTtmlTime, shiftTtml } from '../../../lib/mp4/ttml';
import { ttmlSegment } from '../../../lib/package/ttml';

const TT = '<tt xmlns="http://www.w3.org/ns/ttml" xmlns:ttp="http://www.w3.org/ns/ttml#parameter"';
const doc = (body: string, params = ''): Buffer => Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n${TT}${params}><body><div>${body}</div></body></tt>\n`);
/** `seconds` (a decimal string) as the rational the functions take. */
const at = (n: bigint, d = 1n): { n: bigint; d: bigint } => ({ n, d });
const shifted = (body: string, start = at(100n), params = ''): string | undefined => shiftTtml(doc(body, params), start)?.toString('latin1');
/** The `<div>…</div>` of a shifted document. */
const div = (body: string, start = at(100n), params = ''): string | undefined => /<div>([\s\S]*)<\/div>/.exec(shifted(body, start, params) ?? '')?.[1];
/** A time expression in seconds, with the default rates (30 fps, ticks as seconds). */
const seconds = (text: string): number => {
  const r = parseTtmlTime(text);
  return Number(r.n) / Number(r.d);
};
/** The `begin` a `<p>` of a document with `params` on its root gets at a shift of 0. */
const begin = (time: string, params: string): string | undefined => /begin="([^"]+)"/.exec(div(`<p begin="${time}">a</p>`, at(0n), params) ?? '')?.[1];

describe('TTML time expressions', () => {
  it('reads clock times with a fraction, with frames (default 30 fps) and sub-frames', () => {
    expect(seconds('00:00:12.5')).toBe(12.5);
    expect(seconds('01:02:03')).toBe(3723);
    expect(seconds('100:00:00.250')).toBe(360_000.25);
    expect(seconds('00:00:01:15')).toBe(1.5); // 15 frames at 30 fps
    expect(begin('00:00:01:12', ' ttp:frameRate="24"')).toBe('00:00:01.500');
    // Sub-frames at ttp:subFrameRate: 12 frames and 1 of 2 sub-frames at 25 fps.
    expect(begin('00:00:00:12.1', ' ttp:frameRate="25" ttp:subFrameRate="2"')).toBe('00:00:00.500');
  });

  it('reads offset times in every metric, ticks at ttp:tickRate', () => {
    expect(seconds('12.5s')).toBe(12.5);
    expect(seconds('1500ms')).toBe(1.5);
    expect(seconds('0.5h')).toBe(1800);
    expect(seconds('2m')).toBe(120);
    expect(seconds('45f')).toBe(1.5);
    expect(seconds('10t')).toBe(10); // no tick rate, no frame rate: ticks are seconds
    expect(begin('10000000t', ' ttp:tickRate="10000000"')).toBe('00:00:01.000');
    // A frame rate without a tick rate makes ticks sub-frames (TTML1 §6.2.10).
    expect(begin('50t', ' ttp:frameRate="25" ttp:subFrameRate="2"')).toBe('00:00:01.000');
    // Any prefix bound to the parameter namespace.
    expect(/begin="([^"]+)"/.exec(shiftTtml(Buffer.from('<tt xmlns="http://www.w3.org/ns/ttml" xmlns:p="http://www.w3.org/ns/ttml#parameter" p:tickRate="1000"><body><p begin="500t">a</p></body></tt>'), at(0n))!.toString())?.[1]).toBe('00:00:00.500');
  });

  it('refuses what is not a time expression', () => {
    for (const bad of ['', '12', '1:00:00', '00:61:00', '12.5x', 'indefinite', '-1s', '00:00:00:']) {
      expect(() => parseTtmlTime(bad)).toThrow();
    }
  });

  it('writes clock times exactly when the decimal terminates (any 10 MHz time), else to the nanosecond', () => {
    expect(formatTtmlTime(at(25n, 2n))).toBe('00:00:12.500');
    expect(formatTtmlTime(at(17_965_432_109_876_543n, 10_000_000n))).toBe('499039:46:50.9876543');
    expect(formatTtmlTime(at(3661n))).toBe('01:01:01.000');
    // 1/3 s has no decimal: the nearest nanosecond, rounded half up.
    expect(formatTtmlTime(at(1n, 3n))).toBe('00:00:00.333333333');
    expect(formatTtmlTime(at(2n, 3n))).toBe('00:00:00.666666667');
    expect(formatTtmlTime(at(1001n, 30000n))).toBe('00:00:00.033366667');
  });
});

describe('shiftTtml', () => {
  it('adds the sample start to begin and end of the timed elements, in every form, and leaves dur', () => {
    expect(div('<p begin="00:00:00.000" end="00:00:02.000">a</p>')).toBe('<p begin="00:01:40.000" end="00:01:42.000">a</p>');
    expect(div('<p begin="0.5s" dur="1500ms">a</p>')).toBe('<p begin="00:01:40.500" dur="1500ms">a</p>');
    expect(div('<p begin="15f" end="00:00:01:15">a</p>')).toBe('<p begin="00:01:40.500" end="00:01:41.500">a</p>');
    expect(div(`<p begin='5000000t' end='15000000t'>a</p>`, at(100n), ' ttp:tickRate="10000000"')).toBe(`<p begin='00:01:40.500' end='00:01:41.500'>a</p>`);
    // Frames at 30000/1001: 30 frames are 1.001 s.
    expect(div('<p begin="00:00:00:00" end="30f">a</p>', at(0n), ' ttp:frameRate="30" ttp:frameRateMultiplier="1000 1001"')).toBe(
      '<p begin="00:00:00.000" end="00:00:01.001">a</p>',
    );
  });

  it('shifts by a 10 MHz sample start exactly', () => {
    const start = at(123_456_789n, 10_000_000n); // 12.3456789 s
    expect(div('<p begin="00:00:00.000" end="00:00:02.000">a</p>', start)).toBe('<p begin="00:00:12.3456789" end="00:00:14.3456789">a</p>');
  });

  it('leaves nested times relative to the element they count from', () => {
    expect(div('<div begin="1s"><p begin="0s" end="2s">a</p></div>')).toBe('<div begin="00:01:41.000"><p begin="0s" end="2s">a</p></div>');
    expect(div('<p begin="1s" end="3s"><span begin="0.5s">a</span></p>')).toBe('<p begin="00:01:41.000" end="00:01:43.000"><span begin="0.5s">a</span></p>');
  });

  it('gives an outermost element with only an end, a dur or a sequence its begin at the sample start', () => {
    expect(div('<p end="2s">a</p>')).toBe('<p begin="00:01:40.000" end="00:01:42.000">a</p>');
    expect(div('<p dur="2s">a</p>')).toBe('<p begin="00:01:40.000" dur="2s">a</p>');
    expect(div('<div timeContainer="seq"><p dur="1s">a</p><p dur="1s">b</p></div>')).toBe(
      '<div begin="00:01:40.000" timeContainer="seq"><p dur="1s">a</p><p dur="1s">b</p></div>',
    );
    // Untimed elements around timed ones stay untouched; so do the untimed ones.
    expect(div('<p>a</p><p begin="1s" end="2s"/>')).toBe('<p>a</p><p begin="00:01:41.000" end="00:01:42.000"/>');
  });

  it('shifts timed regions of the head, and keeps everything else byte for byte, whatever its encoding', () => {
    const text = Buffer.concat([
      Buffer.from(`${TT}><head><layout><region xml:id="r" begin="0s"/></layout></head><!-- <p begin="9s"> --><body><p begin="1s" end="2s">caf`),
      Buffer.from([0xc3, 0xa9, 0xff]),
      Buffer.from('<![CDATA[ <p begin="9s"> ]]></p></body></tt>'),
    ]);
    const out = shiftTtml(text, at(10n))!;
    expect(out.toString('latin1')).toBe(
      text.toString('latin1').replace('begin="0s"', 'begin="00:00:10.000"').replace('begin="1s" end="2s"', 'begin="00:00:11.000" end="00:00:12.000"'),
    );
    expect(out.includes(Buffer.from([0xc3, 0xa9, 0xff]))).toBe(true);
  });

  it('leaves alone what it cannot read, never throwing', () => {
    const cases = [
      Buffer.from('not xml at all'),
      Buffer.from('<html><body><p begin="1s">a</p></body></html>'), // not TTML
      doc('<p begin="1s" end="2s">a</p>', ' ttp:timeBase="smpte"'), // another time base
      doc('<p begin="soon" end="2s">a</p>'), // a bad time
      doc('<p begin="1s" end="2s">a</p>', ' ttp:frameRate="0"'), // a bad rate
      Buffer.from(`${TT}><body><p begin="1s">a</p>`), // truncated
      Buffer.from(`${TT}><body><p begin="1s">a</p></body></tt></extra>`), // unbalanced
      Buffer.from(`<!DOCTYPE tt [<!ENTITY x "1s">]>${TT}><body><p begin="1s">a</p></body></tt>`),
      Buffer.from(`${TT}><body><p begin="1s" end`), // a broken tag
      doc('<p>no times</p>'), // nothing to shift
      Buffer.from('\ufeff<tt/>', 'utf16le'),
      Buffer.alloc(0),
    ];
    for (const c of cases) expect(shiftTtml(c, at(100n))).toBeUndefined();
  });

  it('bounds the work of a document: times of more digits than any real one and documents over 1 MiB are left alone', () => {
    // BigInt reduction is quadratic in the digits: unbounded, a 50,000-digit time took over a second.
    for (const t of [`00:00:01.${'1'.repeat(13)}`, `${'9'.repeat(10)}:00:00`, `${'9'.repeat(16)}s`, `1.${'5'.repeat(13)}s`]) {
      expect(() => parseTtmlTime(t)).toThrow(/not a TTML time expression/);
      expect(shifted(`<p begin="${t}">a</p>`)).toBeUndefined();
    }
    expect(seconds(`00:00:01.${'5'.repeat(12)}`)).toBeCloseTo(1.5555, 3);
    expect(shifted(`<p begin="1s">${'a'.repeat(MAX_TTML_BYTES)}</p>`)).toBeUndefined();
  });

  it('moves a document back onto its sample (CMAF ingest): a time before the sample is 0, no begin is added', () => {
    expect(div('<p begin="9s" end="12s">carried over</p><p end="12s">no begin</p>', at(-10n))).toBe(
      '<p begin="00:00:00.000" end="00:00:02.000">carried over</p><p end="00:00:02.000">no begin</p>',
    );
  });
});

describe('ttmlSegment', () => {
  const TS = 10_000_000;
  const one = doc('<p begin="00:00:00.000" end="00:00:01.000">one</p>');
  const two = doc('<p begin="0.5s" end="1s">two</p>');

  function fragmentOf(samples: Buffer[], decodeTime: bigint) {
    return packFragment(
      {
        trackId: 3,
        sequenceNumber: 9,
        sampleDescriptionIndex: undefined,
        samples: samples.map((s) => ({ duration: TS, size: s.length, flags: 0, compositionOffset: 0 })),
        extra: [],
        data: samples,
        dataSize: samples.reduce((n, s) => n + s.length, 0),
      },
      { time: decodeTime, duration: BigInt(samples.length * TS), presentationTime: decodeTime, decodeTime, decodeTimeSent: false, storedAt: 1 },
    );
  }

  /** The moof's trun sample sizes and the tfdt of a segment head. */
  function readHead(head: Buffer): { tfdt: bigint; sizes: number[]; mdat: number } {
    const moof = children(head, 0, head.readUInt32BE(0)).next().value!;
    const traf = findChild(moof, 'traf')!;
    const tfdt = findChild(traf, 'tfdt')!;
    const trun = findChild(traf, 'trun')!;
    const p = trun.data.subarray(trun.headerSize);
    const flags = p.readUInt32BE(0) & 0xffffff;
    const count = p.readUInt32BE(4);
    let o = 8 + (flags & 1 ? 4 : 0) + (flags & 4 ? 4 : 0);
    const sizes: number[] = [];
    for (let i = 0; i < count; i++) {
      if (flags & 0x100) o += 4;
      sizes.push(p.readUInt32BE(o));
      o += 4 + (flags & 0x400 ? 4 : 0) + (flags & 0x800 ? 4 : 0);
    }
    return { tfdt: tfdt.data.readBigUInt64BE(tfdt.headerSize + 4), sizes, mdat: head.readUInt32BE(moof.data.length) };
  }

  it('shifts each document by its own sample start on the output timeline, with the new sizes in the trun', () => {
    // Stored at 1000 s, output base 990 s: the samples start at 10 s and 11 s of output time.
    const f = fragmentOf([one, two], 1000n * BigInt(TS));
    const out = ttmlSegment(f, f.data, TS, { trackId: 1, decodeTimeOffset: -990n * BigInt(TS) })!;
    const texts = out.body.toString('latin1');
    expect(texts).toContain('<p begin="00:00:10.000" end="00:00:11.000">one</p>');
    expect(texts).toContain('<p begin="00:00:11.500" end="00:00:12.000">two</p>');
    const { tfdt, sizes, mdat } = readHead(out.head);
    expect(tfdt).toBe(10n * BigInt(TS));
    // "0.5s" and "1s" became clock times: 8 and 10 bytes longer.
    expect(sizes).toEqual([one.length, two.length + 18]);
    expect(mdat).toBe(8 + out.body.length);
    expect(out.head.length).toBe(out.moofSize + 8);
  });

  it('is undefined when no document changes, or the sizes do not add up', () => {
    const plain = doc('<p>untimed</p>');
    const f = fragmentOf([plain], 0n);
    expect(ttmlSegment(f, f.data, TS, { trackId: 1 })).toBeUndefined();
    const g = fragmentOf([one], 0n);
    expect(ttmlSegment(g, g.data.subarray(1), TS, { trackId: 1 })).toBeUndefined();
  });

  it('writes a CMAF segment head: moof (mfhd, traf) and the mdat header', () => {
    const f = fragmentOf([one, two], 0n);
    const out = ttmlSegment(f, f.data, TS, { trackId: 1 })!;
    expect([...children(out.head, 0, out.moofSize)].map((b) => b.type)).toEqual(['moof']);
    expect(out.head.toString('latin1', out.moofSize + 4, out.moofSize + 8)).toBe('mdat');
    expect([...children(out.head.subarray(0, out.moofSize), 8)].map((b) => b.type)).toEqual(['mfhd', 'traf']);
  });
});
