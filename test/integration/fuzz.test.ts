/**
 * Ingest fuzzing: mutated real captures (the ffmpeg push, `.ismv`-shaped streams) in random chunk
 * splits, through the core (`PublishingPoint.openIngest`) and through a real server. A short run here;
 * `npm run fuzz` runs a long one. `FUZZ_SEED` replays a run, `FUZZ_CASES` sets the number of core cases
 * (HTTP cases: a fiftieth of it, at least 60, or `FUZZ_HTTP_CASES`), `FUZZ_SCALE` multiplies the size of
 * the big text mutations (huge attributes, NUL runs) and of fragment floods. Failing inputs are written, shrunk,
 * to `test-output/fuzz/`.
 *
 * Unhandled rejections: under Jest the test's `process` never sees them (jest-circus takes them on the
 * parent process), and Jest fails the running test with the rejection; the engine's own listener
 * reports them with their case when it runs outside Jest.
 */
import { SmoothIngestParser } from '../../lib/ingest/smooth';
import { resolveSettings } from '../../lib/definition';
import { resolveOptions } from '../../lib/options';
import { PublishingPoint } from '../../lib/point';
import { Rng } from '../fuzz/prng';
import { bodyOf, chunksOf, makeCase, mutateSmil, seedCorpus } from '../fuzz/mutate';
import { INGEST_CODES, MAX_BOX, formatFinding, runCore, runHttp } from '../fuzz/run';
import { parseManifest } from '../helpers/raw-ingest';

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0;
const CASES = Number(process.env.FUZZ_CASES ?? 800);
const HTTP_CASES = Number(process.env.FUZZ_HTTP_CASES ?? Math.max(60, Math.floor(CASES / 50)));
const SCALE = Number(process.env.FUZZ_SCALE ?? 1);
const LONG = CASES > 1000;
const log = (line: string): void => {
  if (LONG || process.env.FUZZ_VERBOSE) process.stdout.write(`${line}\n`);
};

describe(`ingest fuzzing (FUZZ_SEED=${SEED})`, () => {
  describe('the engine', () => {
    it('starts from valid streams: every corpus entry, unmutated, is accepted whole and listed', () => {
      for (const entry of seedCorpus()) {
        const p = new PublishingPoint('c.isml', resolveSettings([{ startOnFirstRequest: true }]), resolveOptions({ stateFile: false }));
        const s = p.openIngest('s1', undefined, new SmoothIngestParser({ maxBoxSize: MAX_BOX }));
        s.write(entry.body);
        s.finish();
        const m = parseManifest(p.manifest().body.toString('utf8'));
        // A stream ended by its mfra lists everything; an open one holds its newest fragments back (lookahead).
        const listed = m.streams.length > 0 && m.streams.every((st) => st.fragments.length > 0);
        expect({ entry: entry.name, eos: s.eos, listed }).toEqual({ entry: entry.name, eos: s.eos, listed: s.eos });
        p.close();
      }
    });

    it('is reproducible: a case is the same bytes and splits from its seed', () => {
      for (let i = 0; i < 50; i++) {
        const a = makeCase(1234, i);
        const b = makeCase(1234, i);
        expect(b).toEqual(a);
        const body = bodyOf(a).body;
        expect(bodyOf(b).body.equals(body)).toBe(true);
        expect(Buffer.concat(chunksOf(body, a.split)).equals(body)).toBe(true);
      }
      expect(mutateSmil(Buffer.from('<smil a="1"/>'), new Rng(7)).equals(mutateSmil(Buffer.from('<smil a="1"/>'), new Rng(7)))).toBe(true);
    });

    it('refuses with 4xx codes only', () => {
      expect([...INGEST_CODES].sort()).toEqual(expect.arrayContaining(['ERR_BAD_BOX', 'ERR_BAD_FRAGMENT', 'ERR_BAD_HEADER', 'ERR_TRUNCATED']));
    });
  });

  it(
    `core: ${CASES} mutated ingest bodies through PublishingPoint.openIngest`,
    async () => {
      const report = await runCore({ seed: SEED, cases: CASES, scale: SCALE, rssBoundMb: Number(process.env.FUZZ_RSS_MB ?? 384), log });
      log(`core: ${report.cases} cases in ${report.ms} ms, RSS growth ${report.rssGrowthMb} MB, outcomes ${JSON.stringify(report.outcomes)}`);
      expect(report.findings.map(formatFinding)).toEqual([]);
      // the run exercised both sides: streams accepted and streams refused
      expect(Object.keys(report.outcomes).length).toBeGreaterThan(1);
    },
    60_000 + CASES * 50,
  );

  it(
    `http: ${HTTP_CASES} mutated POSTs in random splits while a good stream pushes to another point`,
    async () => {
      const report = await runHttp({ seed: (SEED ^ 0x5a5a5a5a) >>> 0, cases: HTTP_CASES, scale: SCALE, log });
      expect(report.findings.map(formatFinding)).toEqual([]);
      expect(report.goodFragments).toBeGreaterThan(0);
    },
    60_000 + HTTP_CASES * 500,
  );
});
