'use strict';
/**
 * Parse-and-store throughput on one core: feeds a captured ffmpeg push (looped with shifted times into
 * ~48 MB) through an ingest session of a real publishing point (the ingest parser, the one copy of the
 * samples into the memory store, the timelines), in 64 KiB chunks as a socket delivers them. No HTTP:
 * this is the cost per byte of what the middleware does with an ingest body. Prints one JSON line.
 * Usage: node parse-worker.js <dist> <capture file>
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const lib = require(process.argv[2]);
const { capturedPush } = require('./media');

const CHUNK = 64 * 1024;
const TARGET = 48 * 1024 * 1024;
const WARMUP = 2;
const ROUNDS = 15;

async function main() {
  const capture = capturedPush(fs.readFileSync(process.argv[3]), lib);
  const loops = [];
  let total = 0;
  for (let i = 0; total < TARGET; i++) {
    loops.push(capture.loop(i));
    total += loops[i].length;
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'live-smooth-bench-parse-'));
  const handler = lib.liveSmooth(root, { maxBytesPerPoint: 256 * 1024 * 1024 });
  const results = [];
  let fragments = 0;
  for (let r = 0; r < WARMUP + ROUNDS; r++) {
    const name = `p${r}.isml`;
    fs.writeFileSync(path.join(root, name), '');
    const point = await handler.origin.resolve(name);
    let added = 0;
    point.on('fragment', () => added++);
    const conn = point.openIngest('bench', '127.0.0.1', lib.smoothIngest({ maxBoxSize: 32 * 1024 * 1024 }));
    conn.write(capture.header);
    const t0 = performance.now();
    for (const body of loops) for (let o = 0; o < body.length; o += CHUNK) conn.write(body.subarray(o, o + CHUNK));
    const ms = performance.now() - t0;
    if (r >= WARMUP) results.push(total / 1e6 / (ms / 1000));
    fragments = added;
    point.close();
  }
  handler.origin.close();
  fs.rmSync(root, { recursive: true, force: true });
  results.sort((a, b) => a - b);
  const perFragment = total / fragments;
  process.stdout.write(
    `${JSON.stringify({
      mbps: results[results.length >> 1],
      best: results[results.length - 1],
      rounds: results,
      bytes: total,
      fragments,
      perFragment,
    })}\n`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
