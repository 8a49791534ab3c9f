/**
 * The ingest fuzzer's engine. Two levels:
 *
 * - core: mutated bodies fed in random chunks through `PublishingPoint.openIngest(...).write/finish`,
 *   many cases a second. Only `SmoothError`s whose code the status table maps to a 4xx may escape; the
 *   point keeps answering its manifest and lookups; no case stalls; no promise is left rejected; RSS
 *   stays within a bound.
 * - http: the same cases as raw chunked POSTs against a real server, a few at a time, while a good
 *   encoder pushes to another point. Every answer is 200 or a documented 4xx/503 of the table, never a
 *   500; the good stream loses nothing.
 *
 * A failing case is replayed on a fresh point, shrunk (mutations dropped, one write, shorter body) and
 * written to `test-output/fuzz/` with its seed.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { resolveSettings } from '../../lib/definition';
import { SmoothError, SmoothErrorCode, isSmoothError } from '../../lib/errors';
import { STATUS } from '../../lib/http/status';
import { SmoothIngestParser } from '../../lib/ingest/smooth';
import { resolveOptions } from '../../lib/options';
import { PublishingPoint } from '../../lib/point';
import { FuzzCase, bodyOf, chunksOf, describeCase, makeCase, seedCorpus, walk } from './mutate';
import { RawPost, Reply, fixture, fragmentsOfRound, get, parseManifest, sleep, tfxdOf } from '../helpers/raw-ingest';
import { startServer } from '../helpers/server';

/** Largest box the fuzzed points take (the captures' largest is a 19.9 kB mdat). */
export const MAX_BOX = 4 * 2 ** 20;

/** The points' byte budget (the default `maxBytesPerPoint`). */
const MAX_POINT_BYTES = resolveOptions({ stateFile: false }).maxBytesPerPoint;

/** Codes an ingest may be refused with: every code the table maps to a 4xx. */
export const INGEST_CODES: ReadonlySet<string> = new Set(
  (Object.entries(STATUS) as Array<[SmoothErrorCode, number]>).filter(([, s]) => s >= 400 && s < 500).map(([c]) => c),
);

/** Statuses an ingest POST may be answered with: 200, or a status of the table other than 500. */
export const INGEST_STATUSES: ReadonlySet<number> = new Set([200, ...Object.values(STATUS).filter((s) => s !== 500)]);

export type FindingKind =
  | 'crash'
  | 'undocumented-code'
  | 'unhandled-rejection'
  | 'stall'
  | 'point-broken'
  | 'memory'
  | 'status'
  | 'no-response'
  | 'good-stream';

export interface Finding {
  kind: FindingKind;
  /** The case, as a reproducible description (seed, index, mutations). */
  case?: string;
  detail: string;
  stack?: string;
  /** Where the (shrunk) input was written, and a summary of its boxes. */
  input?: string;
  /** The shrunk case still fails on a fresh point (false: it needs the point's earlier cases). */
  reproducible?: boolean;
}

export interface Report {
  seed: number;
  cases: number;
  ms: number;
  findings: Finding[];
  /** How many cases ended in each refusal code (or `accepted`). */
  outcomes: Record<string, number>;
  /** RSS growth over the run, MB (core run). */
  rssGrowthMb?: number;
  /** Fragments the good stream pushed (http run). */
  goodFragments?: number;
}

export interface RunOptions {
  seed: number;
  cases: number;
  /** First case index (default 0). */
  first?: number;
  /** Multiplies the size of the big text mutations (huge attributes, NUL runs). */
  scale?: number;
  /** A case slower than this is a stall (ms). Default 2000. */
  slowMs?: number;
  /** Allowed RSS growth over the run, MB. Default 384. */
  rssBoundMb?: number;
  /** A fresh point every this many cases (state carries over in between). Default 25. */
  pointEvery?: number;
  /** Concurrent POSTs (http run). Default 4. */
  concurrency?: number;
  /** Where failing inputs go; default `test-output/fuzz`. */
  outDir?: string;
  log?: (line: string) => void;
}

// ---------------------------------------------------------------------------------------------------
// Core level
// ---------------------------------------------------------------------------------------------------

interface Clock {
  now: number;
}

