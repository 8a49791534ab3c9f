'use strict';
/**
 * 8. Live archives: 20 concurrent pushes of the 3 Mbit/s ladder, each into its own point, pushed as fast as
 * the server takes them (and once at 10× real time, staggered like the ingest section's), into points whose
 * `publishing` lists `Archives` and, in the same run, into points without: ingest throughput and lag side
 * by side, fragments stored against fragments archived, bytes written to disk per second and the peak of
 * the archive write queue. The unpaced pushes outrun a disk on a small machine, so their archives get a
 * write queue large enough for the whole run (what it peaks at is how far the disk fell behind); one more
 * unpaced run with the default queue shows what happens then.
 */
const fs = require('node:fs');
const path = require('node:path');
const { MFRA } = require('./lib/media');
const t = require('./lib/tools');

const PUSHES = 20;
/** 2 s slots per push: 40 = 80 s of media, ~31 MB per push, ~620 MB per run. */
const SLOTS = Number(process.env.BENCH_ARCHIVE_SLOTS || 40);
const LOOKAHEAD = 2;
/** DVR window (s): keeps the points' memory small; the archive keeps every fragment. */
const WINDOW = 20;
/** The paced run's speed, × real time (20 pushes × 3 Mbit/s × 10 ≈ 75 MB/s). */
const SPEED = 10;
/** `archiveQueueBytes` of the unpaced runs compared side by side: more than a whole run. */
const BIG_QUEUE = 2 ** 30;

async function run(log, o = {}) {
  const source = o.synthetic;
  const tracks = source.tracks.length;
  const slots = [];
  for (let i = 0; i < SLOTS; i++) slots.push(source.slot(i));
  const bytesPerPush = slots.reduce((s, b) => s + b.length, 0);
  log(
    `  ${PUSHES} pushes of ${SLOTS} × ${source.slotSeconds} s slots (${(bytesPerPush / 1e6).toFixed(1)} MB each, ` +
      `${((bytesPerPush * 8) / SLOTS / source.slotSeconds / 1e6).toFixed(2)} Mbit/s of media), unpaced and at ${SPEED}× real time`,
  );
  const rounds = o.rounds || t.ROUNDS;
  const runs = { plain: [], archive: [], defaultQueue: [], pacedPlain: [], pacedArchive: [] };
  // Interleaved, so that a disturbance on the machine hits both alike; the others once.
  const plan = [];
  for (let r = 0; r < rounds; r++) plan.push(['plain', 0], ['archive', 0, BIG_QUEUE]);
  plan.push(['defaultQueue', 0], ['pacedPlain', SPEED], ['pacedArchive', SPEED]);
  for (const [name, speed, queue] of plan) {
    const mode = name === 'plain' || name === 'pacedPlain' ? 'plain' : 'archive';
    const x = await pushRun(mode, source.header, slots, tracks, speed, source.slotSeconds, queue);
    runs[name].push(x);
    log(
      `  ${speed ? `${speed}×` : 'unpaced'} ${mode === 'archive' ? `Archives, queue ${(x.queueMax / 2 ** 20).toFixed(0)} MiB` : 'no archive'} ${x.mbps.toFixed(0)} MB/s, ` +
        `lag p50 ${x.lag.p50.toFixed(1)} ms, p99 ${x.lag.p99.toFixed(1)} ms, stored ${x.stored}` +
        (mode === 'archive'
          ? `, archived ${x.archived} (${x.mismatched} points differ, ${x.failed.length} failed), on disk ` +
            `${(x.archiveBytes / 1e6).toFixed(0)} MB in ${x.archiveSeconds.toFixed(1)} s, queue peak ${(x.peak / 2 ** 20).toFixed(1)} MiB`
          : ''),
    );
  }
  const median = (list) => [...list].sort((a, b) => a.mbps - b.mbps)[(list.length - 1) >> 1];
  return {
    pushes: PUSHES,
    slots: SLOTS,
    slotSeconds: source.slotSeconds,
    mbitPerPush: (bytesPerPush * 8) / SLOTS / source.slotSeconds / 1e6,
    bytesPerPush,
    plain: { ...median(runs.plain), rounds: runs.plain.map((x) => Math.round(x.mbps)) },
    archive: { ...median(runs.archive), rounds: runs.archive.map((x) => Math.round(x.mbps)) },
    speed: SPEED,
    defaultQueue: runs.defaultQueue[0],
    pacedPlain: runs.pacedPlain[0],
    pacedArchive: runs.pacedArchive[0],
    // Over every run whose queue is not meant to overflow, not only the median one: no fragment may be
    // missing from any archive.
    allArchived: [...runs.archive, ...runs.pacedArchive].every(
      (x) => x.mismatched === 0 && x.failed.length === 0 && x.archived === x.stored,
    ),
  };
}

/**
 * One run: a fresh server and root, 20 points (with or without `Archives`), 20 pushes: unpaced
 * (`speed` 0) or at `speed` × real time with the pushes' slots staggered.
 */
