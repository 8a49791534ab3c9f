#!/usr/bin/env node
'use strict';
/**
 * `npm run bench`: the live-smooth benchmark suite. Runs every section against the built package
 * (dist/), prints a table and writes test/bench/results.md. Servers under test run in child
 * processes; the load generators run here or in their own processes. Nothing here asserts a time:
 * the suite reports, a human judges.
 *
 * Sections: fragments (fragment GET), manifest, outputs (DASH and HLS), ingest, latency (ingest →
 * available), memory, viewers, archive (20 live pushes into points with `Archives` beside 20 without:
 * ingest throughput and lag, fragments archived, disk bytes per second, write-queue peak) and ondemand
 * (`.ism` Manifest and fragment GETs of live archives, one fragment and 2,000 shuffled ones, against
 * express.static and nginx serving the same bytes) and edge (`liveSmooth.edge`, nginx `proxy_cache` and
 * Varnish from examples/edge/ serving a live point's manifest and fragments from their caches, then what
 * reached the origin through each while 50 simulated players per edge watched).
 *
 * Options: `--only=fragments,manifest,outputs,ingest,latency,memory,viewers,archive,ondemand,edge` runs a subset
 * (results.md is written only for a full run unless `--write`). Environment: BENCH_SECONDS (per load run,
 * default 2), BENCH_ROUNDS (default 3), BENCH_CONNECTIONS (default 32), BENCH_VIEWERS (default 2000),
 * BENCH_VIEWER_SECONDS (default 30), BENCH_MEMORY_SECONDS (default 3600), BENCH_DISK_SECONDS (default
 * 6000), BENCH_ARCHIVE_SLOTS (2 s slots per archive push, default 40), BENCH_EDGE_SECONDS (how long the
 * edge section's players watch, default 30), LIVE_SMOOTH_DIST (library to load, default dist/).
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const t = require('./lib/tools');
const { Stream, LADDER_3M } = require('./lib/media');
const { captureLadder } = require('./lib/capture');
const report = require('./lib/report');

const SECTIONS = ['fragments', 'manifest', 'outputs', 'ingest', 'latency', 'memory', 'viewers', 'archive', 'ondemand', 'edge'];

async function main() {
  const args = process.argv.slice(2);
  const only = (args.find((a) => a.startsWith('--only=')) || '').slice('--only='.length);
  const chosen = only ? only.split(',') : SECTIONS;
  for (const s of chosen) if (!SECTIONS.includes(s)) throw new Error(`unknown section ${s}`);
  if (!fs.existsSync(path.join(t.DIST, 'index.js'))) throw new Error(`${t.DIST} is not built: run npm run build`);
  const started = Date.now();
  const env = environment();
  const log = (line) => console.log(line);
  log(`live-smooth benchmarks: ${env.cpu}, ${env.cores} cores, Node ${env.node}`);
  log(
    `load generators: autocannon ${env.autocannon}${env.wrk ? `, ${env.wrk}` : ' (wrk not installed)'}` +
      `${env.nginx ? `; ${env.nginx}` : ' (nginx not installed)'}`,
  );
  const results = { env, sections: {}, errors: {} };
  let ladder;
  if (chosen.includes('ingest')) {
    log('capturing 20 s of a real 3 Mbit/s ffmpeg push (3 × H.264 + AAC) …');
    ladder = await captureLadder(20);
    if (!ladder) log('  ffmpeg not found: the 3 Mbit/s capture row is skipped and pushes use synthetic fragments');
  }
  for (const name of chosen) {
    log(`\n${name}`);
    const t0 = Date.now();
    const load = os.loadavg()[0];
    try {
      const section = require(`./${name}`);
      const r = await section.run(log, { ladder, synthetic: new Stream(LADDER_3M, 2) });
      results.sections[name] = { ...r, elapsed: (Date.now() - t0) / 1000, load: [load, os.loadavg()[0]] };
    } catch (err) {
      results.errors[name] = String((err && err.stack) || err);
      log(`  FAILED: ${err && err.message}`);
    }
  }
  results.seconds = (Date.now() - started) / 1000;
  const md = report.markdown(results);
  console.log(`\n${report.table(results)}`);
  console.log(`\ntotal ${results.seconds.toFixed(0)} s`);
  if (!only || args.includes('--write')) {
    const file = path.join(__dirname, 'results.md');
    fs.writeFileSync(file, md);
    console.log(`wrote ${path.relative(process.cwd(), file)}`);
  }
  if (Object.keys(results.errors).length > 0) process.exitCode = 1;
}

function version(cmd, argv, re) {
  try {
    const out = execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    const m = re.exec(out);
    return m ? m[1] : out.trim().split('\n')[0];
  } catch (err) {
    const text = `${err.stdout || ''}${err.stderr || ''}`;
    const m = re.exec(text);
    return m ? m[1] : undefined;
  }
}

function environment() {
  let distro = os.type();
  try {
    const rel = fs.readFileSync('/etc/os-release', 'utf8');
    distro = (/^PRETTY_NAME="?([^"\n]+)"?/m.exec(rel) || [])[1] || distro;
  } catch {
    // not Linux
  }
  const nginxBin = t.which('nginx') || (fs.existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : undefined);
  return {
    date: new Date().toISOString(),
    cpu: os.cpus()[0] ? os.cpus()[0].model.replace(/\s+/g, ' ').trim() : 'unknown CPU',
    cores: os.cpus().length,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    os: `${distro}, ${os.type()} ${os.release()}`,
    node: process.versions.node,
    autocannon: require('autocannon/package.json').version,
    wrk: t.WRK ? `wrk ${version(t.WRK, ['-v'], /wrk ([\d.]+)/) || ''}`.trim() : undefined,
    nginx: nginxBin ? `nginx ${version(nginxBin, ['-v'], /nginx\/([\d.]+)/) || ''}`.trim() : undefined,
    ffmpeg: t.which('ffmpeg')
      ? `ffmpeg ${version('ffmpeg', ['-version'], /ffmpeg version (\S+)/) || ''}`.trim()
      : undefined,
    seconds: t.SECONDS,
    rounds: t.ROUNDS,
    connections: t.CONNECTIONS,
  };
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
