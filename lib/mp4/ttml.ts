/**
 * The times of TTML samples (ISO/IEC 14496-30 `stpp`). A Smooth text track's TTML documents time their
 * cues from the start of their own sample (dash.js's MSS mode adds the sample time:
 * `ttmlTimeIsRelative`), while ISO/IEC 14496-30, and with it DASH, CMAF, Shaka Player and hls.js, read
 * them on the track's media timeline. A point keeps them as Smooth does: CMAF ingest moves them back by
 * their sample's start, and packaging for DASH and HLS moves them forward by the sample's start on the
 * output timeline ({@link retimeSamples}).
 *
 * Which expressions: TTML timing is hierarchical (a child's `begin` and `end` count from its parent's
 * `begin`), so only the outermost timed elements are shifted: an element none of whose ancestors has a
 * `begin`. Its `begin` and `end` get the sample start added; `dur` is a length and stays. An outermost
 * element with an `end` or `dur` but no `begin` (it began with the document) is given `begin` = the
 * sample start, so that it does not begin at media time 0 (so is a `timeContainer="seq"`, whose children
 * count from one another). Everything below a shifted element is
 * relative to it and stays as it is. hls.js reads only `<p>` times, without the hierarchy: it sees the
 * right ones whenever the `<p>`s carry their own, as caption encoders write them.
 *
 * Time expressions (TTML1 §10.3.1): clock time `hh:mm:ss`, `hh:mm:ss.fff`, `hh:mm:ss:ff[.sub]` (frames
 * at `ttp:frameRate`, default 30, times `ttp:frameRateMultiplier`, sub-frames at `ttp:subFrameRate`),
 * and offset time `<count>[.<fraction>](h|m|s|ms|f|t)` (ticks at `ttp:tickRate`). They are read exactly
 * (rationals) and written back as clock time with a decimal fraction: exact when the value has a
 * finite decimal of at most 12 digits (any timescale of the form 2^a·5^b), else to the nanosecond.
 *
 * A document that cannot be read this way (not TTML, another `ttp:timeBase` than `media`, a malformed
 * tag or time) is served as it came: a player may still show something, and the origin never fails a
 * request over caption text. The bytes are handled as Latin-1, so anything outside the markup passes
 * through byte for byte whatever its encoding.
 */
import { type Sample, SampleTable } from '../media';

/** Namespace of TTML parameter attributes (`ttp:`). */
const TTP_NAMESPACE = 'http://www.w3.org/ns/ttml#parameter';
/** Digits of fraction written when a value has no short exact decimal. */
const ROUNDED_DIGITS = 9;
/** Longest exact decimal fraction written. */
const EXACT_DIGITS = 12;

/** A rational `n / d` (d > 0). */
export interface Rational {
  n: bigint;
  d: bigint;
}

/** How a document counts frames and ticks. */
interface Rates {
  /** Seconds of one frame. */
  frame: Rational;
  /** Seconds of one sub-frame. */
  subFrame: Rational;
  /** Seconds of one tick. */
  tick: Rational;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a < 0n ? -a : a;
}

/** `n / d` in lowest terms. */
export function reduce(n: bigint, d: bigint): Rational {
  const g = gcd(n, d) || 1n;
  return { n: n / g, d: d / g };
}

const add = (a: Rational, b: Rational): Rational => reduce(a.n * b.d + b.n * a.d, a.d * b.d);
const mul = (a: Rational, b: Rational): Rational => reduce(a.n * b.n, a.d * b.d);

/** A decimal number `12`, `12.5` as a rational. */
function decimal(whole: string, fraction = ''): Rational {
  return reduce(BigInt(whole + fraction), 10n ** BigInt(fraction.length));
}

/** A positive integer parameter, or `undefined` when absent; throws when present but not one. */
function positive(value: string | undefined): bigint | undefined {
  if (value === undefined) return undefined;
  const v = value.trim();
  if (!/^\d{1,9}$/.test(v) || BigInt(v) === 0n) throw new Error(`bad parameter ${value}`);
  return BigInt(v);
}