function newPoint(clock: Clock): PublishingPoint {
  return new PublishingPoint(
    'fuzz.isml',
    resolveSettings([{ startOnFirstRequest: true, restartOnEncoderReconnect: true }]),
    resolveOptions({ stateFile: false, maxBoxSize: MAX_BOX, clock: { now: () => clock.now } }),
  );
}

/** What one case did: refused with a code, accepted, or a finding. */
type Outcome = { ok: true; code: string } | { ok: false; kind: FindingKind; detail: string; stack?: string };

function classify(err: unknown, where: string): Outcome {
  if (isSmoothError(err)) {
    if (INGEST_CODES.has(err.code)) return { ok: true, code: err.code };
    return { ok: false, kind: 'undocumented-code', detail: `${where}: SmoothError ${err.code} (status ${STATUS[err.code] ?? 'none'}): ${err.message}`, stack: err.stack };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return { ok: false, kind: 'crash', detail: `${where}: ${e.name}: ${e.message}`, stack: e.stack };
}

/** Feeds one body to `point` in `chunks`, then ends it as `ending` says. */
function feed(point: PublishingPoint, clock: Clock, chunks: Buffer[], ending: FuzzCase['ending'], streamId: string): Outcome {
  let session;
  try {
    session = point.openIngest(streamId, '127.0.0.1', new SmoothIngestParser({ maxBoxSize: MAX_BOX }));
  } catch (err) {
    return classify(err, 'openIngest');
  }
  let where = 'write';
  try {
    for (const chunk of chunks) {
      clock.now += Math.max(1, chunk.length >> 8);
      session.write(chunk);
    }
    where = ending;
    if (ending === 'finish') session.finish();
    else session.abort('disconnected');
    return { ok: true, code: 'accepted' };
  } catch (err) {
    const outcome = classify(err, where);
    try {
      session.abort('error', err instanceof SmoothError ? err : undefined);
    } catch (abortErr) {
      return classify(abortErr, 'abort');
    }
    return outcome;
  }
}

/** The point still renders its manifest and answers lookups of what it lists (and of what it does not). */
function health(point: PublishingPoint): Outcome {
  let where = 'manifest';
  try {
    point.manifest();
    const snapshot = point.snapshot();
    for (const stream of snapshot.streams) {
      for (const level of stream.qualityLevels.slice(0, 2)) {
        const listed = [stream.fragments[0], stream.fragments[stream.fragments.length - 1]];
        for (const f of listed) {
          if (!f) continue;
          where = `lookup ${stream.name} ${level.bitrate} ${f.time}`;
          const found = point.lookup(stream.name, level.bitrate, level.customAttributes, f.time);
          if (found.status === 'ok') {
            where = `smoothFragment ${stream.name} ${level.bitrate} ${f.time}`;
            const packaged = point.smoothFragment(found);
            if (packaged && typeof (packaged as Promise<unknown>).then === 'function') (packaged as Promise<unknown>).catch(() => undefined);
          }
          where = `lookup ${stream.name} ${level.bitrate} ${f.time + 1n}`;
          point.lookup(stream.name, level.bitrate, level.customAttributes, f.time + 1n);
        }
      }
    }
    where = 'lookup unknown';
    point.lookup('video', 1, [], 0n);
    return { ok: true, code: 'healthy' };
  } catch (err) {
    if (isSmoothError(err) && STATUS[err.code] !== undefined && STATUS[err.code]! < 500) return { ok: true, code: err.code };
    const e = err instanceof Error ? err : new Error(String(err));
    return { ok: false, kind: 'point-broken', detail: `${where}: ${e.name}: ${e.message}`, stack: e.stack };
  }
}

/** Runs a case's body on a fresh point, with its own chunks or the given ones; the finding, if any. */
function replayFresh(body: Buffer, chunks: Buffer[] | undefined, c: FuzzCase, split: number, before: FuzzCase[] = [], scale = 1): Outcome {
  const clock = { now: 1_000_000 };
  const point = newPoint(clock);
  try {
    for (const b of before) {
      const { body: earlier } = bodyOf(b, scale);
      feed(point, clock, chunksOf(earlier, b.split), b.ending, b.streamId);
      clock.now += 2000;
    }
    const start = Date.now();
    const outcome = feed(point, clock, chunks ?? chunksOf(body, split), c.ending, c.streamId);
    if (!outcome.ok) return outcome;
    const ms = Date.now() - start;
    if (ms > STALL_SHRINK_MS) return { ok: false, kind: 'stall', detail: `${ms} ms` };
    return health(point);
  } finally {
    point.close();
  }
}

let STALL_SHRINK_MS = 2000;

function signature(o: Outcome): string {
  if (o.ok) return 'ok';
  if (o.kind === 'stall' || o.kind === 'memory') return o.kind;
  return `${o.kind}:${o.detail.replace(/\d+/g, 'N').slice(0, 120)}`;
}

/** A box outline of `body` for reports: `ftyp(24) uuid(2244) moov(1796) moof(320)[…] …`. */
export function outline(body: Buffer): string {
  const top = walk(body);
  const covered = top.length > 0 ? top[top.length - 1]!.end : 0;
  const parts = top.slice(0, 40).map((b) => `${b.type.replace(/[^\x20-\x7e]/g, '?')}(${b.end - b.start})`);
  if (top.length > 40) parts.push(`… ${top.length - 40} more`);
  if (covered < body.length) parts.push(`+${body.length - covered} bytes not a whole box`);
  return parts.join(' ');
}

/**
 * Shrinks a failing case on a fresh point: drops mutations, then tries one write, then cuts whole
 * top-level boxes and finally the tail, keeping the same failure signature.
 */
function shrink(c: FuzzCase, scale: number, outDir: string, history: FuzzCase[], sig: string): Pick<Finding, 'input' | 'reproducible' | 'case'> {
  let { body } = bodyOf(c, scale);
  if (signature(replayFresh(body, undefined, c, c.split, [], scale)) !== sig) {
    // It needs the point's earlier cases: keep only those it needs.
    let before = history;
    if (signature(replayFresh(body, undefined, c, c.split, before, scale)) !== sig) {
      const file = save(outDir, c, body);
      return { reproducible: false, input: `${file} (${body.length} bytes; ${outline(body)})`, case: `${describeCase(c)} (not reproduced by replaying cases ${history[0]?.index ?? c.index}..${c.index} on a fresh point)` };
    }
    for (let i = before.length - 1; i >= 0; i--) {
      const fewer = before.filter((_, j) => j !== i);
      if (signature(replayFresh(body, undefined, c, c.split, fewer, scale)) === sig) before = fewer;
    }
    const files = before.map((b) => save(outDir, b, bodyOf(b, scale).body));
    const file = save(outDir, c, body);
    return {
      reproducible: false,
      case: `${describeCase(c)}; fails after cases ${before.map((b) => b.index).join(', ')} on the same point: ${before.map((b) => describeCase(b)).join(' | ')}`,
      input: `${[...files, file].join(' then ')} (${body.length} bytes; ${outline(body)})`,
    };
  }
  let current = c;
  for (let i = current.mutations.length - 1; i >= 0; i--) {
    const fewer = { ...current, mutations: current.mutations.filter((_, j) => j !== i) };
    const b = bodyOf(fewer, scale).body;
    if (signature(replayFresh(b, undefined, fewer, fewer.split)) === sig) {
      current = fewer;
      body = b;
    }
  }
  let chunks: Buffer[] | undefined;
  if (signature(replayFresh(body, [body], current, current.split)) === sig) chunks = [body];
  // whole top-level boxes after the header, last first
  for (let changed = true; changed;) {
    changed = false;
    const top = walk(body);
    for (let i = top.length - 1; i >= 3; i--) {
      const b = top[i]!;
      const smaller = Buffer.concat([body.subarray(0, b.start), body.subarray(b.end)]);
      if (signature(replayFresh(smaller, chunks && [smaller], current, current.split)) === sig) {
        body = smaller;
        changed = true;
        break;
      }
    }
  }
  // the tail
  let lo = 0;
  let hi = body.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    const cut = body.subarray(0, mid);
    if (signature(replayFresh(cut, chunks && [cut], current, current.split)) === sig) hi = mid;
    else lo = mid + 1;
  }
  if (hi < body.length) body = Buffer.from(body.subarray(0, hi));
  const file = save(outDir, c, body);
  return {
    reproducible: true,
    case: `${describeCase(current)}${chunks ? ' (fails as one write too)' : ''}`,
    input: `${file} (${body.length} bytes; ${outline(body)})`,
  };
}