async function pushRun(mode, header, slots, tracks, speed, slotSeconds, queueBytes) {
  const root = t.tmpDir(`archive-${mode}`);
  const publishing = mode === 'archive' ? 'Fragments;Streams;Archives' : 'Fragments;Streams';
  for (let p = 0; p < PUSHES; p++) {
    fs.writeFileSync(
      path.join(root, `c${p}.isml`),
      t.isml({ publishing, lookaheadChunks: LOOKAHEAD, manifestWindowLength: WINDOW }),
    );
  }
  const options = { stateFile: false, ...(queueBytes ? { archiveQueueBytes: queueBytes } : {}) };
  const server = await t.startServer('smooth', { root, options });
  try {
    await server.call('logPublishes', { on: true });
    const pushes = [];
    const writes = [];
    for (let p = 0; p < PUSHES; p++) {
      const push = t.openPush(`${server.url}/live/c${p}.isml/Streams(enc${p})`);
      await push.write(header);
      pushes.push(push);
      writes.push([]);
    }
    const before = await server.call('stats');
    await server.call('resetLoop');
    const start = t.now();
    const slotMs = speed ? (slotSeconds * 1000) / speed : 0;
    await Promise.all(
      pushes.map(async (push, p) => {
        for (let i = 0; i < slots.length; i++) {
          if (speed) {
            const wait = start + (p / PUSHES) * slotMs + i * slotMs - t.now();
            if (wait > 0) await t.sleep(wait);
          }
          await push.write(slots[i]);
          writes[p][i] = t.now();
        }
      }),
    );
    const expected = slots.length * tracks;
    for (let p = 0; p < PUSHES; p++) await waitStored(server, `c${p}.isml`, expected);
    const stats = await server.call('stats');
    const published = await server.call('takePublishes');
    // Lag, as in the ingest section: slot i completes the lookahead of slot i − L, so the publication of
    // slot i − L's last track is the moment slot i was stored.
    const lags = [];
    let end = start;
    for (let p = 0; p < PUSHES; p++) {
      const times = published.filter((e) => e[0] === `c${p}.isml`).map((e) => e[3]);
      for (let i = LOOKAHEAD; i < slots.length; i++) {
        const at = times[(i - LOOKAHEAD + 1) * tracks - 1];
        if (at === undefined) continue;
        lags.push(at - writes[p][i]);
        if (at > end) end = at;
      }
    }
    const statuses = await Promise.all(pushes.map((p) => p.end(MFRA)));
    // The sessions end with the streams (Stopped): their archives get the mfra and the .ismc, synced.
    if (mode === 'archive') await waitFinished(server);
    await server.call('archiveIdle');
    const done = t.now();
    const after = await server.call('stats');
    const archives = await server.call('archives');
    const archivedBy = {};
    for (const a of archives.list) archivedBy[a.point] = (archivedBy[a.point] || 0) + a.fragments;
    const storedBy = after.storedBy;
    const points = Object.keys(storedBy);
    const stored = points.reduce((s, p) => s + storedBy[p], 0);
    const archived = Object.values(archivedBy).reduce((s, n) => s + n, 0);
    const archiveBytes = archives.list.reduce((s, a) => s + a.bytes, 0);
    const pushed = pushes.length * slots.reduce((s, b) => s + b.length, 0);
    return {
      mbps: pushed / 1e6 / ((end - start) / 1000),
      seconds: (end - start) / 1000,
      pushed,
      expected: PUSHES * expected,
      stored,
      archived,
      mismatched: mode === 'archive' ? points.filter((p) => archivedBy[p] !== storedBy[p]).length : 0,
      states: [...new Set(archives.list.map((a) => a.state))],
      failed: archives.failed,
      archiveBytes,
      // Until the last archive file is closed (mfra written, fdatasync done): the disk's whole share.
      archiveSeconds: (done - start) / 1000,
      archiveMBps: archiveBytes / 1e6 / ((done - start) / 1000),
      writeBytes: before.io && after.io ? after.io.writeBytes - before.io.writeBytes : undefined,
      wchar: before.io && after.io ? after.io.wchar - before.io.wchar : undefined,
      peak: archives.peak,
      queueMax: archives.queue.max,
      lag: { p50: t.pct(lags, 50), p99: t.pct(lags, 99), max: Math.max(...lags) },
      loop: stats.loop,
      rss: stats.rss,
      statuses: [...new Set(statuses)],
    };
  } finally {
    await server.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

async function waitStored(server, point, n, ms = 60_000) {
  const end = Date.now() + ms;
  for (;;) {
    const s = await server.call('stats');
    if ((s.storedBy[point] || 0) >= n) return;
    if (Date.now() > end) throw new Error(`${point}: ${s.storedBy[point] || 0} of ${n} fragments stored`);
    await t.sleep(5);
  }
}

/** Waits until every archive is finished or failed (the points stopped at the end of their streams). */
async function waitFinished(server, ms = 60_000) {
  const end = Date.now() + ms;
  for (;;) {
    const a = await server.call('archives');
    if (a.list.length >= PUSHES && a.list.every((x) => x.state !== 'writing')) return;
    if (Date.now() > end) throw new Error(`archives still writing: ${a.list.filter((x) => x.state === 'writing').length}`);
    await t.sleep(10);
  }
}

module.exports = { run };
