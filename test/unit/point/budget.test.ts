/**
 * Byte budgets: a point counts each fragment with its bookkeeping against `maxBytesPerPoint`; the
 * points of an origin share one budget (`maxBytes`) for what they hold in memory, partly received
 * boxes included. Over it, the point that holds the most sheds its oldest fragments; a box that cannot
 * be held even then is refused, without anything shed for it.
 */
import { resolveSettings } from '../../../lib/definition';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import { resolveOptions, type LiveSmoothOptions } from '../../../lib/options';
import { PublishingPoint } from '../../../lib/point';
import { FRAGMENT_COST } from '../../../lib/point/content';
import { ByteBudget, type BudgetHolder, sharedLimits, type SharedLimits } from '../../../lib/point/limits';
import type { IngestSession } from '../../../lib/point/session';
import { diskStore } from '../../../lib/store/disk';
import { smoothErrorOf } from '../../helpers/errors';
import { box, fragment, ingestHeader, payload, u32 } from '../../helpers/fmp4';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

const SECOND = 10_000_000n;

/** The garbage collector, exposed for this process's measurements. */
function collector(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}
const spec = (trackId: number) => ({ trackId, kind: 'video' as const, bitrate: 100_000 * trackId, width: 160, height: 90 });

function point(options: LiveSmoothOptions = {}, limits?: SharedLimits, name = 'ch1.isml'): PublishingPoint {
  const resolved = resolveOptions({ stateFile: false, ...options });
  return new PublishingPoint(name, resolveSettings([{ startOnFirstRequest: true }]), resolved, limits ?? sharedLimits(resolved));
}

/** An encoder session on `p` with `tracks` video tracks. */
function open(p: PublishingPoint, tracks = 1): IngestSession {
  const s = p.openIngest('ch1', undefined, new SmoothIngestParser({ maxBoxSize: 1 << 26 }));
  s.write(ingestHeader(Array.from({ length: tracks }, (_, i) => spec(i + 1))));
  return s;
}

/** Fragment `i` (1 s) of every track, each with one sample of `size` bytes. */
function second(i: number, tracks: number, size: number): Buffer {
  return fragment(
    i + 1,
    Array.from({ length: tracks }, (_, t) => ({ trackId: t + 1, time: BigInt(i) * SECOND, duration: SECOND, samples: [payload(size, i * 31 + t)] })),
  );
}

describe('ByteBudget', () => {
  function holder(budget: ByteBudget, bytes: number): BudgetHolder & { bytes: number } {
    const h = {
      bytes,
      get sheddable() {
        return h.bytes;
      },
      shed(n: number) {
        const freed = Math.min(n, h.bytes, 10); // ten bytes at a time, like a fragment
        h.bytes -= freed;
        budget.change(-freed);
      },
    };
    budget.join(h);
    budget.change(bytes);
    return h;
  }

  it('takes growth within the budget without asking anyone to shed', () => {
    const budget = new ByteBudget(100);
    const a = holder(budget, 60);
    const b = holder(budget, 40);
    expect([budget.used, a.bytes, b.bytes]).toEqual([100, 60, 40]);
  });

  it('past the budget the holder with the most sheds first, then the next, until it fits', () => {
    const budget = new ByteBudget(100);
    const a = holder(budget, 60);
    const b = holder(budget, 30);
    expect(budget.change(35)).toBe(true); // 125: a sheds to 35 (then a and b are level)
    expect(budget.used).toBeLessThanOrEqual(100);
    expect(a.bytes).toBeLessThanOrEqual(40);
    expect(b.bytes).toBe(30);
  });

  it('says whether growth fits before counting it, and stays over only when nothing more can go', () => {
    const budget = new ByteBudget(100);
    holder(budget, 50);
    expect(budget.fits(100)).toBe(true); // the 50 stored bytes can go
    expect(budget.fits(101)).toBe(false);
    budget.change(120); // partial bytes, not sheddable
    expect(budget.used).toBe(120);
    expect(budget.change(1)).toBe(false);
  });

  it('a holder that leaves is no longer asked', () => {
    const budget = new ByteBudget(100);
    const a = holder(budget, 80);
    budget.change(-80);
    budget.leave(a);
    holder(budget, 90);
    budget.change(20);
    expect(a.bytes).toBe(80);
  });
});

