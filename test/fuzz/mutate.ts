/**
 * The fuzzer's inputs: a corpus of real ingest bodies (the captured ffmpeg push and `.ismv`-shaped
 * streams built in code) and seeded mutations of them. A case is data (`FuzzCase`): a corpus entry, a
 * list of mutations each with its own seed, and a seed for the chunk splits, so a failing case can be
 * replayed from its seed and shrunk by dropping mutations without changing the others.
 */
import { Rng, seedOf } from './prng';
import { fixture, fragmentsOfRound, tfxdOf } from '../helpers/raw-ingest';
import { UUID_LSM, UUID_TFXD, cat, ingestHeader } from '../helpers/fmp4';
import { IsmvSpec, ismv, tracksOf } from '../helpers/ismv';

// ---------------------------------------------------------------------------------------------------
// Corpus
// ---------------------------------------------------------------------------------------------------

export interface CorpusEntry {
  name: string;
  body: Buffer;
}

/** An ingest body (ftyp, Live Server Manifest box, moov, fragments, mfra) from an `.ismv` spec. */
function ingestOf(spec: IsmvSpec): Buffer {
  const file = ismv(spec);
  const boxes = topLevel(file);
  const fragments = boxes.filter((b) => b.type !== 'ftyp' && b.type !== 'moov').map((b) => file.subarray(b.start, b.end));
  return cat(ingestHeader(tracksOf(spec)), ...fragments);
}

let corpus: CorpusEntry[] | undefined;

/** The seeds every case starts from; each is accepted whole by the server. */
export function seedCorpus(): CorpusEntry[] {
  if (corpus) return corpus;
  const f = fixture();
  corpus = [
    { name: 'ffmpeg-push', body: f.all },
    { name: 'ffmpeg-push-round1', body: cat(f.header, ...fragmentsOfRound(1), f.mfra) },
    { name: 'ffmpeg-push-open', body: cat(f.header, ...f.fragments.slice(0, 6)) },
    { name: 'ismv', body: ingestOf({}) },
    { name: 'ismv-multitraf-tfdt', body: ingestOf({ video: [400_000, 200_000], multiTraf: true, tfdt: true }) },
    { name: 'ismv-video-only', body: ingestOf({ audio: false, videoSamples: 1, fragments: 4 }) },
  ];
  return corpus;
}

// ---------------------------------------------------------------------------------------------------
// A tolerant box walker
// ---------------------------------------------------------------------------------------------------

export interface BoxNode {
  type: string;
  start: number;
  end: number;
  /** Offset of the payload (after size, type and any largesize). */
  payload: number;
  /** How the size was written: 32-bit, 64-bit largesize, or 0 (to the end). */
  sizeKind: 'u32' | 'u64' | 'toEnd';
  parents: BoxNode[];
  children: BoxNode[];
}

const CONTAINERS = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl', 'mvex', 'moof', 'traf', 'mfra', 'edts', 'dinf', 'udta']);
const TFXD = Buffer.from(UUID_TFXD, 'hex');
const LSM = Buffer.from(UUID_LSM, 'hex');

/** The boxes of `buf[start, end)`, stopping at the first size that does not fit. */
export function walk(buf: Buffer, start = 0, end = buf.length, parents: BoxNode[] = []): BoxNode[] {
  const out: BoxNode[] = [];
  let at = start;
  while (at + 8 <= end) {
    let size = buf.readUInt32BE(at);
    let payload = at + 8;
    let sizeKind: BoxNode['sizeKind'] = 'u32';
    if (size === 1) {
      if (at + 16 > end) break;
      const large = buf.readBigUInt64BE(at + 8);
      if (large > BigInt(end - at)) break;
      size = Number(large);
      payload = at + 16;
      sizeKind = 'u64';
    } else if (size === 0) {
      size = end - at;
      sizeKind = 'toEnd';
    }
    if (size < payload - at || at + size > end) break;
    const node: BoxNode = { type: buf.toString('latin1', at + 4, at + 8), start: at, end: at + size, payload, sizeKind, parents, children: [] };
    if (CONTAINERS.has(node.type)) node.children = walk(buf, payload, node.end, [...parents, node]);
    else if (node.type === 'stsd') node.children = walk(buf, payload + 8, node.end, [...parents, node]);
    out.push(node);
    at += size;
  }
  return out;
}

