'use strict';
/**
 * 5. Ingest → available: from the moment the last bytes of the fragment that completes the lookahead
 * have been handed to the ingest socket, to the held fragment being served (Fragments GET answers 200 instead of 412) and
 * listed (the manifest's video StreamIndex ends at its time). Measured over HTTP from another process,
 * polling back to back on keep-alive connections, with a 1 min DVR window and with a full 2 h window
 * (3 video bitrates + audio, 2 s fragments, lookahead 2).
 */
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { Stream, LADDER_3M } = require('./lib/media');
const t = require('./lib/tools');

const SAMPLES = Number(process.env.BENCH_LATENCY_SAMPLES || 150);
const LOOKAHEAD = 2;
const WINDOWS = [
  { label: '1 min window', seconds: 60 },
  { label: '2 h window', seconds: 7200 },
];

/**
 * Start time of the last `c` of the first (video) StreamIndex. A scan with indexOf, BigInts only where a
 * value changes: the 2 h manifest has 3 600 `c` per StreamIndex and this runs on every poll.
 */
function lastVideoTime(xml) {
  const end = xml.indexOf('</StreamIndex>');
  let at = xml.indexOf('<c ', xml.indexOf('<StreamIndex'));
  let time = -1n;
  let next = 0n;
  let dText = '';
  let d = 0n;
  while (at !== -1 && at < end) {
    const close = xml.indexOf('/>', at);
    const tAt = xml.indexOf(' t="', at);
    time = tAt !== -1 && tAt < close ? BigInt(xml.slice(tAt + 4, xml.indexOf('"', tAt + 4))) : next;
    const dAt = xml.indexOf(' d="', at) + 4;
    const text = xml.slice(dAt, xml.indexOf('"', dAt));
    if (text !== dText) {
      dText = text;
      d = BigInt(text);
    }
    next = time + d;
    at = xml.indexOf('<c ', close);
  }
  return time;
}

async function run(log) {
  const root = t.tmpDir('latency');
  for (const w of WINDOWS) {
    fs.writeFileSync(
      path.join(root, `l${w.seconds}.isml`),
      t.isml({ manifestWindowLength: w.seconds, lookaheadChunks: LOOKAHEAD }),
    );
  }
  const server = await t.startServer('smooth', { root });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });
  const rows = [];
  try {
    for (const w of WINDOWS) {
      const name = `l${w.seconds}.isml`;
      const stream = new Stream(LADDER_3M, 2);
      const bottom = LADDER_3M[2].bitrate;
      const push = t.openPush(`${server.url}/live/${name}/Streams(lat)`);
      await push.write(stream.header);
      // Fill the window with small fragments (only their number matters for listing), then go on with
      // full-size 3 Mbit/s slots.
      const fill = w.seconds / 2 + 5;
      let i = 0;
      for (; i < fill; i++) await push.write(stream.slot(i, 200));
      await t.waitPublished(server, name, (fill - LOOKAHEAD) * LADDER_3M.length);
      const served = [];
      const listed = [];
      const both = [];
      const published = [];
      await server.call('logPublishes', { on: true });
      for (let k = 0; k < SAMPLES + 5; k++, i++) {
        const held = i - LOOKAHEAD;
        const heldTime = BigInt(held) * BigInt(stream.duration);
        // The slot's fragments in stream order: video 1800k, 800k, 300k, audio. The 300k fragment
        // completes the lookahead of the last video bitrate, and so of the StreamIndex's listed edge.
        // Everything before its last KiB goes first; the clock starts when that last KiB has been
        // handed to the socket, i.e. it measures processing, not the transfer of 3 Mbit/s of media.
        const [v0, v1, v2, audio] = stream.slotParts(i);
        const head = Buffer.concat([v0, v1, v2.subarray(0, v2.length - 1024)]);
        await push.write(head);
        await t.sleep(20);
        await new Promise((ok) => push.req.write(v2.subarray(v2.length - 1024), ok));
        const t0 = t.now();
        const fragmentUrl = `${server.url}/live/${name}/QualityLevels(${bottom})/Fragments(video=${heldTime})`;
        const [tf, tm] = await Promise.all([
          (async () => {
            for (;;) {
              const r = await t.get(fragmentUrl, agent);
              const at = t.now();
              if (r.status === 200) return at;
              if (r.status !== 412) throw new Error(`fragment GET answered ${r.status}`);
            }
          })(),
          (async () => {
            for (;;) {
              const r = await t.get(`${server.url}/live/${name}/Manifest`, agent);
              const at = t.now();
              if (r.status !== 200) throw new Error(`manifest GET answered ${r.status}`);
              if (lastVideoTime(r.body.toString('latin1')) >= heldTime) return at;
            }
          })(),
        ]);
        await push.write(audio);
        // When the server published the held 300k fragment (stored the fragment completing its lookahead), on the same clock.
        const log = await server.call('takePublishes');
        const own = log.find((e) => e[1] === `video/video/${bottom}` && e[2] === String(heldTime));
        if (k >= 5) {
          if (own) published.push(own[3] - t0);
          served.push(tf - t0);
          listed.push(tm - t0);
          both.push(Math.max(tf, tm) - t0);
        }
        await t.sleep(10);
      }
      push.req.destroy();
      const q = (a) => ({ p50: t.pct(a, 50), p99: t.pct(a, 99), max: Math.max(...a) });
      await server.call('logPublishes', { on: false });
      rows.push({
        label: w.label,
        samples: both.length,
        published: q(published),
        served: q(served),
        listed: q(listed),
        both: q(both),
      });
      log(`  ${w.label}: served+listed p50 ${t.pct(both, 50).toFixed(2)} ms, p99 ${t.pct(both, 99).toFixed(2)} ms`);
    }
  } finally {
    agent.destroy();
    await server.stop();
    fs.rmSync(root, { recursive: true, force: true });
  }
  return { rows };
}

module.exports = { run, lastVideoTime };
