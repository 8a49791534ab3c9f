/**
 * What a client gets for a stored fragment: the packaged header is built once per fragment and
 * variant and then reused, and the sample bytes sent after it are the stored ones themselves (a view,
 * never a copy per request or per format).
 */
import { resolveSettings } from '../../../lib/definition';
import { SmoothIngestParser } from '../../../lib/ingest/smooth';
import type { MediaFragment } from '../../../lib/media';
import { resolveOptions } from '../../../lib/options';
import { PublishingPoint, type PackagedFragment } from '../../../lib/point';
import { fixture } from '../../helpers/raw-ingest';

const F = fixture();

function fed(): { p: PublishingPoint; stored: Map<string, MediaFragment> } {
  const p = new PublishingPoint('ch1.isml', resolveSettings([{ startOnFirstRequest: true }]), resolveOptions({ stateFile: false }));
  const stored = new Map<string, MediaFragment>();
  p.on('fragment', (e) => stored.set(`${e.track}@${e.fragment.time}`, e.fragment));
  const session = p.openIngest('ch1', undefined, new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
  session.write(F.all); // every fragment, then end of stream: all published
  return { p, stored };
}

/** The memory store answers at once: no Promise to wait for. */
function now(v: unknown): PackagedFragment {
  expect(v).toBeDefined();
  expect(typeof (v as { then?: unknown }).then).toBe('undefined');
  return v as PackagedFragment;
}

describe('delivery of a stored fragment', () => {
  const { p, stored } = fed();
  const found = p.lookup('video', 100000, [], 10_000_000n);
  if (found.status !== 'ok') throw new Error(found.status);

  it('builds the Smooth header once and reuses it for every request', () => {
    const a = now(p.smoothFragment(found));
    const b = now(p.smoothFragment(p.lookup('video', 100000, [], 10_000_000n) as typeof found));
    expect(b.head).toBe(a.head);
    expect(b.moofSize).toBe(a.moofSize);
  });

  it('sends the stored sample bytes themselves, for Smooth and for CMAF alike', () => {
    const f = stored.get('video/video/100000@10000000')!;
    const smooth = now(p.smoothFragment(found));
    const cmaf = now(p.cmafSegment(found));
    expect(smooth.data).toBe(f.data);
    expect(cmaf.data).toBe(f.data);
    expect(smooth.dataSize).toBe(f.dataSize);
    // One header per format, each kept: the CMAF one has no tfxd/tfrf, so it is the shorter.
    expect(cmaf.head).not.toBe(smooth.head);
    expect(cmaf.head.length).toBeLessThan(smooth.head.length);
    expect(now(p.cmafSegment(found)).head).toBe(cmaf.head);
  });

  it('builds a CMAF header per decode-time offset', () => {
    const plain = now(p.cmafSegment(found)).head;
    const shifted = now(p.cmafSegment(found, { decodeTimeOffset: 213_333n })).head;
    expect(shifted).not.toBe(plain);
    expect(shifted.length).toBe(plain.length);
  });
});

describe('a request for the newest fragment of a live track (awaitSuccessor)', () => {
  afterEach(() => jest.useRealTimers());

  /** A Started point fed the fixture's first `n` fragments at clock 1 000 000 ms. */
  function live(n: number, edgeWait?: number): PublishingPoint {
    const p = new PublishingPoint(
      'ch1.isml',
      resolveSettings([{ startOnFirstRequest: true }]),
      resolveOptions({ stateFile: false, clock: { now: () => 1_000_000 }, ...(edgeWait === undefined ? {} : { edgeWait }) }),
    );
    const session = p.openIngest('ch1', undefined, new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    session.write(F.header);
    for (const f of F.fragments.slice(0, n)) session.write(f);
    return p;
  }

  function newest(p: PublishingPoint, time: bigint): Extract<ReturnType<PublishingPoint['lookup']>, { status: 'ok' }> {
    const found = p.lookup('video', 100000, [], time);
    if (found.status !== 'ok') throw new Error(found.status);
    return found;
  }

  it('waits at most three fragment durations after the fragment arrived (1 s fragments: 3 s)', async () => {
    jest.useFakeTimers();
    const p = live(6);
    let settled = false;
    void p.awaitSuccessor(newest(p, 10_000_000n))!.then(() => (settled = true));
    jest.advanceTimersByTime(2999);
    await Promise.resolve();
    expect(settled).toBe(false);
    jest.advanceTimersByTime(1);
    await Promise.resolve();
    expect(settled).toBe(true);
  });

  it('never waits longer than edgeWait, and not at all with 0, for a fragment with a successor, or once the point stops', () => {
    jest.useFakeTimers();
    expect(live(6, 0).awaitSuccessor(newest(live(6, 0), 10_000_000n))).toBeUndefined();
    const p = live(6);
    expect(p.awaitSuccessor(newest(p, 0n))).toBeUndefined();
    p.command('stop');
    expect(p.awaitSuccessor(newest(p, 10_000_000n))).toBeUndefined();
    const short = live(6, 500);
    let settled = false;
    void short.awaitSuccessor(newest(short, 10_000_000n))!.then(() => (settled = true));
    jest.advanceTimersByTime(500);
    return Promise.resolve().then(() => expect(settled).toBe(true));
  });

  it('releases every waiting request when the next fragment arrives (in batches), and frees the bound', async () => {
    const p = new PublishingPoint('ch1.isml', resolveSettings([{ startOnFirstRequest: true }]), resolveOptions({ stateFile: false }));
    const session = p.openIngest('ch1', undefined, new SmoothIngestParser({ maxBoxSize: 1 << 24 }));
    session.write(F.header);
    for (const f of F.fragments.slice(0, 6)) session.write(f);
    const found = newest(p, 10_000_000n);
    const waits = Array.from({ length: 1024 }, () => p.awaitSuccessor(found)!);
    expect(p.awaitSuccessor(found)).toBeUndefined();
    session.write(F.fragments[6]!); // video 100k at 2 s
    await Promise.all(waits);
    const next = newest(p, 20_000_000n);
    const again = p.awaitSuccessor(next);
    expect(again).toBeDefined();
    p.close();
    await again;
  });

  it('holds at most 1024 waiting requests per point; the next is answered at once', () => {
    jest.useFakeTimers();
    const p = live(6);
    const found = newest(p, 10_000_000n);
    for (let i = 0; i < 1024; i++) expect(p.awaitSuccessor(found)).toBeDefined();
    expect(p.awaitSuccessor(found)).toBeUndefined();
    p.close(); // settles them all
  });
});