function topLevel(buf: Buffer): BoxNode[] {
  return walk(buf);
}

/** Every box of the tree, depth first. */
export function allBoxes(buf: Buffer): BoxNode[] {
  const out: BoxNode[] = [];
  const visit = (nodes: BoxNode[]): void => {
    for (const n of nodes) {
      out.push(n);
      visit(n.children);
    }
  };
  visit(walk(buf));
  return out;
}

/** Adds `delta` to the size field of `node` (when it has one). */
function grow(buf: Buffer, node: BoxNode, delta: number): void {
  if (node.sizeKind === 'u32') buf.writeUInt32BE((buf.readUInt32BE(node.start) + delta) >>> 0, node.start);
  else if (node.sizeKind === 'u64') buf.writeBigUInt64BE(BigInt.asUintN(64, buf.readBigUInt64BE(node.start + 8) + BigInt(delta)), node.start + 8);
}

/** Replaces `buf[start, end)` inside `node`'s parents with `bytes`, fixing every ancestor's size. */
function splice(buf: Buffer, parents: BoxNode[], start: number, end: number, bytes: Buffer): Buffer {
  const out = Buffer.concat([buf.subarray(0, start), bytes, buf.subarray(end)]);
  const delta = bytes.length - (end - start);
  for (const p of parents) grow(out, p, delta);
  return out;
}

