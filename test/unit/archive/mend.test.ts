/**
 * Mending an archive file a process left unfinished: any cut through the last fragment leaves the
 * complete fragments before it, closed with an `mfra` that lists exactly them; a finished file is
 * left alone. A sparse track's file (gaps, events of duration 0) is mended the same way and reads back
 * with every event.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { mendFile } from '../../../lib/archive';
import { openSource } from '../../../lib/ismv/source';
import { children } from '../../../lib/mp4/reader';
import { cat, fragment, ftyp, lsmBox, lsmSmil, moov } from '../../helpers/fmp4';
import { adSpec } from '../../helpers/sparse';
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

  it('a sparse track\'s file with events of duration 0 keeps every complete event', async () => {
    const ads = adSpec(1);
    const events = [0n, 50_000_000n, 300_000_000n].map((time, i) =>
      fragment(i + 1, [{ trackId: 1, time, duration: i === 1 ? 20_000_000n : 0n, samples: [Buffer.from(`fc30${i}0`, 'hex')] }]),
    );
    const file = path.join(dir, 'ads_0.ismv');
    writeFileSync(file, cat(ftyp(), lsmBox(lsmSmil([ads])), moov([ads]), events[0]!, events[1]!, events[2]!.subarray(0, 30)));
    expect(await mendFile(file)).toEqual({ file, fragments: 2, cut: 30, complete: false });
    const source = await openSource([file], { sparse: true });
    await source.close();
    expect(source.tracks[0]!.info).toMatchObject({ name: 'ads', parent: 'video', manifestOutput: true });
    expect(source.tracks[0]!.fragments.map((f) => [f.time, f.duration])).toEqual([[0n, 0n], [50_000_000n, 20_000_000n]]);
  });
});