describe('maxBytesPerPoint counts each fragment with its bookkeeping', () => {
  it('tiny fragments: a point keeps at most maxBytesPerPoint / FRAGMENT_COST of them, the oldest going as `bytes`', () => {
    const max = 256 * FRAGMENT_COST;
    const p = point({ maxBytesPerPoint: max });
    const reasons = new Set<string>();
    p.on('fragmentTrimmed', (e) => reasons.add(e.reason));
    const s = open(p, 4);
    const parts: Buffer[] = [];
    for (let i = 0; i < 1000; i++) parts.push(second(i, 4, 1));
    s.write(Buffer.concat(parts));
    // 4,000 fragments of one byte each: the store alone counts 4,000 bytes × ~1.1 (sample table).
    const m = p.memory;
    expect(m.stored).toBeLessThanOrEqual(max);
    expect(m.stored).toBeGreaterThan(max - 8 * FRAGMENT_COST);
    expect([...reasons]).toEqual(['bytes']);
    // The newest stay, across every track.
    for (let t = 1; t <= 4; t++) expect(p.lookup('video', 100_000 * t, [], 999n * SECOND).status).toBe('ok');
    expect(p.lookup('video', 100_000, [], 0n).status).toBe('not-found');
  });

  it('memory measured: 40,000 one-byte fragments under an 8 MiB budget grow the heap by less than 16 MiB', async () => {
    const gc = collector();
    const max = 8 * 2 ** 20;
    const p = point({ maxBytesPerPoint: max });
    const s = open(p, 10);
    // Array buffers are freed by a sweeper after the collection: give it turns of the event loop.
    const used = async (): Promise<number> => {
      for (let i = 0; i < 3; i++) {
        gc();
        await new Promise((ok) => setTimeout(ok, 10));
      }
      const m = process.memoryUsage();
      return m.heapUsed + m.external;
    };
    const before = await used();
    for (let i = 0; i < 4000; i++) s.write(second(i, 10, 1));
    const grown = (await used()) - before;
    // Counted at their sample bytes alone, the 40,000 fragments took ~36 MB of bookkeeping.
    expect(p.memory.stored).toBeLessThanOrEqual(max);
    expect(grown).toBeLessThan(16 * 2 ** 20);
  }, 60_000);

  it('a point reports what it holds, by kind: held-back bytes are those of the newest L fragments', () => {
    const p = point();
    const s = open(p, 1);
    for (let i = 0; i < 5; i++) s.write(second(i, 1, 1000));
    const m = p.memory;
    // Five fragments stored; two (lookahead 2) held back.
    expect(m.stored).toBe(p.bytes + 5 * FRAGMENT_COST);
    expect(m.held * 5).toBe(p.bytes * 2);
    expect(m.disk).toBe(0);
    expect(m.partial).toBe(0);
    p.manifest();
    expect(p.memory.cached).toBeGreaterThan(0);
    expect(p.memory.total).toBe(p.memory.stored + p.memory.cached);
  });
});