/** Offsets of `needle` in `buf`. */
function occurrences(buf: Buffer, needle: Buffer): number[] {
  const out: number[] = [];
  for (let at = buf.indexOf(needle); at >= 0; at = buf.indexOf(needle, at + 1)) out.push(at);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Mutations
// ---------------------------------------------------------------------------------------------------

/** A 64-bit time: negative, huge, backwards, or around the original. */
function wildTime(rng: Rng, original: bigint): bigint {
  // Near the ends of the range an offset wraps, as it would in the 64-bit field it goes into.
  return BigInt.asIntN(64, rng.pick([
    -1n,
    -(2n ** 63n),
    2n ** 63n - 1n,
    2n ** 62n,
    2n ** 53n + 1n,
    0n,
    original - BigInt(rng.int(1, 1000)) * 10_000_000n,
    original - 1n,
    original + 1n,
    original + 10n ** 15n,
    original + BigInt(rng.int(4, 100)) * 10_000_000n,
    BigInt.asIntN(64, (BigInt(rng.u32()) << 32n) | BigInt(rng.u32())),
  ]));
}

function wildU32(rng: Rng, original: number): number {
  return rng.pick([0, 1, 2, 7, 8, original - 1, original + 1, original * 2, 0x7fffffff, 0x80000000, 0xffffffff, rng.u32(), rng.int(0, 1 << 20)]) >>> 0;
}

type Mutator = (buf: Buffer, rng: Rng, scale: number) => Buffer | undefined;

const mutators: Record<string, Mutator> = {
  /** Flips 1–16 random bits. */
  bitflip(buf, rng) {
    if (buf.length === 0) return undefined;
    const out = Buffer.from(buf);
    for (let n = rng.int(1, 16); n > 0; n--) {
      const at = rng.below(out.length);
      out[at] = out[at]! ^ (1 << rng.below(8));
    }
    return out;
  },

  /** Overwrites a run of bytes with 0x00, 0xff, one repeated byte or random bytes. */
  byteRun(buf, rng) {
    if (buf.length === 0) return undefined;
    const out = Buffer.from(buf);
    const at = rng.below(out.length);
    const n = Math.min(out.length - at, rng.size(16, 4096));
    const kind = rng.below(4);
    const fill = kind === 0 ? 0 : kind === 1 ? 0xff : rng.below(256);
    if (kind === 3) rng.bytes(n).copy(out, at);
    else out.fill(fill, at, at + n);
    return out;
  },

  /** Inserts random or repeated bytes somewhere. */
  insertBytes(buf, rng) {
    const at = rng.below(buf.length + 1);
    const n = rng.size(16, 8192);
    const bytes = rng.chance(0.5) ? rng.bytes(n) : Buffer.alloc(n, rng.below(256));
    return Buffer.concat([buf.subarray(0, at), bytes, buf.subarray(at)]);
  },

  /** A box's size field set to 0, 1, 7, 8, huge, one over or one under, or random. */
  boxSize(buf, rng) {
    const boxes = allBoxes(buf);
    if (boxes.length === 0) return undefined;
    const b = rng.pick(boxes);
    const out = Buffer.from(buf);
    const actual = b.end - b.start;
    const value = rng.pick([0, 1, 7, 8, 0xffffffff, 0x7fffffff, actual + 1, actual - 1, actual + rng.int(2, 100_000), 32 * 2 ** 20 + 1, rng.u32()]);
    out.writeUInt32BE(Math.max(0, value) >>> 0, b.start);
    if (value === 1 && rng.chance(0.5) && b.start + 16 <= out.length) {
      // a largesize: huge, too small, or the real size plus one
      out.writeBigUInt64BE(rng.pick([2n ** 64n - 1n, 2n ** 40n, 15n, 0n, BigInt(actual + 1)]), b.start + 8);
    }
    return out;
  },

  /** The body cut short, often near a box boundary. */
  truncate(buf, rng) {
    if (buf.length < 2) return undefined;
    const boxes = allBoxes(buf);
    if (boxes.length > 0 && rng.chance(0.6)) {
      const b = rng.pick(boxes);
      const at = Math.max(0, Math.min(buf.length - 1, rng.pick([b.start, b.end]) + rng.int(-9, 9)));
      return buf.subarray(0, at);
    }
    return buf.subarray(0, rng.below(buf.length));
  },

  /** A box (at any depth) appears twice. */
  duplicateBox(buf, rng) {
    const boxes = allBoxes(buf);
    if (boxes.length === 0) return undefined;
    const b = rng.pick(boxes);
    const copy = buf.subarray(b.start, b.end);
    const times = rng.chance(0.9) ? 1 : rng.int(2, 50);
    return splice(buf, b.parents, b.end, b.end, Buffer.concat(Array(times).fill(copy)));
  },

  /** A box (at any depth) is left out. */
  dropBox(buf, rng) {
    const boxes = allBoxes(buf);
    if (boxes.length === 0) return undefined;
    const b = rng.pick(boxes);
    return splice(buf, b.parents, b.start, b.end, Buffer.alloc(0));
  },

  /** Two sibling boxes change places, or one moves to another place among its siblings. */
  reorderBoxes(buf, rng) {
    const groups = [walk(buf), ...allBoxes(buf).filter((b) => b.children.length > 1).map((b) => b.children)].filter((g) => g.length > 1);
    if (groups.length === 0) return undefined;
    const siblings = rng.pick(groups);
    const i = rng.below(siblings.length);
    let j = rng.below(siblings.length - 1);
    if (j >= i) j++;
    const [a, b] = i < j ? [siblings[i]!, siblings[j]!] : [siblings[j]!, siblings[i]!];
    const parts = [buf.subarray(0, a.start), buf.subarray(b.start, b.end), buf.subarray(a.end, b.start), buf.subarray(a.start, a.end), buf.subarray(b.end)];
    return Buffer.concat(parts);
  },

  /** A trun's sample count, flags or one sample field changed. */
  trun(buf, rng) {
    const runs = allBoxes(buf).filter((b) => b.type === 'trun' && b.end - b.payload >= 8);
    if (runs.length === 0) return undefined;
    const t = rng.pick(runs);
    const out = Buffer.from(buf);
    const flagsAt = t.payload + 1;
    const countAt = t.payload + 4;
    switch (rng.below(4)) {
      case 0:
        out.writeUInt32BE(wildU32(rng, out.readUInt32BE(countAt)), countAt);
        break;
      case 1: {
        const flags = out.readUIntBE(flagsAt, 3);
        const next = rng.chance(0.5) ? flags ^ (1 << rng.pick([0, 2, 8, 9, 10, 11, rng.below(24)])) : rng.pick([0, 0x000001, 0x000004, 0x000005, 0x000f01, 0x000b05, 0x000301, 0xffffff]);
        out.writeUIntBE(next & 0xffffff, flagsAt, 3);
        break;
      }
      case 2:
        // version 1 (signed composition offsets) or garbage
        out[t.payload] = rng.pick([0, 1, 2, 0xff]);
        break;
      default: {
        const field = t.payload + 8 + 4 * rng.below(Math.max(1, Math.floor((t.end - t.payload - 8) / 4)));
        if (field + 4 <= t.end) out.writeUInt32BE(wildU32(rng, out.readUInt32BE(field)), field);
      }
    }
    return out;
  },

  /** tfhd flags or defaults changed. */
  tfhd(buf, rng) {
    const heads = allBoxes(buf).filter((b) => b.type === 'tfhd' && b.end - b.payload >= 8);
    if (heads.length === 0) return undefined;
    const h = rng.pick(heads);
    const out = Buffer.from(buf);
    if (rng.chance(0.4)) out.writeUIntBE(rng.chance(0.5) ? rng.below(1 << 24) : out.readUIntBE(h.payload + 1, 3) ^ (1 << rng.below(18)), h.payload + 1, 3);
    else {
      const field = h.payload + 4 + 4 * rng.below(Math.max(1, Math.floor((h.end - h.payload - 4) / 4)));
      if (field + 4 <= h.end) out.writeUInt32BE(wildU32(rng, out.readUInt32BE(field)), field);
    }
    return out;
  },

  /** A tfxd's time or duration changed (negative, huge, backwards), or its version. */
  tfxd(buf, rng) {
    const at = occurrences(buf, TFXD);
    if (at.length === 0) return undefined;
    const out = Buffer.from(buf);
    const u = rng.pick(at);
    const version = out[u + 16];
    if (rng.chance(0.1)) {
      out[u + 16] = rng.pick([0, 1, 2, 0xff]);
      return out;
    }
    if (version === 1 && u + 36 <= out.length) {
      if (rng.chance(0.6)) out.writeBigInt64BE(wildTime(rng, out.readBigInt64BE(u + 20)), u + 20);
      // Doubling a duration already past 2^62 wraps, as a 64-bit field would.
      else out.writeBigInt64BE(BigInt.asIntN(64, rng.pick([0n, 1n, -1n, 2n ** 63n - 1n, 999_999n, 10n ** 15n, out.readBigInt64BE(u + 28) * 2n])), u + 28);
    } else if (u + 28 <= out.length) {
      out.writeUInt32BE(wildU32(rng, out.readUInt32BE(u + 20)), u + 20 + 4 * rng.below(2));
    }
    return out;
  },

  /** Every tfxd of one track's fragments (or all) moved by the same jump: a wrong clock. */
  retimeAll(buf, rng) {
    const at = occurrences(buf, TFXD);
    if (at.length === 0) return undefined;
    const out = Buffer.from(buf);
    const shift = rng.pick([10n ** 15n, -(10n ** 9n), 40n * 10_000_000n, 2n ** 62n, -1n]);
    const every = rng.int(1, 3);
    at.forEach((u, i) => {
      if (i % every !== 0 || out[u + 16] !== 1 || u + 28 > out.length) return;
      out.writeBigInt64BE(BigInt.asIntN(64, out.readBigInt64BE(u + 20) + shift), u + 20);
    });
    return out;
  },

  /** A tfdt's time changed, or its version. */
  tfdt(buf, rng) {
    const dts = allBoxes(buf).filter((b) => b.type === 'tfdt' && b.end - b.payload >= 8);
    if (dts.length === 0) return undefined;
    const d = rng.pick(dts);
    const out = Buffer.from(buf);
    if (rng.chance(0.15)) out[d.payload] = rng.pick([0, 1, 2]);
    else if (out[d.payload] === 1 && d.end - d.payload >= 12) out.writeBigInt64BE(wildTime(rng, out.readBigInt64BE(d.payload + 4)), d.payload + 4);
    else out.writeUInt32BE(wildU32(rng, out.readUInt32BE(d.payload + 4)), d.payload + 4);
    return out;
  },

  /** An mdat loses or gains bytes (its size kept consistent): samples no longer match the trun. */
  mdatLength(buf, rng) {
    const mdats = walk(buf).filter((b) => b.type === 'mdat');
    if (mdats.length === 0) return undefined;
    const m = rng.pick(mdats);
    const len = m.end - m.payload;
    if (rng.chance(0.5)) return splice(buf, [m], m.payload + rng.below(len + 1), m.end, Buffer.alloc(0));
    return splice(buf, [m], m.end, m.end, Buffer.alloc(rng.size(64, 1 << 16)));
  },

  /** One moof+mdat pair replaced by a pair of another stream (other track ids, times, codec). */
  foreignFragment(buf, rng) {
    const own = walk(buf).filter((b) => b.type === 'moof');
    const donors = seedCorpus().flatMap((c) => walk(c.body).filter((b) => b.type === 'moof').map((b) => ({ c, b })));
    if (own.length === 0 || donors.length === 0) return undefined;
    const target = rng.pick(own);
    const { c, b } = rng.pick(donors);
    const next = walk(c.body).find((x) => x.start === b.end);
    const donor = c.body.subarray(b.start, next?.type === 'mdat' ? next.end : b.end);
    return Buffer.concat([buf.subarray(0, target.start), donor, buf.subarray(target.end)]);
  },

  /** A trun without per-sample fields declaring a huge sample count (one object per declared sample?). */
  trunBomb(buf, rng) {
    const runs = allBoxes(buf).filter((b) => b.type === 'trun' && b.end - b.payload >= 8);
    if (runs.length === 0) return undefined;
    const t = rng.pick(runs);
    const out = Buffer.from(buf);
    out.writeUIntBE(rng.pick([0, 0x000001, 0x000100, 0x000005]), t.payload + 1, 3);
    out.writeUInt32BE(rng.pick([1 << 20, 33_000_000, 0x7fffffff, 0xffffffff, t.end - t.start]) >>> 0, t.payload + 4);
    return out;
  },

  /** One fragment repeated many times with advancing tfxd times and short (or zero) durations. */
  fragmentFlood(buf, rng, scale) {
    const top = walk(buf);
    const pairs = top
      .map((b, i) => ({ b, next: top[i + 1] }))
      .filter(({ b, next }) => b.type === 'moof' && next?.type === 'mdat')
      .map(({ b, next }) => ({ start: b.start, end: next!.end }))
      .filter((p) => occurrences(buf.subarray(p.start, p.end), TFXD).some((u) => buf[p.start + u + 16] === 1));
    if (pairs.length === 0) return undefined;
    const p = rng.pick(pairs);
    const pair = buf.subarray(p.start, p.end);
    const u = pair.indexOf(TFXD);
    if (pair[u + 16] !== 1) return undefined;
    const time = pair.readBigInt64BE(u + 20);
    const duration = rng.pick([pair.readBigInt64BE(u + 28), 1n, 0n, 100_000n, 999_999n, 1_000_000n]);
    const n = Math.min(Math.floor(4 * 2 ** 20 / pair.length), Math.max(1, Math.floor(rng.size(50, 2000) * scale)));
    const copies: Buffer[] = [];
    for (let k = 1; k <= n; k++) {
      const c = Buffer.from(pair);
      c.writeBigInt64BE(BigInt.asIntN(64, time + BigInt(k) * (duration === 0n ? 1n : duration)), u + 20);
      c.writeBigInt64BE(duration, u + 28);
      copies.push(c);
    }
    return Buffer.concat([buf.subarray(0, p.end), ...copies, buf.subarray(p.end)]);
  },

  /** The Live Server Manifest's SMIL text mutated. */
  lsm(buf, rng, scale) {
    const box = walk(buf).find((b) => b.type === 'uuid' && buf.subarray(b.payload, b.payload + 16).equals(LSM));
    if (!box || box.end - box.payload < 20) return undefined;
    const textAt = box.payload + 20;
    const text = buf.subarray(textAt, box.end);
    const mutated = mutateSmil(text, rng, scale);
    return splice(buf, [box], textAt, box.end, mutated);
  },
};

const WEIRD_VALUES = ['', '-1', '0', '1', '99999999999999999999', 'NaN', '1e309', '0x10', ' 7 ', '&amp;&lt;&gt;', '&#0;', '&#x1F600;', '"', "'", '\u202e', 'a\u0000b', '<x/>', 'H264', 'AACL', 'WVC1', 'avc1', 'video', 'audio', 'text'];
const BAD_XML = ['<', '>', '&', '&a;', '</smil>', '</switch>', '<switch>', '<video>', '<![CDATA[', ']]>', '<?xml version="1.0"?>', '<!-- ', '<!DOCTYPE smil [<!ENTITY a "aaaaaaaaaa">]>', '"', '=', '\u0000', '\uffff', '\ud800'];

/** Mutates SMIL text (bytes): broken XML, huge or many attributes and elements, NULs, odd encodings. */
export function mutateSmil(bytes: Buffer, rng: Rng, scale = 1): Buffer {
  let text = bytes.toString('utf8');
  const at = (): number => rng.below(text.length + 1);
  const insert = (s: string, pos = at()): string => text.slice(0, pos) + s + text.slice(pos);
  const big = (typical: number, max: number): number => Math.max(1, Math.floor(rng.size(typical, max) * scale));
  switch (rng.below(13)) {
    case 0:
      text = text.slice(0, at());
      break;
    case 1:
      text = insert('\u0000'.repeat(big(64, 64 * 1024)));
      break;
    case 2:
      text += '\u0000'.repeat(big(16, 16 * 1024));
      break;
    case 3: {
      const open = [...text.matchAll(/<(video|audio|text|param|smil|switch|meta)\b/g)];
      const pos = open.length > 0 ? rng.pick(open).index! + 2 : at();
      text = insert(` x${rng.below(100)}="${'a'.repeat(big(1024, 256 * 1024))}"`, pos);
      break;
    }
    case 4: {
      const open = [...text.matchAll(/<(video|audio|param)\b/g)];
      const pos = open.length > 0 ? rng.pick(open).index! + 2 : at();
      const n = big(100, 20_000);
      text = insert(Array.from({ length: n }, (_, i) => ` a${i}="${i}"`).join(''), pos);
      break;
    }
    case 5: {
      const el = [...text.matchAll(/<(video|audio)\b[\s\S]*?<\/\1>|<param\b[^>]*\/>/g)];
      if (el.length === 0) break;
      const m = rng.pick(el);
      const n = big(5, 5_000);
      text = insert(m[0].repeat(n), m.index! + m[0].length);
      break;
    }
    case 6: {
      const n = big(50, 20_000);
      text = insert('<a>'.repeat(n) + (rng.chance(0.5) ? '</a>'.repeat(n) : ''), text.indexOf('<body>') >= 0 ? text.indexOf('<body>') + 6 : at());
      break;
    }
    case 7: {
      const attrs = [...text.matchAll(/="([^"]*)"/g)];
      if (attrs.length === 0) break;
      const m = rng.pick(attrs);
      const value = rng.chance(0.8) ? rng.pick(WEIRD_VALUES) : 'x'.repeat(big(256, 64 * 1024));
      text = text.slice(0, m.index! + 2) + value + text.slice(m.index! + 2 + m[1]!.length);
      break;
    }
    case 8:
      for (let n = rng.int(1, 4); n > 0; n--) text = insert(rng.pick(BAD_XML));
      break;
    case 9: {
      const tags = [...text.matchAll(/<[^>]*>/g)];
      if (tags.length === 0) break;
      const m = rng.pick(tags);
      text = text.slice(0, m.index!) + text.slice(m.index! + m[0].length);
      break;
    }
    case 10: {
      // an entity expansion bomb in a DOCTYPE
      const levels = rng.int(2, 8);
      const ents = ['<!ENTITY e0 "lollollollollollollollollollol">'];
      for (let i = 1; i < levels; i++) ents.push(`<!ENTITY e${i} "${`&e${i - 1};`.repeat(10)}">`);
      const body = text.replace(/^<\?xml[^>]*\?>/, '');
      text = `<?xml version="1.0"?><!DOCTYPE smil [${ents.join('')}]>` + body.replace('content="', `content="&e${levels - 1};`);
      break;
    }
    case 11: {
      // another encoding, a wrong BOM, or invalid UTF-8 bytes
      const raw = Buffer.from(text, 'utf8');
      switch (rng.below(4)) {
        case 0:
          return Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(text, 'utf16le')]);
        case 1:
          return Buffer.concat([Buffer.from([0xfe, 0xff]), raw]);
        case 2:
          return Buffer.from(text, 'utf16le');
        default: {
          const out = Buffer.from(raw);
          for (let n = rng.int(1, 8); n > 0 && out.length > 0; n--) out[rng.below(out.length)] = rng.pick([0x80, 0xc0, 0xff, 0xfe, 0xed]);
          return out;
        }
      }
    }
    default:
      text = text.replace(/trackID" value="\d+"/, `trackID" value="${rng.pick(['1', '2', '3', '9', '0', '-1', '4294967296'])}"`);
      text = text.replace(/trackName" value="[^"]*"/, `trackName" value="${rng.pick(['video', 'audio', '', 'a b', '../x', 'x'.repeat(300)])}"`);
  }
  return Buffer.from(text, 'utf8');
}

