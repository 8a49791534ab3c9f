/**
 * What every output lists of a point's StreamIndexes: the media ones as `listGroup` lists them, and the
 * sparse ones (captions, ad markers) up to their parent's edge. A sparse fragment becomes visible only
 * once its parent lists a fragment that starts at or after it (protocol doc §2.13), so a player never
 * sees a caption or a splice ahead of the media it belongs to; it stays listed while it overlaps the
 * parent's window.
 */
import type { FragmentTime } from '../model';
import { listGroup } from './timeline';
import type { Group } from './tracks';

/** `ticks` of timescale `from` in timescale `to`, rounded down. */
export function rescale(ticks: bigint, from: number, to: number): bigint {
  if (from === to) return ticks;
  const scaled = ticks * BigInt(to);
  const q = scaled / BigInt(from);
  return scaled < 0n && q * BigInt(from) !== scaled ? q - 1n : q;
}

/** The media StreamIndex a sparse one follows, if the point has it. */
export function parentOf(group: Group, groups: readonly Group[]): Group | undefined {
  return group.parent === undefined ? undefined : groups.find((g) => g.name === group.parent && g.parent === undefined);
}

/**
 * The listing of each StreamIndex, in the order of `groups`.
 * @param window - DVR window in seconds, 0 for the whole event
 */
export function listGroups(groups: readonly Group[], lookahead: number, window: number): FragmentTime[][] {
  const listings = new Map<Group, FragmentTime[]>();
  for (const g of groups) if (g.parent === undefined) listings.set(g, listGroup(g.tracks, lookahead, window, g.timescale));
  return groups.map((g) => {
    const own = listings.get(g);
    if (own) return own;
    const parent = parentOf(g, groups);
    return parent ? listSparse(g, listings.get(parent)!, parent.timescale) : [];
  });
}

/** A sparse StreamIndex's published fragments that its parent's listing (`parent`, of `timescale`) covers. */
function listSparse(group: Group, parent: readonly FragmentTime[], timescale: number): FragmentTime[] {
  const first = parent[0];
  const last = parent[parent.length - 1];
  if (!first || !last) return [];
  const from = rescale(first.time, timescale, group.timescale);
  const upTo = rescale(last.time, timescale, group.timescale);
  const out: FragmentTime[] = [];
  // Sparse tracks are few and short-lived in the window; several bitrates of one are rare, and then the
  // first to have a start wins, as for media.
  const seen = new Set<bigint>();
  for (const t of group.tracks) {
    for (const f of t.timeline.published()) {
      if (f.time > upTo) break;
      if (f.time + f.duration <= from && f.time < from) continue;
      if (seen.has(f.time)) continue;
      seen.add(f.time);
      out.push(f);
    }
  }
  if (group.tracks.length > 1) out.sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  return out;
}