describe('one budget for the points of an origin (maxBytes)', () => {
  /** Points a and b sharing an origin's limits, with a 1 MiB budget. */
  function twoPoints(): { maxBytes: number; limits: SharedLimits; a: PublishingPoint; b: PublishingPoint } {
    const maxBytes = 2 ** 20;
    const limits = sharedLimits(resolveOptions({ stateFile: false, maxBytes }));
    return { maxBytes, limits, a: point({ maxBytes }, limits, 'a.isml'), b: point({ maxBytes }, limits, 'b.isml') };
  }

  it('a point that grows past the budget makes the largest point shed its oldest fragments; the total stays within it', () => {
    const { maxBytes, limits, a, b } = twoPoints();
    const trimmed = { a: 0, b: 0 };
    a.on('fragmentTrimmed', () => trimmed.a++);
    b.on('fragmentTrimmed', () => trimmed.b++);
    const sa = open(a);
    for (let i = 0; i < 30; i++) sa.write(second(i, 1, 30_000)); // ~0.9 MiB
    expect(trimmed.a).toBe(0);
    const sb = open(b);
    for (let i = 0; i < 15; i++) {
      sb.write(second(i, 1, 30_000));
      expect(limits.budget.used).toBeLessThanOrEqual(maxBytes);
    }
    // b grew to ~0.45 MiB: a, the larger, let go of what b needed; b lost nothing.
    expect(trimmed.b).toBe(0);
    expect(trimmed.a).toBeGreaterThan(10);
    expect(limits.budget.used).toBe(a.memory.total + b.memory.total);
    // Both keep their newest fragments.
    expect(a.lookup('video', 100_000, [], 29n * SECOND).status).toBe('ok');
    // Growing on, b becomes the larger and sheds its own oldest: the two end up level.
    for (let i = 15; i < 40; i++) sb.write(second(i, 1, 30_000));
    expect(trimmed.b).toBeGreaterThan(0);
    expect(Math.abs(a.memory.stored - b.memory.stored)).toBeLessThan(3 * 32_000);
    a.close();
    b.close();
    expect(limits.budget.used).toBe(0);
  });

  it('counts partly received boxes; one the budget cannot hold even after shedding is refused (ERR_BUDGET_EXCEEDED) and sheds nothing', () => {
    const { limits, a, b } = twoPoints();
    const sa = open(a);
    for (let i = 0; i < 10; i++) sa.write(second(i, 1, 30_000)); // ~0.3 MiB stored
    const stored = limits.budget.used;
    const trimmed: number[] = [];
    a.on('fragmentTrimmed', () => trimmed.push(1));

    const sb = open(b);
    const headerBytes = b.memory.partial;
    // An mdat announcing 8 MiB (under maxBoxSize), sent in parts.
    sb.write(Buffer.concat([u32(8 * 2 ** 20 + 8), Buffer.from('mdat')]));
    sb.write(Buffer.alloc(512 * 1024));
    expect(b.memory.partial).toBe(headerBytes + 512 * 1024 + 8);
    expect(limits.budget.used).toBe(stored + b.memory.partial + b.memory.stored + b.memory.cached);
    const err = smoothErrorOf(() => sb.write(Buffer.alloc(512 * 1024)));
    expect([err.code, err.message]).toEqual(['ERR_BUDGET_EXCEEDED', expect.stringContaining('maxBytes')]);
    expect(trimmed).toEqual([]); // nothing shed for a box that could not be held anyway
    sb.abort('error', err);
    expect(b.memory.partial).toBe(0);
    expect(limits.budget.used).toBe(stored + b.memory.total);
  });

  it('a box that fits once old fragments go is taken, and they go', () => {
    const { maxBytes, limits, a, b } = twoPoints();
    const sa = open(a);
    for (let i = 0; i < 25; i++) sa.write(second(i, 1, 30_000)); // ~0.75 MiB
    const trimmed: number[] = [];
    a.on('fragmentTrimmed', () => trimmed.push(1));
    const sb = open(b);
    sb.write(second(0, 1, 400_000)); // 0.4 MiB arriving in one piece
    expect(trimmed.length).toBeGreaterThan(0);
    expect(limits.budget.used).toBeLessThanOrEqual(maxBytes);
    expect(b.lookup('video', 100_000, [], 0n).status).toBe('ok');
  });

  it('a disk store counts its write queue and each fragment, not its files', async () => {
    const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'budget-'));
    const p = point({ store: diskStore({ folder }) });
    const s = open(p);
    for (let i = 0; i < 5; i++) s.write(second(i, 1, 10_000));
    for (let i = 0; i < 50 && p.memory.stored > 5 * FRAGMENT_COST; i++) await new Promise((ok) => setTimeout(ok, 10));
    const m = p.memory;
    expect(m.stored).toBe(5 * FRAGMENT_COST);
    expect(m.disk).toBe(p.bytes);
    expect(m.disk).toBeGreaterThan(50_000);
    p.close();
    fs.rmSync(folder, { recursive: true, force: true });
  });
});

it('a box header and its bytes: the parser reports what it holds', () => {
  const parser = new SmoothIngestParser({ maxBoxSize: 1 << 20 });
  const free = box('free', Buffer.alloc(100));
  expect(parser.buffered).toBe(0);
  parser.push(free.subarray(0, 3)); // half a header
  expect(parser.buffered).toBe(3);
  parser.push(free.subarray(3, 50));
  expect(parser.buffered).toBe(50);
});