export const MUTATIONS = Object.keys(mutators);

const WEIGHTS: ReadonlyArray<readonly [number, string]> = [
  [10, 'bitflip'],
  [5, 'byteRun'],
  [3, 'insertBytes'],
  [10, 'boxSize'],
  [6, 'truncate'],
  [6, 'duplicateBox'],
  [6, 'dropBox'],
  [5, 'reorderBoxes'],
  [10, 'trun'],
  [5, 'tfhd'],
  [8, 'tfxd'],
  [3, 'retimeAll'],
  [4, 'tfdt'],
  [4, 'mdatLength'],
  [3, 'foreignFragment'],
  [10, 'lsm'],
  [3, 'trunBomb'],
  [2, 'fragmentFlood'],
];

// ---------------------------------------------------------------------------------------------------
// Cases
// ---------------------------------------------------------------------------------------------------

export interface Mutation {
  kind: string;
  seed: number;
}

/** One fuzz case: everything needed to rebuild its body and its chunks. */
export interface FuzzCase {
  /** The run seed and the case's index in the run. */
  runSeed: number;
  index: number;
  /** Index into {@link seedCorpus}. */
  base: number;
  mutations: Mutation[];
  /** Seed of the chunk splits. */
  split: number;
  /** How the body ends: the POST ends normally, or the connection drops. */
  ending: 'finish' | 'abort';
  /** Stream id of the POST. */
  streamId: string;
}

