'use strict';
/**
 * Simulated players for the viewers benchmark, run in their own process: `count` clients, each on its
 * own keep-alive connection, join the live edge over the first seconds and then follow it as Smooth
 * players do. Half poll the manifest every fragment duration and fetch what it newly lists; half poll
 * `FragmentInfo` of the next fragment (412 → retry after 500 ms) and fetch it when it exists. Every
 * client fetches its video bitrate (spread over the ladder) and the audio. Prints one JSON line with
 * latencies per request kind, status counts and errors.
 * Usage: node viewers-worker.js <json config>
 */
const http = require('node:http');
const { monitorEventLoopDelay, performance } = require('node:perf_hooks');

const cfg = JSON.parse(process.argv[2]);
const { base, count, seconds, ramp, bitrates, audio, duration } = cfg;
const D = BigInt(duration);
const end = performance.now() + seconds * 1000;
const lat = { manifest: [], fragment: [], info: [] };
const statuses = {};
let errors = 0;
let bytes = 0;
const errorSamples = [];
const loop = monitorEventLoopDelay({ resolution: 10 });
loop.enable();

function get(agent, path, kind) {
  return new Promise((ok) => {
    const t0 = performance.now();
    const req = http.get(`${base}${path}`, { agent }, (res) => {
      const parts = [];
      res.on('data', (c) => {
        bytes += c.length;
        if (kind === 'manifest') parts.push(c);
      });
      res.on('end', () => {
        const ms = performance.now() - t0;
        statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1;
        if (res.statusCode === 200) lat[kind].push(ms);
        else if (res.statusCode !== 412) {
          errors++;
          if (errorSamples.length < 5) errorSamples.push(`${res.statusCode} ${path}`);
        }
        ok({ status: res.statusCode, body: kind === 'manifest' ? Buffer.concat(parts).toString('latin1') : undefined });
      });
      res.on('error', fail);
    });
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    function fail(err) {
      errors++;
      if (errorSamples.length < 5) errorSamples.push(String(err.message || err));
      ok({ status: 0 });
    }
    req.on('error', fail);
  });
}

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

/** Newest listed start times of the video and audio StreamIndex (no gaps: first t + (n − 1) × d). */
function edges(xml) {
  const out = [];
  let at = 0;
  for (let k = 0; k < 2; k++) {
    const si = xml.indexOf('<StreamIndex', at);
    const stop = xml.indexOf('</StreamIndex>', si);
    const first = xml.indexOf(' t="', si);
    const t = BigInt(xml.slice(first + 4, xml.indexOf('"', first + 4)));
    let n = 0;
    for (let c = xml.indexOf('<c ', si); c !== -1 && c < stop; c = xml.indexOf('<c ', c + 3)) n++;
    out.push(t + BigInt(n - 1) * D);
    at = stop;
  }
  return out;
}

async function viewer(i) {
  await sleep((i / count) * ramp * 1000);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const bitrate = bitrates[i % bitrates.length];
  const pollsManifest = i % 2 === 0;
  const m = await get(agent, '/Manifest', 'manifest');
  if (m.status !== 200) return agent.destroy();
  let [next] = edges(m.body); // start at the live edge
  const fetchSlot = async (time) => {
    await get(agent, `/QualityLevels(${bitrate})/Fragments(video=${time})`, 'fragment');
    await get(agent, `/QualityLevels(${audio})/Fragments(audio=${time})`, 'fragment');
  };
  await fetchSlot(next);
  next += D;
  // Random phase, so polls spread over the fragment duration as independent players' would.
  await sleep(Math.random() * (duration / 1e4));
  while (performance.now() < end) {
    if (pollsManifest) {
      const t0 = performance.now();
      const r = await get(agent, '/Manifest', 'manifest');
      if (r.status === 200) {
        const [edge] = edges(r.body);
        while (next <= edge && performance.now() < end) {
          await fetchSlot(next);
          next += D;
        }
      }
      await sleep(Math.max(0, duration / 1e4 - (performance.now() - t0)));
    } else {
      const r = await get(agent, `/QualityLevels(${bitrate})/FragmentInfo(video=${next})`, 'info');
      if (r.status === 200) {
        await fetchSlot(next);
        next += D;
      } else {
        await sleep(500);
      }
    }
  }
  agent.destroy();
}

async function main() {
  await Promise.all(Array.from({ length: count }, (_, i) => viewer(i)));
  const q = (a) => {
    const s = Float64Array.from(a).sort();
    const p = (x) => (s.length ? s[Math.min(s.length - 1, Math.ceil((x / 100) * s.length) - 1)] : NaN);
    return { n: s.length, p50: p(50), p99: p(99), max: s.length ? s[s.length - 1] : NaN };
  };
  process.stdout.write(
    `${JSON.stringify({
      manifest: q(lat.manifest),
      fragment: q(lat.fragment),
      info: q(lat.info),
      statuses,
      errors,
      errorSamples,
      bytes,
      viewerLoop: { p99: loop.percentile(99) / 1e6, max: loop.max / 1e6 },
    })}\n`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