function save(outDir: string, c: FuzzCase, body: Buffer): string {
  mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `case-${c.runSeed}-${c.index}.bin`);
  writeFileSync(file, body);
  return path.relative(process.cwd(), file);
}

function rssMb(): number {
  (globalThis as { gc?: () => void }).gc?.();
  return process.memoryUsage().rss / 2 ** 20;
}

/** Captures unhandled rejections while `run` runs. */
async function watchingRejections<T>(onRejection: (reason: unknown) => void, run: () => Promise<T>): Promise<T> {
  const listener = (reason: unknown): void => onRejection(reason);
  process.on('unhandledRejection', listener);
  try {
    return await run();
  } finally {
    // let late rejections of the last cases surface
    await new Promise((ok) => setImmediate(ok));
    await sleep(10);
    process.removeListener('unhandledRejection', listener);
  }
}

export async function runCore(o: RunOptions): Promise<Report> {
  const log = o.log ?? (() => undefined);
  const scale = o.scale ?? 1;
  const slowMs = o.slowMs ?? 2000;
  STALL_SHRINK_MS = slowMs;
  const pointEvery = o.pointEvery ?? 25;
  const outDir = o.outDir ?? path.join(process.cwd(), 'test-output', 'fuzz');
  const first = o.first ?? 0;
  const findings: Finding[] = [];
  const outcomes: Record<string, number> = {};
  const seen = new Set<string>();
  const started = Date.now();
  seedCorpus();
  const baseline = rssMb();
  let peak = baseline;
  let current = first;

  await watchingRejections(
    (reason) => {
      const e = reason instanceof Error ? reason : new Error(String(reason));
      findings.push({ kind: 'unhandled-rejection', case: describeCase(makeCase(o.seed, current)), detail: `${e.name}: ${e.message}`, stack: e.stack });
    },
    async () => {
      const clock = { now: 1_000_000 };
      let point = newPoint(clock);
      /** The cases the current point has seen, for replaying a failure that needs them. */
      let history: FuzzCase[] = [];
      for (let i = first; i < first + o.cases; i++) {
        current = i;
        if ((i - first) % pointEvery === 0 && i > first) {
          point.close();
          point = newPoint(clock);
          history = [];
        }
        const c = makeCase(o.seed, i);
        const { body } = bodyOf(c, scale);
        const chunks = chunksOf(body, c.split);
        const t0 = Date.now();
        let outcome = feed(point, clock, chunks, c.ending, c.streamId);
        const ms = Date.now() - t0;
        if (outcome.ok && ms > slowMs) outcome = { ok: false, kind: 'stall', detail: `case took ${ms} ms (body ${body.length} bytes in ${chunks.length} writes)` };
        if (outcome.ok) {
          outcomes[outcome.code] = (outcomes[outcome.code] ?? 0) + 1;
          outcome = health(point);
        }
        clock.now += 2000;
        if (point.bytes > MAX_POINT_BYTES) outcome = { ok: false, kind: 'memory', detail: `point holds ${point.bytes} bytes, over maxBytesPerPoint` };
        if (!outcome.ok) {
          const sig = signature(outcome);
          if (!seen.has(sig)) {
            seen.add(sig);
            log(`finding ${outcome.kind} in ${describeCase(c)}: ${outcome.detail}`);
            const shrunk = shrink(c, scale, outDir, history, sig);
            findings.push({ kind: outcome.kind, detail: outcome.detail, stack: outcome.stack, ...shrunk });
          }
          // a broken point is replaced so the run goes on
          point.close();
          point = newPoint(clock);
          history = [];
        } else history.push(c);
        if ((i - first) % 25 === 24) {
          peak = Math.max(peak, rssMb());
          await new Promise((ok) => setImmediate(ok));
        }
        if ((i - first) % 1000 === 999) log(`core: ${i + 1 - first}/${o.cases} cases, ${Math.round(peak - baseline)} MB RSS growth`);
      }
      point.close();
    },
  );
  const end = rssMb();
  peak = Math.max(peak, end);
  const growth = peak - baseline;
  if (growth > (o.rssBoundMb ?? 384)) findings.push({ kind: 'memory', detail: `RSS grew by ${Math.round(growth)} MB over ${o.cases} cases (bound ${o.rssBoundMb ?? 384} MB)` });
  return { seed: o.seed, cases: o.cases, ms: Date.now() - started, findings, outcomes, rssGrowthMb: Math.round(growth) };
}

