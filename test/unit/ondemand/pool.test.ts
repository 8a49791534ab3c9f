/**
 * The bounded file-handle pool of on-demand presentations: at most `max` handles, the least recently
 * used idle one closed to make room, a handle in use never closed under its read, one handle per file
 * shared by concurrent reads, failed opens not kept, and handles of changed files dropped.
 */
import type { FileHandle } from 'node:fs/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { FilePool } from '../../../lib/ondemand/pool';

/** An opener of fake handles that records every open and close. */
function fakeFiles(fail: (file: string) => boolean = () => false): {
  open: (file: string) => Promise<FileHandle>;
  opened: string[];
  closed: string[];
} {
  const opened: string[] = [];
  const closed: string[] = [];
  return {
    opened,
    closed,
    open: async (file) => {
      if (fail(file)) throw new Error(`cannot open ${file}`);
      opened.push(file);
      return { close: async () => void closed.push(file) } as unknown as FileHandle;
    },
  };
}

const tick = (): Promise<void> => new Promise((ok) => setImmediate(ok));

/** A use of `file` that holds its handle until `release()` is called. */
function hold(pool: FilePool, file: string): { release: () => void; done: Promise<void>; started: () => boolean } {
  let release!: () => void;
  let started = false;
  const gate = new Promise<void>((ok) => (release = ok));
  const done = pool.use(file, async () => {
    started = true;
    await gate;
  });
  return { release, done, started: () => started };
}

describe('FilePool', () => {
  it('keeps at most max handles, closing the least recently used idle one', async () => {
    const f = fakeFiles();
    const pool = new FilePool(2, f.open);
    const use = (file: string): Promise<void> => pool.use(file, async () => undefined);
    await use('a');
    await use('b');
    await use('a'); // a is now the most recently used
    await use('c');
    await tick();
    expect(f.closed).toEqual(['b']);
    expect(pool.size).toBe(2);
    await use('a'); // still open: no new open
    expect(f.opened).toEqual(['a', 'b', 'c']);
    await pool.close();
    expect(f.closed.sort()).toEqual(['a', 'b', 'c']);
  });

  it('never closes a handle in use: a use beyond the bound waits for a release', async () => {
    const f = fakeFiles();
    const pool = new FilePool(1, f.open);
    const a = hold(pool, 'a');
    await tick();
    expect(a.started()).toBe(true);
    const b = hold(pool, 'b');
    await tick();
    expect([b.started(), f.opened, f.closed]).toEqual([false, ['a'], []]);
    a.release();
    await a.done;
    await tick();
    await tick();
    expect([b.started(), f.opened, f.closed]).toEqual([true, ['a', 'b'], ['a']]);
    expect(pool.size).toBe(1);
    b.release();
    await b.done;
    await pool.close();
  });

  it('concurrent uses of one file share its handle', async () => {
    const f = fakeFiles();
    const pool = new FilePool(1, f.open);
    const uses = [hold(pool, 'a'), hold(pool, 'a'), hold(pool, 'a')];
    await tick();
    expect(uses.map((u) => u.started())).toEqual([true, true, true]);
    uses.forEach((u) => u.release());
    await Promise.all(uses.map((u) => u.done));
    expect(f.opened).toEqual(['a']);
    await pool.close();
  });

  it('forget drops a handle: an idle one closes now, a busy one when its read ends; the next use reopens', async () => {
    const f = fakeFiles();
    const pool = new FilePool(4, f.open);
    await pool.use('a', async () => undefined);
    pool.forget('a');
    await tick();
    expect(f.closed).toEqual(['a']);
    const busy = hold(pool, 'a');
    await tick();
    pool.forget('a');
    await tick();
    expect(f.closed).toEqual(['a']);
    busy.release();
    await busy.done;
    await tick();
    expect(f.closed).toEqual(['a', 'a']);
    expect(f.opened).toEqual(['a', 'a']);
    expect(pool.size).toBe(0);
  });

  it('a failed open takes no slot and is tried again next time', async () => {
    let broken = true;
    const f = fakeFiles((file) => file === 'x' && broken);
    const pool = new FilePool(1, f.open);
    await expect(pool.use('x', async () => 1)).rejects.toThrow('cannot open x');
    expect(pool.size).toBe(0);
    broken = false;
    await expect(pool.use('x', async () => 2)).resolves.toBe(2);
    await expect(pool.use('y', async () => 3)).resolves.toBe(3);
    await pool.close();
  });

  it('reads real files with positioned reads, and refuses uses once closed', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'live-smooth-pool-'));
    try {
      const files = ['one', 'two', 'three'].map((n) => {
        const p = path.join(dir, n);
        writeFileSync(p, `${n}:${'x'.repeat(100)}`);
        return p;
      });
      const pool = new FilePool(2);
      const read = (file: string, at: number, n: number): Promise<string> =>
        pool.use(file, async (fh) => {
          const b = Buffer.alloc(n);
          await fh.read(b, 0, n, at);
          return b.toString();
        });
      const got = await Promise.all(files.flatMap((f) => [read(f, 0, 4), read(f, 2, 3)]));
      expect(got).toEqual(['one:', 'e:x', 'two:', 'o:x', 'thre', 'ree']);
      expect(pool.size).toBeLessThanOrEqual(2);
      await pool.close();
      expect(pool.size).toBe(0);
      await expect(read(files[0]!, 0, 1)).rejects.toThrow('closed');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('needs room for one handle', () => {
    expect(() => new FilePool(0)).toThrow(RangeError);
  });
});
