/**
 * Mending an archive file a process left unfinished: any cut through the last fragment leaves the
 * complete fragments before it, closed with an `mfra` that lists exactly them; a finished file is
 * left alone.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { mendFile } from '../../../lib/archive';
import { children } from '../../../lib/mp4/reader';
import { fixture, tfxdOf } from '../../helpers/raw-ingest';

/** The fixture's first track as an unfinished archive-like file: header, then its fragments. */
function unfinished(): { header: Buffer; fragments: Buffer[] } {
  const f = fixture();
  // The fixture's fragments of one track (every third: video 100k, video 50k, audio, …) all carry tfxd.
  return { header: f.header, fragments: f.fragments.filter((_, i) => i % 3 === 0) };
}

describe('mendFile', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'live-smooth-mend-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('cuts a partial last fragment at any byte and lists the complete ones', async () => {
    const { header, fragments } = unfinished();
    const whole = Buffer.concat([header, ...fragments.slice(0, -1)]);
    const last = fragments[fragments.length - 1]!;
    for (const cut of [1, 7, 8, 100, last.length - 1]) {
      const file = path.join(dir, `cut-${cut}.ismv`);
      writeFileSync(file, whole);
      appendFileSync(file, last.subarray(0, cut));
      const r = await mendFile(file);
      expect(r).toEqual({ file, fragments: fragments.length - 1, cut, complete: false });
      const bytes = readFileSync(file);
      expect(bytes.subarray(0, whole.length).equals(whole)).toBe(true);
      const boxes = [...children(bytes)];
      expect(boxes[boxes.length - 1]!.type).toBe('mfra');
      const tfra = [...children(boxes[boxes.length - 1]!.data.subarray(8))][0]!.data;
      expect(tfra.readUInt32BE(20)).toBe(fragments.length - 1);
      expect(tfra.readBigUInt64BE(24)).toBe(tfxdOf(fragments[0]!).time);
    }
  });

  it('leaves a file that ends with its mfra as it is', async () => {
    const file = path.join(dir, 'cut-8.ismv');
    const before = readFileSync(file);
    expect(await mendFile(file)).toEqual({ file, fragments: unfinished().fragments.length - 1, cut: 0, complete: true });
    expect(readFileSync(file).equals(before)).toBe(true);
  });

  it('a file cut inside its header keeps only what is whole', async () => {
    const { header } = unfinished();
    const file = path.join(dir, 'header.ismv');
    writeFileSync(file, header.subarray(0, header.length - 3));
    const r = await mendFile(file);
    expect(r.fragments).toBe(0);
    expect(r.cut).toBeGreaterThan(0);
  });
});
