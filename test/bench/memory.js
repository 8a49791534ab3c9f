'use strict';
/**
 * 6. Memory: an hour of 3 Mbit/s media (3 video bitrates + audio, 2 s fragments) pushed through the
 * HTTP middleware faster than real time into a point with a 20 min DVR window. The server's RSS is
 * sampled every simulated minute against the bytes the point holds; the ratio is (RSS − base) / held,
 * where base is the RSS of the same server before any ingest. Steady state is the part after the
 * window is full: RSS there should stay flat.
 *
 * Then the same push into a point whose store is on disk, with a window that keeps every fragment, past
 * 2 GB held: RSS must stay flat while the bytes on disk grow.
 */
const fs = require('node:fs');
const path = require('node:path');
const { Stream, LADDER_3M, MFRA } = require('./lib/media');
const t = require('./lib/tools');

const MEDIA_SECONDS = Number(process.env.BENCH_MEMORY_SECONDS || 3600);
const WINDOW = 1200;
/** Media pushed into the store on disk: 100 min of 3.09 Mbit/s is about 2.3 GB. */
const DISK_SECONDS = Number(process.env.BENCH_DISK_SECONDS || 6000);
/**
 * Pace of the push into the store on disk, × real time: 100× is ~40 MB/s, what 100 such channels would
 * write. Unpaced (~1000×) the writes fall behind and the store refuses fragments past its write-queue
 * bound, as it should: that bound, not the disk, would then be measured.
 */
const DISK_SPEED = 100;

async function run(log) {
  const memory = await measure(log, { seconds: MEDIA_SECONDS, window: WINDOW });
  const disk = await measure(log, { seconds: DISK_SECONDS, window: 0, disk: true });
  return { ...memory, disk };
}

async function measure(log, { seconds: mediaSeconds, window, disk }) {
  const root = t.tmpDir('memory');
  fs.writeFileSync(path.join(root, 'mem.isml'), t.isml({ manifestWindowLength: window }));
  const folder = disk ? t.tmpDir('disk-store') : undefined;
  const config = disk
    ? { root, disk: { folder, maxBytes: 4 * 1024 ** 3 }, options: { maxBytesPerPoint: 4 * 1024 ** 3, maxBytes: 4 * 1024 ** 3 } }
    : { root, options: { maxBytesPerPoint: 1024 * 1024 * 1024, maxBytes: 2 * 1024 ** 3 } };
  const server = await t.startServer('smooth', config, ['--expose-gc']);
  const stream = new Stream(LADDER_3M, 2);
  try {
    // Base: the server after loading and serving once, collected.
    await t.get(`${server.url}/live/mem.isml/Manifest`);
    const base = await server.call('gc');
    const push = t.openPush(`${server.url}/live/mem.isml/Streams(mem)`);
    await push.write(stream.header);
    const samples = [];
    const slots = mediaSeconds / stream.slotSeconds;
    const every = 60 / stream.slotSeconds;
    const t0 = t.now();
    for (let i = 0; i < slots; i++) {
      if (disk) {
        const due = t0 + (i * stream.slotSeconds * 1000) / DISK_SPEED;
        if (t.now() < due) await t.sleep(due - t.now());
      }
      await push.write(stream.slot(i));
      if ((i + 1) % every === 0) {
        await t.waitPublished(server, 'mem.isml', (i - 1) * LADDER_3M.length);
        const s = await server.call('stats');
        samples.push({
          minute: ((i + 1) * stream.slotSeconds) / 60,
          rss: s.rss,
          held: s.held,
          heap: s.heapUsed,
          ab: s.arrayBuffers,
        });
      }
    }
    const seconds = (t.now() - t0) / 1000;
    await push.end(MFRA);
    const last = samples[samples.length - 1];
    const afterGc = await server.call('gc');
    const final = await server.call('stats');
    // With a window, steady state begins once it is full; on disk (no window) RSS is judged throughout.
    const steady = samples.filter((s) => s.minute >= (window ? window / 60 + 2 : 2));
    const rss = steady.map((s) => s.rss);
    const result = {
      store: disk ? 'disk' : 'memory',
      mediaMinutes: mediaSeconds / 60,
      windowMinutes: window / 60,
      feedSeconds: seconds,
      speed: mediaSeconds / seconds,
      lost: final.lost,
      base,
      held: last.held,
      rss: last.rss,
      ratio: (last.rss - base) / last.held,
      rssAfterGc: afterGc,
      ratioAfterGc: (afterGc - base) / final.held,
      steady: {
        from: steady[0] && steady[0].minute,
        min: Math.min(...rss),
        max: Math.max(...rss),
        first: rss[0],
        last: rss[rss.length - 1],
        // Least-squares slope of RSS over the steady minutes, in MB per hour of media.
        slope: slope(steady.map((s) => [s.minute / 60, s.rss / 1e6])),
      },
      samples,
    };
    log(
      `  ${result.store} store: ${result.mediaMinutes} min of media in ${seconds.toFixed(1)} s: held ${(result.held / 1e6).toFixed(0)} MB, ` +
        `RSS ${(result.rss / 1e6).toFixed(0)} MB over a ${(base / 1e6).toFixed(0)} MB base (${result.ratio.toFixed(3)}×), ` +
        `steady RSS ${(result.steady.min / 1e6).toFixed(0)}–${(result.steady.max / 1e6).toFixed(0)} MB, ${result.lost} fragments lost`,
    );
    return result;
  } finally {
    await server.stop();
    fs.rmSync(root, { recursive: true, force: true });
    if (folder) fs.rmSync(folder, { recursive: true, force: true });
  }
}

function slope(points) {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, p) => s + p[0], 0) / n;
  const my = points.reduce((s, p) => s + p[1], 0) / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

module.exports = { run };