/** The frame, sub-frame and tick lengths the root element's `ttp:` parameters give (TTML1 §6.2). */
function ratesOf(param: (name: string) => string | undefined): Rates {
  const frameRate = positive(param('frameRate'));
  const subFrameRate = positive(param('subFrameRate')) ?? 1n;
  const multiplier = param('frameRateMultiplier');
  let num = 1n;
  let den = 1n;
  if (multiplier !== undefined) {
    const m = /^\s*(\d{1,9})\s+(\d{1,9})\s*$/.exec(multiplier);
    if (!m || BigInt(m[1]!) === 0n || BigInt(m[2]!) === 0n) throw new Error(`bad frameRateMultiplier ${multiplier}`);
    num = BigInt(m[1]!);
    den = BigInt(m[2]!);
  }
  // Effective frame rate = frameRate × num / den frames a second.
  const frame = reduce(den, (frameRate ?? 30n) * num);
  const subFrame = mul(frame, { n: 1n, d: subFrameRate });
  const tickRate = positive(param('tickRate'));
  // Without a tick rate, ticks are sub-frames when a frame rate is given, else seconds (TTML1 §6.2.10).
  const tick = tickRate !== undefined ? { n: 1n, d: tickRate } : frameRate !== undefined ? subFrame : { n: 1n, d: 1n };
  return { frame, subFrame, tick };
}

// Digits are bounded: the rationals are BigInts, and a time of thousands of digits would take seconds
// to reduce (a document is read on a request). Nine digits of hours, frames or sub-frames and fifteen
// of an offset count are beyond any real time; twelve fraction digits are below a picosecond.
const CLOCK = /^(\d{2,9}):(\d{2}):(\d{2})(?:\.(\d{1,12})|:(\d{2,9})(?:\.(\d{1,9}))?)?$/;
const OFFSET = /^(\d{1,15})(?:\.(\d{1,12}))?(h|ms|m|s|f|t)$/;

/**
 * A TTML time expression in seconds, exactly.
 * @throws Error for anything that is not a time expression
 */
export function parseTtmlTime(text: string, rates: Rates = ratesOf(() => undefined)): Rational {
  const v = text.trim();
  const c = CLOCK.exec(v);
  if (c) {
    const [, h, m, s, fraction, frames, subFrames] = c;
    if (Number(m) > 59 || Number(s) > 60) throw new Error(`bad clock time ${text}`);
    let t = reduce(BigInt(h!) * 3600n + BigInt(m!) * 60n + BigInt(s!), 1n);
    if (fraction !== undefined) t = add(t, decimal('0', fraction));
    if (frames !== undefined) t = add(t, mul({ n: BigInt(frames), d: 1n }, rates.frame));
    if (subFrames !== undefined) t = add(t, mul({ n: BigInt(subFrames), d: 1n }, rates.subFrame));
    return t;
  }
  const o = OFFSET.exec(v);
  if (!o) throw new Error(`not a TTML time expression: ${text.slice(0, 32)}`);
  const count = decimal(o[1]!, o[2]);
  switch (o[3]) {
    case 'h':
      return mul(count, { n: 3600n, d: 1n });
    case 'm':
      return mul(count, { n: 60n, d: 1n });
    case 's':
      return count;
    case 'ms':
      return mul(count, { n: 1n, d: 1000n });
    case 'f':
      return mul(count, rates.frame);
    default:
      return mul(count, rates.tick);
  }
}

/** Digits of the exact decimal fraction of `1 / d`, or `undefined` when it has none that short. */
function exactDigits(d: bigint): number | undefined {
  let twos = 0;
  let fives = 0;
  while (d % 2n === 0n) {
    d /= 2n;
    twos++;
  }
  while (d % 5n === 0n) {
    d /= 5n;
    fives++;
  }
  const digits = Math.max(twos, fives);
  return d === 1n && digits <= EXACT_DIGITS ? digits : undefined;
}

