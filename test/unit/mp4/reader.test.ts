import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Box, BoxReader, children, childrenOf, findChild } from '../../../lib/mp4/reader';
import { codeOf as code } from '../../helpers/errors';
import { box, cat, fullUuidBox, largeBox, mdat, moof, str, toEndBox, u32, u64, uuidBox, UUID_TFXD } from '../../helpers/fmp4';

const FIXTURE = readFileSync(path.join(__dirname, '../../fixtures/ffmpeg-push-all.bin'));
const MAX = 1 << 20;

/** Feeds `chunks` to a fresh reader and returns every box, end() included. */
function readAll(chunks: Buffer[], maxBoxSize = MAX): Box[] {
  const reader = new BoxReader({ maxBoxSize });
  const out: Box[] = [];
  for (const c of chunks) for (const b of reader.push(c)) out.push(b);
  for (const b of reader.end()) out.push(b);
  return out;
}

/** Cuts `buf` at the given ascending offsets. */
function split(buf: Buffer, cuts: number[]): Buffer[] {
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of cuts) {
    out.push(buf.subarray(prev, c));
    prev = c;
  }
  out.push(buf.subarray(prev));
  return out;
}

/** mulberry32: a small seeded PRNG, so failures reproduce. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** First difference between two box lists, or undefined. Plain loops: this runs ~10^5 times. */
function difference(expected: Box[], actual: Box[]): string | undefined {
  if (actual.length !== expected.length) return `${actual.length} boxes instead of ${expected.length}`;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    const a = actual[i]!;
    if (a.type !== e.type || a.uuid !== e.uuid || a.headerSize !== e.headerSize || !a.data.equals(e.data)) {
      return `box ${i} (${e.type}) differs`;
    }
  }
  return undefined;
}

describe('BoxReader on the captured ffmpeg push', () => {
  const whole = readAll([FIXTURE]);

  it('reads the top-level boxes of the whole input', () => {
    expect(whole.map((b) => b.type).slice(0, 5)).toEqual(['ftyp', 'uuid', 'moov', 'moof', 'mdat']);
    expect(whole[whole.length - 1]!.type).toBe('mfra');
    expect(whole.filter((b) => b.type === 'moof')).toHaveLength(12);
    expect(whole.reduce((sum, b) => sum + b.data.length, 0)).toBe(FIXTURE.length);
    // Boxes that arrive in one chunk are views into it, not copies.
    expect(whole[0]!.data.buffer).toBe(FIXTURE.buffer);
    expect(whole[1]!.uuid).toBe('a5d40b30e81411ddba2f0800200c9a66');
    expect(whole[1]!.headerSize).toBe(24);
  });

  it('gives byte-identical boxes for every 2-way split', () => {
    const failures: string[] = [];
    for (let cut = 0; cut <= FIXTURE.length; cut++) {
      const diff = difference(whole, readAll([FIXTURE.subarray(0, cut), FIXTURE.subarray(cut)]));
      if (diff && failures.push(`cut ${cut}: ${diff}`) >= 10) break;
    }
    expect(failures).toEqual([]);
  });

  it('gives byte-identical boxes when fed one byte at a time', () => {
    const reader = new BoxReader({ maxBoxSize: MAX });
    const out: Box[] = [];
    for (let i = 0; i < FIXTURE.length; i++) {
      // Copy each byte so no result can alias the fixture by accident.
      for (const b of reader.push(Buffer.from([FIXTURE[i]!]))) out.push(b);
    }
    expect(reader.position).toBe(FIXTURE.length);
    out.push(...reader.end());
    expect(reader.idle).toBe(true);
    expect(difference(whole, out)).toBeUndefined();
  });

  it('gives byte-identical boxes for a few hundred random multi-splits (seeded)', () => {
    const random = prng(0x5eed);
    const failures: string[] = [];
    for (let round = 0; round < 300; round++) {
      const n = 1 + Math.floor(random() * (round % 3 === 0 ? 400 : 40));
      const cuts = Array.from({ length: n }, () => Math.floor(random() * (FIXTURE.length + 1))).sort((a, b) => a - b);
      const diff = difference(whole, readAll(split(FIXTURE, cuts)));
      if (diff) failures.push(`round ${round} (cuts ${cuts.slice(0, 8).join(',')}…): ${diff}`);
    }
    expect(failures).toEqual([]);
  });

  it('accepts empty chunks anywhere', () => {
    const chunks = [Buffer.alloc(0), FIXTURE.subarray(0, 3), Buffer.alloc(0), FIXTURE.subarray(3, 30), Buffer.alloc(0), FIXTURE.subarray(30)];
    expect(difference(whole, readAll(chunks))).toBeUndefined();
  });
});