/** The case `index` of a run with seed `runSeed`. `scale` grows the big text mutations. */
export function makeCase(runSeed: number, index: number): FuzzCase {
  const rng = new Rng(seedOf(runSeed, index));
  const base = rng.below(seedCorpus().length);
  const count = rng.chance(0.04) ? 0 : rng.weighted([[50, 1], [25, 2], [12, 3], [8, 4], [5, 6]] as const);
  const mutations = Array.from({ length: count }, () => ({ kind: rng.weighted(WEIGHTS), seed: rng.u32() }));
  return { runSeed, index, base, mutations, split: rng.u32(), ending: rng.chance(0.9) ? 'finish' : 'abort', streamId: rng.pick(['s1', 's1', 's2', 'fuzz']) };
}

/** The body of a case: its corpus entry with each mutation applied in turn. */
export function bodyOf(c: FuzzCase, scale = 1): { body: Buffer; applied: string[] } {
  let body = seedCorpus()[c.base]!.body;
  const applied: string[] = [];
  for (const m of c.mutations) {
    const rng = new Rng(m.seed);
    const next = mutators[m.kind]!(body, rng, scale) ?? mutators.bitflip!(body, rng, scale);
    if (next) {
      body = next;
      applied.push(m.kind);
    }
  }
  return { body, applied };
}