/** Seconds as a TTML clock time `hh:mm:ss.fff…` (at least 3 fraction digits, more when exactness needs them). */
export function formatTtmlTime(t: Rational): string {
  const digits = Math.max(3, exactDigits(t.d) ?? ROUNDED_DIGITS);
  const scale = 10n ** BigInt(digits);
  // Rounded half up; exact when the decimal terminates within `digits`.
  const units = (t.n * scale * 2n + t.d) / (2n * t.d);
  const seconds = units / scale;
  const fraction = (units % scale).toString().padStart(digits, '0');
  const pad = (v: bigint): string => v.toString().padStart(2, '0');
  return `${pad(seconds / 3600n)}:${pad((seconds / 60n) % 60n)}:${pad(seconds % 60n)}.${fraction}`;
}

/** One attribute of a start tag: where its value is in the text. */
interface Attribute {
  name: string;
  value: string;
  /** Offsets of the value (inside the quotes). */
  start: number;
  end: number;
}

const NAME = /[^\s/>=]+/y;
const ATTRIBUTE = /\s+([^\s=/>]+)\s*=\s*(?:"([^"]*)"|'([^']*)')/y;
const TAG_END = /\s*(\/?)>/y;

/** Largest document rewritten (captions are a few KB): a larger one is left as it is. */
export const MAX_TTML_BYTES = 1 << 20;

/**
 * Adds `start` seconds to the time expressions of a TTML document (see the module comment). A negative
 * `start` moves a document from its track's timeline to its sample's: a time before the sample (a cue
 * carried over from an earlier one) becomes 0, and an element without `begin` keeps beginning with
 * the sample.
 * @returns the rewritten document, or `undefined` when it is left as it is (nothing to shift, too large,
 *   or it could not be read)
 */
export function shiftTtml(doc: Uint8Array, start: Rational): Buffer | undefined {
  if (doc.byteLength > MAX_TTML_BYTES) return undefined;
  try {
    return shift(Buffer.from(doc.buffer, doc.byteOffset, doc.byteLength).toString('latin1'), start);
  } catch {
    return undefined;
  }
}

function shift(text: string, start: Rational): Buffer | undefined {
  const backward = start.n < 0n;
  const edits: Array<{ at: number; end: number; text: string }> = [];
  /** Per open element: it or an ancestor has a `begin` (its descendants' times are relative). */
  const timed: boolean[] = [];
  let rates: Rates | undefined;
  let i = 0;
  for (;;) {
    const lt = text.indexOf('<', i);
    if (lt < 0) break;
    if (text.startsWith('<!--', lt)) i = after(text, '-->', lt + 4);
    else if (text.startsWith('<![CDATA[', lt)) i = after(text, ']]>', lt + 9);
    else if (text.startsWith('<?', lt)) i = after(text, '?>', lt + 2);
    else if (text.startsWith('<!', lt)) {
      // A DOCTYPE with an internal subset could declare entities and defaults: not TTML as players read it.
      const end = after(text, '>', lt + 2);
      if (text.slice(lt, end).includes('[')) return undefined;
      i = end;
    } else if (text[lt + 1] === '/') {
      if (timed.pop() === undefined) return undefined;
      i = after(text, '>', lt + 2);
    } else {
      NAME.lastIndex = lt + 1;
      const name = NAME.exec(text)?.[0];
      if (!name) return undefined;
      let p = NAME.lastIndex;
      const attributes: Attribute[] = [];
      for (;;) {
        ATTRIBUTE.lastIndex = p;
        const a = ATTRIBUTE.exec(text);
        if (!a) break;
        const value = a[2] ?? a[3]!;
        const end = ATTRIBUTE.lastIndex - 1;
        attributes.push({ name: a[1]!, value, start: end - value.length, end });
        p = ATTRIBUTE.lastIndex;
      }
      TAG_END.lastIndex = p;
      const close = TAG_END.exec(text);
      if (!close) return undefined;
      i = TAG_END.lastIndex;
      if (!rates) {
        // The root: a TTML document, in the media time base, whose rates say what frames and ticks are.
        if (name.slice(name.indexOf(':') + 1) !== 'tt') return undefined;
        const prefixes = attributes.filter((a) => a.name.startsWith('xmlns:') && a.value === TTP_NAMESPACE).map((a) => a.name.slice(6));
        const param = (local: string): string | undefined => attributes.find((a) => prefixes.some((x) => a.name === `${x}:${local}`))?.value;
        const timeBase = param('timeBase');
        if (timeBase !== undefined && timeBase.trim() !== 'media') return undefined;
        rates = ratesOf(param);
      }
      const inherited = timed[timed.length - 1] ?? false;
      let self = inherited;
      if (!inherited) {
        const begin = attributes.find((a) => a.name === 'begin');
        const end = attributes.find((a) => a.name === 'end');
        const dur = attributes.find((a) => a.name === 'dur');
        if (dur) parseTtmlTime(dur.value, rates);
        for (const a of [begin, end]) {
          if (a) edits.push({ at: a.start, end: a.end, text: formatTtmlTime(onTimeline(add(parseTtmlTime(a.value, rates), start), backward)) });
        }
        // A sequence's children count from one another, not from the document: it anchors them itself.
        const seq = attributes.find((a) => a.name === 'timeContainer')?.value.trim() === 'seq';
        const afterName = lt + 1 + name.length;
        if (!begin && !backward && (end || dur || seq)) edits.push({ at: afterName, end: afterName, text: ` begin="${formatTtmlTime(onTimeline(start, false))}"` });
        self = begin !== undefined || end !== undefined || dur !== undefined || seq;
      }
      if (close[1] !== '/') timed.push(self);
    }
  }
  if (!rates || timed.length !== 0 || edits.length === 0) return undefined;
  edits.sort((a, b) => a.at - b.at);
  const parts: string[] = [];
  let from = 0;
  for (const e of edits) {
    parts.push(text.slice(from, e.at), e.text);
    from = e.end;
  }
  parts.push(text.slice(from));
  return Buffer.from(parts.join(''), 'latin1');
}

