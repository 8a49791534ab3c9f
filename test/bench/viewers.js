'use strict';
/**
 * 7. Viewers: 2,000 concurrent keep-alive clients (another process) follow the live edge of a point
 * while an encoder pushes 3 Mbit/s (3 video bitrates + audio, 2 s fragments) in real time: latency
 * p50/p99 per request kind, errors, and ingest fragments dropped (published vs pushed).
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { Stream, LADDER_3M, MFRA } = require('./lib/media');
const t = require('./lib/tools');

const VIEWERS = Number(process.env.BENCH_VIEWERS || 2000);
const SECONDS = Number(process.env.BENCH_VIEWER_SECONDS || 25);
const RAMP = 5;
const WINDOW = 1800;
const PREFILL = 150; // 5 min of media before the viewers arrive

/**
 * Two runs: requests for the newest fragment answered at once (`edgeWait: 0`, comparable with runs
 * before the edge wait existed), then held until the next fragment arrives (the default), where the
 * `FragmentInfo` pollers wait at the edge and are all released when a fragment arrives.
 */
async function run(log) {
  const rows = [];
  for (const pass of [
    { label: 'answered at once (`edgeWait: 0`)', options: { edgeWait: 0 } },
    { label: 'held until the next fragment (default `edgeWait`)', options: {} },
  ]) {
    log(`  ${pass.label}`);
    rows.push({ label: pass.label, ...(await runOnce(log, pass.options)) });
  }
  return { viewers: VIEWERS, seconds: SECONDS + RAMP, rows };
}

async function runOnce(log, options) {
  const root = t.tmpDir('viewers');
  fs.writeFileSync(path.join(root, 'live.isml'), t.isml({ manifestWindowLength: WINDOW }));
  const server = await t.startServer(
    'smooth',
    { root, options },
    process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : [],
  );
  const stream = new Stream(LADDER_3M, 2);
  const push = t.openPush(`${server.url}/live/live.isml/Streams(live)`);
  try {
    await push.write(stream.header);
    let i = 0;
    for (; i < PREFILL; i++) await push.write(stream.slot(i));
    await t.waitPublished(server, 'live.isml', (PREFILL - 2) * LADDER_3M.length);
    const before = await server.call('stats');
    await server.call('resetLoop');
    const config = {
      base: `${server.url}/live/live.isml`,
      count: VIEWERS,
      seconds: RAMP + SECONDS,
      ramp: RAMP,
      bitrates: LADDER_3M.filter((x) => x.kind === 'video').map((x) => x.bitrate),
      audio: LADDER_3M.find((x) => x.kind === 'audio').bitrate,
      duration: stream.duration,
    };
    const flags = process.env.BENCH_PROFILE_VIEWERS
      ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_VIEWERS}`]
      : [];
    const worker = path.join(__dirname, 'lib', 'viewers-worker.js');
    const child = spawn(process.execPath, [...flags, worker, JSON.stringify(config)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    const exited = new Promise((ok) => child.on('exit', ok));
    // The encoder goes on in real time while the viewers run.
    const start = t.now();
    let pushed = i;
    const lateness = [];
    const feeding = (async () => {
      for (let k = 0; ; k++, i++) {
        const due = start + k * stream.slotSeconds * 1000;
        if (due > start + (RAMP + SECONDS) * 1000) break;
        const wait = due - t.now();
        if (wait > 0) await t.sleep(wait);
        await push.write(stream.slot(i));
        lateness.push(t.now() - due);
        pushed = i + 1;
      }
    })();
    await Promise.all([feeding, exited]);
    const during = await server.call('stats');
    await push.end(MFRA);
    const after = await t.waitPublished(server, 'live.isml', pushed * LADDER_3M.length, 5000).catch(() => undefined);
    const final = after || (await server.call('stats'));
    const result = JSON.parse(out.trim().split('\n').pop());
    const r = {
      ...result,
      pushed: pushed * LADDER_3M.length,
      published: final.publishedBy['live.isml'],
      dropped: pushed * LADDER_3M.length - final.publishedBy['live.isml'],
      rejected: final.rejected - before.rejected,
      serverLoop: during.loop,
      ingestLateness: { p99: t.pct(lateness, 99), max: Math.max(...lateness) },
      rss: during.rss,
    };
    const reqs = r.manifest.n + r.fragment.n + r.info.n;
    r.rps = reqs / (SECONDS + RAMP);
    r.mbps = r.bytes / 1e6 / (SECONDS + RAMP);
    log(
      `  ${VIEWERS} viewers: ${reqs} requests (${r.rps.toFixed(0)}/s, ${r.mbps.toFixed(0)} MB/s), ` +
        `fragment p50 ${r.fragment.p50.toFixed(1)} ms p99 ${r.fragment.p99.toFixed(1)} ms, ` +
        `${r.errors} errors, ${r.dropped} dropped`,
    );
    if (r.viewerLoop.p99 > 200)
      log(
        `  (the simulated players' own event loop lagged: p99 ${r.viewerLoop.p99.toFixed(0)} ms; latencies include it)`,
      );
    return r;
  } finally {
    push.req.destroy();
    await server.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

module.exports = { run };