/**
 * Random splits of `body`: mostly a few kB (like a socket), sometimes single bytes or one big write,
 * so every box boundary falls at every place in a chunk over the run.
 */
export function chunksOf(body: Buffer, seed: number): Buffer[] {
  const rng = new Rng(seed);
  const style = rng.below(5);
  if (style === 0 || body.length === 0) return [body];
  const out: Buffer[] = [];
  for (let at = 0; at < body.length;) {
    const n = style === 1 ? rng.int(1, 16) : style === 2 ? rng.int(1, 64 * 1024) : style === 3 ? rng.pick([1, 7, 8, 9, 4096, 32 * 1024]) : rng.size(512, 40_000);
    out.push(body.subarray(at, at + n));
    at += n;
    // one-byte bursts are slow to replay: finish the rest in bigger pieces past the header
    if (style === 1 && at > 4096 && rng.chance(0.05)) {
      out.push(body.subarray(at));
      break;
    }
  }
  return out;
}

/** One line describing a case, for failure reports. */
export function describeCase(c: FuzzCase, applied?: string[]): string {
  const muts = c.mutations.map((m) => `${m.kind}#${m.seed}`).join(', ') || 'none';
  return `FUZZ_SEED=${c.runSeed} case ${c.index}: base ${seedCorpus()[c.base]!.name}, mutations [${muts}]${applied ? ` (applied: ${applied.join(', ')})` : ''}, split ${c.split}, ${c.ending}, stream ${c.streamId}`;
}

/** tfxd times of a body's fragments, for the good-stream check. */
export function timesOf(fragments: Buffer[]): bigint[] {
  return fragments.map((f) => tfxdOf(f).time);
}