describe('BoxReader box forms', () => {
  it('reads a largesize (size == 1) box, split inside its 16-byte header', () => {
    const big = largeBox('mdat', Buffer.alloc(100, 7));
    const input = cat(box('free'), big, box('skip', [1, 2, 3]));
    for (let cut = 0; cut <= input.length; cut++) {
      const boxes = readAll([input.subarray(0, cut), input.subarray(cut)]);
      expect(boxes.map((b) => b.type)).toEqual(['free', 'mdat', 'skip']);
      expect(boxes[1]!.headerSize).toBe(16);
      expect(boxes[1]!.data.equals(big)).toBe(true);
    }
  });

  it('reads a largesize uuid box: largesize, then the user type', () => {
    const data = cat(u32(1), str('uuid'), u64(16 + 16 + 4), Buffer.from(UUID_TFXD, 'hex'), [9, 9, 9, 9]);
    const [b] = readAll([data]);
    expect(b!.type).toBe('uuid');
    expect(b!.uuid).toBe(UUID_TFXD);
    expect(b!.headerSize).toBe(32);
    expect(b!.data.subarray(b!.headerSize)).toEqual(Buffer.from([9, 9, 9, 9]));
  });

  it('reads the uuid user type as lower-case hex', () => {
    const [b] = readAll([uuidBox('A5D40B30E81411DDBA2F0800200C9A66'.toLowerCase(), [1])]);
    expect(b!.uuid).toBe('a5d40b30e81411ddba2f0800200c9a66');
    expect(b!.headerSize).toBe(24);
    expect(readAll([box('moof')])[0]!.uuid).toBeUndefined();
  });

  it('emits a size == 0 box only at end(), extending to the end of the input', () => {
    const input = cat(box('ftyp', str('isml')), toEndBox('mdat', Buffer.alloc(50, 1)));
    for (const cut of [0, 4, 12, 14, 20, input.length]) {
      const reader = new BoxReader({ maxBoxSize: MAX });
      const early = [...reader.push(input.subarray(0, cut)), ...reader.push(input.subarray(cut))];
      expect(early.map((b) => b.type)).toEqual(['ftyp']);
      expect(reader.idle).toBe(false);
      const last = reader.end();
      expect(last).toHaveLength(1);
      expect(last[0]!.type).toBe('mdat');
      expect(last[0]!.headerSize).toBe(8);
      expect(last[0]!.data.equals(input.subarray(12))).toBe(true);
    }
  });

  it('emits an empty size == 0 box (header only) at end()', () => {
    const boxes = readAll([toEndBox('mdat')]);
    expect(boxes).toHaveLength(1);
    expect(boxes[0]!.data).toHaveLength(8);
  });

  it('bounds a size == 0 box by maxBoxSize while it grows', () => {
    const reader = new BoxReader({ maxBoxSize: 64 });
    reader.push(toEndBox('mdat', Buffer.alloc(40)));
    expect(() => reader.push(Buffer.alloc(40))).toThrow(expect.objectContaining({ code: 'ERR_BOX_TOO_LARGE' }));
  });

  it('bounds a size == 0 box by maxBoxSize when it arrives in a single chunk', () => {
    const reader = new BoxReader({ maxBoxSize: 64 });
    expect(() => {
      reader.push(toEndBox('mdat', Buffer.alloc(100)));
      reader.end();
    }).toThrow(expect.objectContaining({ code: 'ERR_BOX_TOO_LARGE' }));
    // Also when its header straddled the previous chunk.
    const r2 = new BoxReader({ maxBoxSize: 64 });
    r2.push(Buffer.from([0, 0]));
    expect(() => {
      r2.push(cat([0, 0], str('mdat'), Buffer.alloc(100)));
      r2.end();
    }).toThrow(expect.objectContaining({ code: 'ERR_BOX_TOO_LARGE' }));
    // Exactly maxBoxSize is fine.
    const r3 = new BoxReader({ maxBoxSize: 64 });
    r3.push(toEndBox('mdat', Buffer.alloc(56)));
    expect(r3.end()[0]!.data).toHaveLength(64);
  });

  it('returns nothing from end() on a clean boundary', () => {
    const reader = new BoxReader({ maxBoxSize: MAX });
    reader.push(box('free'));
    expect(reader.end()).toEqual([]);
  });
});