// ---------------------------------------------------------------------------------------------------
// HTTP level
// ---------------------------------------------------------------------------------------------------

/** A live encoder replaying the capture in an endless, time-shifted loop; remembers every fragment sent. */
class GoodStream {
  readonly post: RawPost;
  readonly sent = { video: new Set<bigint>(), audio: new Set<bigint>() };
  readonly #running: Promise<void>;
  #stopped = false;
  count = 0;

  constructor(url: string, pace: number) {
    this.post = new RawPost(url);
    this.#running = this.#run(pace);
  }

  async #run(pace: number): Promise<void> {
    await this.post.write(fixture().header);
    for (let round = 0; ; round++) {
      const fragments = fragmentsOfRound(round);
      for (let i = 0; i < fragments.length; i++) {
        // stops between time steps only: every quality level has every listed time
        if ((i % 3 === 0 && this.#stopped) || this.post.isClosed) return;
        const f = fragments[i]!;
        await this.post.write(f);
        // the capture's fragments go video 100k, video 50k, audio
        (i % 3 === 2 ? this.sent.audio : this.sent.video).add(tfxdOf(f).time);
        this.count++;
        await sleep(pace);
      }
    }
  }

  async stop(): Promise<Reply> {
    this.#stopped = true;
    await this.#running;
    await this.post.write(fixture().mfra);
    return this.post.end();
  }
}

function within<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([p, new Promise<'timeout'>((ok) => (timer = setTimeout(() => ok('timeout'), ms)))]).finally(() => clearTimeout(timer));
}