/**
 * A time expression cannot be negative. Moved back onto its sample, a time before it is the sample's
 * start; moved forward, one still before 0 leaves the document as it is.
 */
function onTimeline(t: Rational, backward: boolean): Rational {
  if (t.n >= 0n) return t;
  if (backward) return { n: 0n, d: 1n };
  throw new Error('a time before 0');
}

/** The offset just past `token`, searched from `from`; throws when it never comes (a truncated document). */
function after(text: string, token: string, from: number): number {
  const at = text.indexOf(token, from);
  if (at < 0) throw new Error(`unterminated markup: no ${token}`);
  return at + token.length;
}


/**
 * The TTML samples of a fragment with every document's times moved by its own sample's start: each
 * sample starts at `decodeTime` + the durations before it + its composition offset (ticks of
 * `timescale`), and `direction` 1 adds that start (sample times onto a track timeline), −1 subtracts it.
 * A sample that starts before 0 or whose document cannot be read stays as it is.
 * @param data - the fragment's sample bytes, in order
 * @returns the new sample table (sizes changed) and bytes, or `undefined` when no document changed
 */
export function retimeSamples(
  samples: SampleTable,
  data: Buffer,
  decodeTime: bigint,
  timescale: number,
  direction: 1 | -1,
): { samples: SampleTable; data: Buffer } | undefined {
  let total = 0;
  for (let i = 0; i < samples.count; i++) total += samples.size(i);
  if (total !== data.length) return undefined;
  const ts = BigInt(timescale);
  let decode = decodeTime;
  let offset = 0;
  let changed = false;
  const bodies: Buffer[] = [];
  const records: Sample[] = [];
  for (let i = 0; i < samples.count; i++) {
    const size = samples.size(i);
    const sample = data.subarray(offset, offset + size);
    offset += size;
    const at = decode + BigInt(samples.compositionOffset(i));
    const shifted = at >= 0n ? shiftTtml(sample, reduce(BigInt(direction) * at, ts)) : undefined;
    if (shifted) changed = true;
    const body = shifted ?? sample;
    bodies.push(body);
    records.push({ duration: samples.duration(i), size: body.length, flags: samples.flags(i), compositionOffset: samples.compositionOffset(i) });
    decode += BigInt(samples.duration(i));
  }
  return changed ? { samples: SampleTable.from(records), data: Buffer.concat(bodies) } : undefined;
}
