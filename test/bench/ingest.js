'use strict';
/**
 * 4. Ingest: parse-and-store throughput (MB/s, one core) on captured ffmpeg pushes, and 20 concurrent
 * live pushes at 3 Mbit/s each, in real time through the HTTP middleware, checked for falling behind.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { FIXTURE, MFRA, capturedPush } = require('./lib/media');
const t = require('./lib/tools');

const PUSHES = 20;
const PUSH_SECONDS = Number(process.env.BENCH_PUSH_SECONDS || 20);
const LOOKAHEAD = 2;

function parseThroughput(file) {
  const out = execFileSync(process.execPath, [path.join(__dirname, 'lib', 'parse-worker.js'), t.DIST, file], {
    encoding: 'utf8',
  });
  return JSON.parse(out.trim().split('\n').pop());
}

async function run(log, o) {
  const result = { parse: [] };
  log('  parse-and-store: captured fixture (2 × H.264 + AAC, 100 kbit/s, 1 s fragments)');
  result.parse.push({ label: 'fixture: 160×90, ~130 kbit/s, 1 s fragments', ...parseThroughput(FIXTURE) });
  const files = t.tmpDir('capture');
  let capture;
  if (o.ladder) {
    const file = path.join(files, 'ladder.bin');
    fs.writeFileSync(file, o.ladder);
    log('  parse-and-store: captured 3 Mbit/s ladder (3 × H.264 + AAC, 2 s fragments)');
    result.parse.push({
      label: 'ffmpeg capture: 720p/480p/360p + AAC, ~3 Mbit/s, 2 s fragments',
      ...parseThroughput(file),
    });
    capture = capturedPush(o.ladder, require(t.DIST));
  }
  fs.rmSync(files, { recursive: true, force: true });
  result.pushes = await concurrentPushes(log, capture || o.synthetic);
  return result;
}

/** 20 publishing points, each fed by its own chunked POST in real time; the slots of the pushes are staggered. */
async function concurrentPushes(log, source) {
  const root = t.tmpDir('pushes');
  for (let p = 0; p < PUSHES; p++)
    fs.writeFileSync(path.join(root, `c${p}.isml`), t.isml({ lookaheadChunks: LOOKAHEAD }));
  const server = await t.startServer('smooth', { root });
  const slotMs = source.slotSeconds * 1000;
  const slots = Math.max(LOOKAHEAD + 2, Math.round(PUSH_SECONDS / source.slotSeconds));
  const tracks = (source.tracks || []).length || 4;
  let bitsPerPush = 0;
  for (let i = 0; i < slots; i++) bitsPerPush += source.slot(i).length * 8;
  log(
    `  ${PUSHES} live pushes of ${(bitsPerPush / slots / source.slotSeconds / 1e6).toFixed(2)} Mbit/s` +
      ` for ${(slots * source.slotSeconds).toFixed(0)} s`,
  );
  const writes = []; // [push][slot] = time the slot was handed to the socket
  const lateness = [];
  try {
    await server.call('logPublishes', { on: true });
    const pushes = [];
    for (let p = 0; p < PUSHES; p++) {
      const push = t.openPush(`${server.url}/live/c${p}.isml/Streams(enc${p})`);
      await push.write(source.header);
      pushes.push(push);
      writes.push([]);
    }
    await server.call('resetLoop');
    const start = t.now() + 100;
    await Promise.all(
      pushes.map(async (push, p) => {
        const offset = (p / PUSHES) * slotMs;
        for (let i = 0; i < slots; i++) {
          const due = start + offset + i * slotMs;
          const wait = due - t.now();
          if (wait > 0) await t.sleep(wait);
          await push.write(source.slot(i));
          const done = t.now();
          writes[p][i] = done;
          lateness.push(done - due);
        }
      }),
    );
    await t.sleep(200);
    const stats = await server.call('stats');
    const log_ = await server.call('takePublishes');
    await Promise.all(pushes.map((p) => p.end(MFRA)));
    const final = await server.call('stats');
    // Publication lag: slot i completes the lookahead of slot i − L; all of that slot's tracks are
    // published by the time slot i has been parsed.
    const lags = [];
    for (let p = 0; p < PUSHES; p++) {
      const times = log_.filter((e) => e[0] === `c${p}.isml`).map((e) => e[3]);
      for (let i = LOOKAHEAD; i < slots; i++) {
        const idx = (i - LOOKAHEAD + 1) * tracks - 1;
        if (times[idx] !== undefined) lags.push(times[idx] - writes[p][i]);
      }
    }
    const expected = PUSHES * slots * tracks;
    const published = Object.entries(final.publishedBy).reduce((s, [, n]) => s + n, 0);
    return {
      pushes: PUSHES,
      mbitPerPush: bitsPerPush / slots / source.slotSeconds / 1e6,
      seconds: slots * source.slotSeconds,
      expected,
      published,
      dropped: expected - published,
      rejected: final.rejected,
      statuses: pushes.map((p) => p.status),
      lag: { p50: t.pct(lags, 50), p99: t.pct(lags, 99), max: Math.max(...lags) },
      lateness: { p99: t.pct(lateness, 99), max: Math.max(...lateness) },
      loop: stats.loop,
      rss: stats.rss,
    };
  } finally {
    await server.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
}

module.exports = { run };