/** At most `max` chunks: neighbours merged, so one-byte splits stay affordable over a socket. */
function coalesce(chunks: Buffer[], max: number): Buffer[] {
  if (chunks.length <= max) return chunks;
  const per = Math.ceil(chunks.length / max);
  const out: Buffer[] = [];
  for (let i = 0; i < chunks.length; i += per) out.push(Buffer.concat(chunks.slice(i, i + per)));
  return out;
}

export async function runHttp(o: RunOptions): Promise<Report> {
  const log = o.log ?? (() => undefined);
  const scale = o.scale ?? 1;
  const concurrency = o.concurrency ?? 4;
  const first = o.first ?? 0;
  const outDir = o.outDir ?? path.join(process.cwd(), 'test-output', 'fuzz');
  const findings: Finding[] = [];
  const outcomes: Record<string, number> = {};
  const started = Date.now();
  const srv = await startServer({ maxBoxSize: MAX_BOX });
  let good: GoodStream | undefined;
  try {
    return await watchingRejections(
      (reason) => {
        const e = reason instanceof Error ? reason : new Error(String(reason));
        findings.push({ kind: 'unhandled-rejection', detail: `${e.name}: ${e.message}`, stack: e.stack });
      },
      async () => {
        srv.define('good.isml');
        for (let w = 0; w < concurrency; w++) srv.define(`fz${w}.isml`, { startOnFirstRequest: 'true', restartOnEncoderReconnect: 'true' });
        good = new GoodStream(`${srv.base}/good.isml/Streams(good)`, 20);
        let next = first;
        const worker = async (w: number): Promise<void> => {
          for (let i = next++; i < first + o.cases; i = next++) {
            const c = makeCase(o.seed, i);
            const { body } = bodyOf(c, scale);
            const chunks = coalesce(chunksOf(body, c.split), 200);
            const post = new RawPost(`${srv.base}/fz${w}.isml/Streams(${c.streamId})`);
            const sending = (async () => {
              for (let k = 0; k < chunks.length && !post.isClosed; k++) {
                // a write the socket never takes (the server closed it) resolves with the close
                await Promise.race([post.write(chunks[k]!), post.closed]);
                if (k % 16 === 15) await sleep(1);
              }
            })();
            const t0 = Date.now();
            if ((await within(sending, 15_000)) === 'timeout') {
              // the server stopped reading the body and never answered
              findings.push({
                kind: 'stall',
                case: describeCase(c),
                detail: `body not taken within 15 s: ${post.sent} of ${body.length} bytes handed to the socket, responded: ${post.responded}, socket closed: ${post.isClosed}`,
                input: save(outDir, c, body),
              });
              post.destroy();
              continue;
            }
            if (Date.now() - t0 > 5000) log(`slow case ${describeCase(c)}: ${Date.now() - t0} ms`);
            if (c.ending === 'abort') {
              post.destroy();
              await within(post.closed, 5000);
              outcomes.aborted = (outcomes.aborted ?? 0) + 1;
              continue;
            }
            const reply = await within(
              post.end().catch((err: Error) => err),
              10_000,
            );
            const where = describeCase(c);
            if (reply === 'timeout') {
              findings.push({ kind: 'no-response', case: where, detail: `no answer within 10 s (${post.sent} of ${body.length} bytes sent)` });
              post.destroy();
            } else if (reply instanceof Error) {
              findings.push({ kind: 'no-response', case: where, detail: reply.message, input: save(outDir, c, body) });
            } else {
              outcomes[reply.status] = (outcomes[reply.status] ?? 0) + 1;
              if (!INGEST_STATUSES.has(reply.status)) {
                findings.push({ kind: 'status', case: where, detail: `status ${reply.status}: ${reply.text.trim().slice(0, 200)}`, input: save(outDir, c, body) });
              }
            }
          }
        };
        await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));

        // Every fuzzed point still answers its manifest.
        for (let w = 0; w < concurrency; w++) {
          const r = await get(`${srv.base}/fz${w}.isml/Manifest`);
          if (r.status >= 500) findings.push({ kind: 'point-broken', detail: `GET fz${w}.isml/Manifest: ${r.status} ${r.text.trim().slice(0, 200)}` });
        }

        // The good stream lost nothing.
        const stopped = await good.stop().catch((err: Error) => err);
        if (stopped instanceof Error) findings.push({ kind: 'good-stream', detail: `good stream cut: ${stopped.message}` });
        else if (stopped.status !== 200) findings.push({ kind: 'good-stream', detail: `good stream ended with ${stopped.status} ${stopped.text.trim()}` });
        const m = await get(`${srv.base}/good.isml/Manifest`);
        if (m.status !== 200) findings.push({ kind: 'good-stream', detail: `good manifest: ${m.status} ${m.text.trim()}` });
        else {
          const manifest = parseManifest(m.text);
          for (const type of ['video', 'audio'] as const) {
            const stream = manifest.streams.find((s) => s.type === type);
            const listed = new Set((stream?.fragments ?? []).map((f) => f.t));
            // audio starts at −priming: its first listed time is clamped to 0
            const sent = [...good.sent[type]].map((t) => (t < 0n ? 0n : t));
            const missing = sent.filter((t) => !listed.has(t));
            if (missing.length > 0 || listed.size !== sent.length) {
              findings.push({ kind: 'good-stream', detail: `${type}: ${sent.length} fragments sent, ${listed.size} listed, missing ${missing.slice(0, 5).join(', ')}` });
            }
            const last = stream?.fragments[stream.fragments.length - 1];
            if (stream && last) {
              for (const bitrate of stream.bitrates) {
                const r = await get(`${srv.base}/good.isml/${stream.url.replace('{bitrate}', String(bitrate)).replace('{start time}', String(last.t))}`);
                if (r.status !== 200) findings.push({ kind: 'good-stream', detail: `GET ${type} ${bitrate} @${last.t}: ${r.status}` });
              }
            }
          }
        }
        log(`http: ${o.cases} cases, statuses ${JSON.stringify(outcomes)}, good stream pushed ${good.count} fragments`);
        return { seed: o.seed, cases: o.cases, ms: Date.now() - started, findings, outcomes, goodFragments: good.count };
      },
    );
  } finally {
    if (good && !good.post.isClosed) good.post.destroy();
    await srv.close();
  }
}

/** One finding as text: kind, case, detail, input, stack head. */
export function formatFinding(f: Finding): string {
  return [
    `${f.kind}: ${f.detail}`,
    f.case && `  case: ${f.case}`,
    f.reproducible !== undefined && `  on a fresh point: ${f.reproducible ? 'reproduces' : 'does not reproduce (depends on the cases before it on the same point)'}`,
    f.input && `  input: ${f.input}`,
    f.stack && `  stack:\n${f.stack.split('\n').slice(0, 12).map((l) => `    ${l.trim()}`).join('\n')}`,
  ]
    .filter(Boolean)
    .join('\n');
}