describe('BoxReader errors', () => {
  it.each([2, 7])('rejects a box whose size (%i) is smaller than its 8-byte header', (size) => {
    expect(code(() => new BoxReader({ maxBoxSize: MAX }).push(cat(u32(size), str('free'))))).toBe('ERR_BAD_BOX');
  });

  it('rejects a uuid box smaller than its 24-byte header', () => {
    expect(code(() => new BoxReader({ maxBoxSize: MAX }).push(cat(u32(20), str('uuid'), Buffer.alloc(16))))).toBe('ERR_BAD_BOX');
  });

  it('rejects a largesize smaller than the 16-byte header', () => {
    expect(code(() => new BoxReader({ maxBoxSize: MAX }).push(cat(u32(1), str('mdat'), u64(15))))).toBe('ERR_BAD_BOX');
  });

  it('rejects a largesize of 0 (only the 32-bit size may mean "to end of input")', () => {
    expect(code(() => new BoxReader({ maxBoxSize: MAX }).push(cat(u32(1), str('mdat'), u64(0), Buffer.alloc(8))))).toBe('ERR_BAD_BOX');
  });

  it('escapes a non-printable type in the message', () => {
    try {
      new BoxReader({ maxBoxSize: MAX }).push(cat(u32(3), Buffer.from([0x00, 0x1b, 0x41, 0x7f])));
      throw new Error('no error');
    } catch (err) {
      expect((err as Error).message).toContain('\\x00\\x1bA\\x7f');
    }
  });

  it('throws ERR_BOX_TOO_LARGE from the header alone, before buffering any payload', () => {
    const reader = new BoxReader({ maxBoxSize: 1000 });
    expect(code(() => reader.push(cat(u32(1001), str('mdat'))))).toBe('ERR_BOX_TOO_LARGE');
    // A header that straddles chunks is checked as soon as it is complete.
    const r2 = new BoxReader({ maxBoxSize: 1000 });
    expect(r2.push(Buffer.from([0, 0]))).toEqual([]);
    expect(code(() => r2.push(cat([0x03, 0xe9], str('mdat'))))).toBe('ERR_BOX_TOO_LARGE');
    // Exactly maxBoxSize is fine.
    expect(readAll([box('mdat', Buffer.alloc(992))], 1000)).toHaveLength(1);
  });

  it('checks a 64-bit largesize against maxBoxSize, including sizes above 2^53', () => {
    expect(code(() => new BoxReader({ maxBoxSize: MAX }).push(cat(u32(1), str('mdat'), u64(2n ** 63n + 5n))))).toBe(
      'ERR_BOX_TOO_LARGE',
    );
    expect(code(() => new BoxReader({ maxBoxSize: MAX }).push(cat(u32(1), str('mdat'), u64(MAX + 1))))).toBe('ERR_BOX_TOO_LARGE');
  });

  it('does not allocate for a huge declared size', () => {
    const spy = jest.spyOn(Buffer, 'allocUnsafeSlow');
    try {
      expect(code(() => new BoxReader({ maxBoxSize: MAX }).push(cat(u32(0xffffffff), str('mdat'), [1, 2, 3])))).toBe(
        'ERR_BOX_TOO_LARGE',
      );
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });

  it('throws ERR_TRUNCATED from end() inside a box payload', () => {
    const reader = new BoxReader({ maxBoxSize: MAX });
    expect(reader.push(box('mdat', Buffer.alloc(100)).subarray(0, 50))).toEqual([]);
    expect(code(() => reader.end())).toBe('ERR_TRUNCATED');
  });

  it('throws ERR_TRUNCATED from end() inside a box header', () => {
    for (const partial of [Buffer.from([0, 0, 0]), cat(u32(40), str('uuid'), Buffer.alloc(4)), cat(u32(1), str('mdat'), [0])]) {
      const reader = new BoxReader({ maxBoxSize: MAX });
      expect(reader.push(partial)).toEqual([]);
      expect(reader.idle).toBe(false);
      expect(code(() => reader.end())).toBe('ERR_TRUNCATED');
    }
  });

  it('throws ERR_TRUNCATED for every truncation of the fixture that is not on a box boundary', () => {
    const boundaries = new Set<number>([0]);
    let pos = 0;
    for (const b of readAll([FIXTURE])) boundaries.add((pos += b.data.length));
    for (let len = 0; len < FIXTURE.length; len += 97) {
      const reader = new BoxReader({ maxBoxSize: MAX });
      reader.push(FIXTURE.subarray(0, len));
      if (boundaries.has(len)) expect(reader.end()).toEqual([]);
      else expect(code(() => reader.end())).toBe('ERR_TRUNCATED');
    }
  });
});

describe('children()', () => {
  it('iterates the children of a box with their offsets', () => {
    const m = moof(box('mfhd', u32(0), u32(7)), box('traf', box('tfhd', u32(0), u32(1))));
    const [top] = readAll([m]);
    const list = [...childrenOf(top!)];
    expect(list.map((c) => [c.type, c.offset, c.data.length])).toEqual([
      ['mfhd', 8, 16],
      ['traf', 24, 24],
    ]);
    expect(findChild(top!, 'traf')?.data.length).toBe(24);
    expect(findChild(top!, 'trun')).toBeUndefined();
  });

  it('finds a uuid child by user type', () => {
    const t = box('traf', uuidBox('00'.repeat(16), [1]), fullUuidBox(UUID_TFXD, 1, 0, u64(5), u64(6)));
    const [top] = readAll([t]);
    expect(findChild(top!, 'uuid', UUID_TFXD)?.data.length).toBe(44);
    expect(findChild(top!, 'uuid', 'ff'.repeat(16))).toBeUndefined();
  });

  it('lets a size == 0 child run to the end of its parent', () => {
    const data = cat(box('free', [1]), toEndBox('mdat', [1, 2, 3]));
    expect([...children(data)].map((c) => [c.type, c.data.length])).toEqual([
      ['free', 9],
      ['mdat', 11],
    ]);
  });

  it('detects a child that overruns its parent', () => {
    const inner = cat(u32(64), str('tfhd'), Buffer.alloc(8)); // claims 64 bytes, has 16
    const parent = cat(u32(8 + inner.length), str('traf'), inner);
    const [top] = readAll([parent]);
    expect(() => [...childrenOf(top!)]).toThrow(expect.objectContaining({ code: 'ERR_BAD_BOX' }));
  });

  it('detects a child that overruns the range even when the buffer continues', () => {
    const data = cat(box('free', [1, 2, 3, 4]), box('skip'));
    // Range [0, 10) cuts the first child (12 bytes) although the buffer holds it.
    expect(() => [...children(data, 0, 10)]).toThrow(expect.objectContaining({ code: 'ERR_BAD_BOX' }));
  });

  it('detects trailing bytes too short for a header', () => {
    expect(() => [...children(cat(box('free'), [0, 0, 0]))]).toThrow(expect.objectContaining({ code: 'ERR_BAD_BOX' }));
  });

  it('detects a child size smaller than its header', () => {
    expect(() => [...children(cat(u32(4), str('free')))]).toThrow(expect.objectContaining({ code: 'ERR_BAD_BOX' }));
  });

  it('reads nested largesize children', () => {
    const data = cat(largeBox('free', [1, 2]), mdat([3]));
    expect([...children(data)].map((c) => [c.type, c.headerSize, c.data.length])).toEqual([
      ['free', 16, 18],
      ['mdat', 8, 9],
    ]);
  });
});

describe('BoxReader onHeader', () => {
  const refuseMdat = (type: string, _uuid: string | undefined, size: number): void => {
    if (type === 'mdat' && size > 100) throw new Error(`mdat of ${size} refused`);
  };

  it('refuses a box from its header: the boxes before it come out, the error follows, then every call throws it', () => {
    const input = cat(box('free', [1]), box('mdat', Buffer.alloc(200)));
    for (const split of [input.length, 20, 9, 1]) {
      const r = new BoxReader({ maxBoxSize: 1 << 20, onHeader: refuseMdat });
      const seen: string[] = [];
      let err: unknown;
      for (let i = 0; i < input.length && err === undefined; i += split) {
        seen.push(...r.push(input.subarray(i, i + split)).map((b) => b.type));
        try {
          r.throwRefusal();
        } catch (e) {
          err = e;
        }
      }
      expect(seen).toEqual(['free']);
      expect((err as Error).message).toBe('mdat of 208 refused');
      expect(() => r.push(Buffer.alloc(1))).toThrow('mdat of 208 refused');
      expect(() => r.end()).toThrow('mdat of 208 refused');
    }
  });

  it('lets other boxes through unchanged', () => {
    const input = cat(box('free', [1]), box('mdat', Buffer.alloc(50)));
    const r = new BoxReader({ maxBoxSize: 1 << 20, onHeader: refuseMdat });
    expect([...r.push(input), ...r.end()].map((b) => [b.type, b.data.length])).toEqual([
      ['free', 9],
      ['mdat', 58],
    ]);
  });
});
