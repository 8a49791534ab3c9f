/**
 * Track timelines and StreamIndex listing on their own: hold-back and publication, successors for the
 * tfrf, the DVR trim (published fragments only), evictions from the head, fragments the store lost in
 * the middle, and the listed edge across bitrates (a stalled or new bitrate does not hold it back).
 */
import type { FragmentTime } from '../../../lib/model';
import { ListedTrack, TrackTimeline, listGroup, trimBound } from '../../../lib/point/timeline';

const D = 20_000_000n;
const times = (list: readonly FragmentTime[]): bigint[] => list.map((f) => f.time);

/** A timeline with fragments at 0, D, 2D … (n of them). */
function timeline(n: number, lookahead = 2): TrackTimeline {
  const t = new TrackTimeline();
  for (let i = 0; i < n; i++) {
    t.add({ time: BigInt(i) * D, duration: D });
    t.publishReady(lookahead);
  }
  return t;
}

describe('TrackTimeline', () => {
  it('holds back the newest `lookahead` fragments and publishes a fragment once that many follow it', () => {
    const t = new TrackTimeline();
    expect(times(t.publishReady(2))).toEqual([]);
    t.add({ time: 0n, duration: D });
    t.add({ time: D, duration: D });
    expect(times(t.publishReady(2))).toEqual([]);
    expect(t.held).toBe(2);
    t.add({ time: 2n * D, duration: D });
    expect(times(t.publishReady(2))).toEqual([0n]);
    expect(t.isPublished(t.find(0n)!)).toBe(true);
    expect(t.isPublished(t.find(D)!)).toBe(false);
    expect(t.find(5n)).toBeUndefined();
    expect(t.newestPublished()?.time).toBe(0n);
    expect(times(t.publishAll())).toEqual([D, 2n * D]);
    expect(t.held).toBe(0);
    expect(times(t.published())).toEqual([0n, D, 2n * D]);
  });

  it('accepts only times after the newest ever added, even after a trim', () => {
    const t = timeline(5);
    expect(t.accepts(4n * D)).toBe(false);
    expect(t.accepts(3n * D)).toBe(false);
    expect(t.accepts(5n * D)).toBe(true);
    t.publishAll();
    t.trim(10n * D);
    expect(t.published()).toEqual([]);
    expect(t.accepts(D)).toBe(false);
    expect(t.newest).toBe(4n * D);
    expect(t.lastDuration).toBe(D);
  });

  it('gives the successors of a fragment (published or held), at most n, and counts them without a list', () => {
    const t = timeline(5);
    const first = t.find(0n)!;
    expect(times(t.successors(first, 2))).toEqual([D, 2n * D]);
    expect(t.successorCount(first, 2)).toBe(2);
    const third = t.find(2n * D)!;
    expect(times(t.successors(third, 5))).toEqual([3n * D, 4n * D]);
    expect(t.successorCount(third, 5)).toBe(2);
    expect(t.successorCount(t.find(4n * D)!, 2)).toBe(0);
  });

  it('trims only published fragments that end at or before the bound', () => {
    const t = timeline(6); // 0..3 published, 4 and 5 held
    expect(times(t.trim(2n * D))).toEqual([0n, D]);
    expect(times(t.published())).toEqual([2n * D, 3n * D]);
    // Held fragments stay even when the bound is past them.
    expect(times(t.trim(100n * D))).toEqual([2n * D, 3n * D]);
    expect(t.held).toBe(2);
    expect(t.isPublished(t.find(4n * D)!)).toBe(false);
  });

  it('removes through a time the store evicted (oldest first), held ones included', () => {
    const t = timeline(4); // 0, D published; 2D, 3D held
    expect(times(t.removeThrough(2n * D))).toEqual([0n, D, 2n * D]);
    expect(t.held).toBe(1);
    expect(t.published()).toEqual([]);
    expect(times(t.removeThrough(7n))).toEqual([]); // not a fragment of the timeline
    expect(times(t.publishAll())).toEqual([3n * D]);
  });

  it('skips a fragment the store lost in the middle: not listed, not a successor, not found', () => {
    const t = timeline(5);
    expect(t.drop(D)?.time).toBe(D);
    expect(t.drop(D)).toBeUndefined();
    expect(t.find(D)).toBeUndefined();
    expect(times(t.published())).toEqual([0n, 2n * D]);
    expect(times(t.successors(t.find(0n)!, 2))).toEqual([2n * D, 3n * D]);
    expect(t.successorCount(t.find(0n)!, 2)).toBe(2);
    expect(times(t.trim(3n * D))).toEqual([0n, 2n * D]);
  });

  it('stays proportional to what it holds over a long run (compaction)', () => {
    const t = new TrackTimeline();
    for (let i = 0; i < 50_000; i++) {
      t.add({ time: BigInt(i) * D, duration: D });
      t.publishReady(2);
      t.trim(BigInt(i - 10) * D);
    }
    expect(t.published().length).toBeLessThanOrEqual(12);
    expect(t.isPublished(t.find(49_990n * D)!)).toBe(true);
  });
});

describe('listGroup and trimBound', () => {
  const track = (n: number, live = 1, lookahead = 2): ListedTrack => ({ timeline: timeline(n, lookahead), live });

  it('lists the union of the bitrates up to the newest time every live bitrate has', () => {
    const list = listGroup([track(10), track(8)], 2, 0, 10_000_000);
    // 8 fragments on the slower bitrate, 6 published: the edge is its newest published (5D).
    expect(times(list)).toEqual([0n, D, 2n * D, 3n * D, 4n * D, 5n * D]);
  });

  it('a bitrate that stalled more than lookahead + 2 fragments behind, or has nothing, does not hold the edge', () => {
    expect(times(listGroup([track(20), track(8)], 2, 0, 10_000_000)).at(-1)).toBe(17n * D);
    expect(times(listGroup([track(10), { timeline: new TrackTimeline(), live: 1 }], 2, 0, 10_000_000)).at(-1)).toBe(7n * D);
    // A bitrate no encoder feeds any more does not either.
    expect(times(listGroup([track(10), track(4, 0)], 2, 0, 10_000_000)).at(-1)).toBe(7n * D);
  });

  it('lists only the DVR window, and trims two fragments beyond it', () => {
    const tracks = [track(30)];
    const list = listGroup(tracks, 2, 10, 10_000_000); // 10 s = 5 fragments of 2 s
    expect(times(list)).toEqual([23n * D, 24n * D, 25n * D, 26n * D, 27n * D]);
    // Newest published ends at 28D; the window is 5D; two more fragments stay for slow clients.
    expect(trimBound(tracks, 10, 10_000_000)).toBe(28n * D - 5n * D - 2n * D);
    expect(trimBound(tracks, 0, 10_000_000)).toBeUndefined();
    expect(trimBound([{ timeline: new TrackTimeline(), live: 1 }], 10, 10_000_000)).toBeUndefined();
  });
});
