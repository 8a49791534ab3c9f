'use strict';
/**
 * 2. Manifest GET at DVR windows of 1 min, 30 min and 2 h (3 video + 1 audio track, 2 s fragments):
 * req/s of the live manifest from liveSmooth in Express against express.static
 * serving the same bytes as a file (and nginx, when installed), and the cost of making the manifest
 * current after a new fragment.
 */
const fs = require('node:fs');
const path = require('node:path');
const { Stream } = require('./lib/media');
const t = require('./lib/tools');

const WINDOWS = [
  { label: '1 min', seconds: 60 },
  { label: '30 min', seconds: 1800 },
  { label: '2 h', seconds: 7200 },
];
/** Small fragments: only the number of fragments in the window matters here. */
const TRACKS = [
  { kind: 'video', bitrate: 1_800_000, bytes: 2000 },
  { kind: 'video', bitrate: 800_000, bytes: 1500 },
  { kind: 'video', bitrate: 300_000, bytes: 1000 },
  { kind: 'audio', bitrate: 100_000, bytes: 500 },
];
const RENDER_SLOTS = 15;

async function run(log, o = {}) {
  const root = t.tmpDir('manifest');
  for (const w of WINDOWS) {
    fs.writeFileSync(path.join(root, `w${w.seconds}.isml`), t.isml({ manifestWindowLength: w.seconds }));
  }
  const smooth = await t.startServer('smooth', { root });
  const files = t.tmpDir('manifest-files');
  const rows = [];
  const pushes = [];
  try {
    for (const w of WINDOWS) {
      // Fill the window (plus a little, so trimming is in steady state) through a real ingest POST.
      const stream = new Stream(TRACKS, 2);
      const push = t.openPush(`${smooth.url}/live/w${w.seconds}.isml/Streams(bench)`);
      pushes.push(push);
      await push.write(stream.header);
      const slots = w.seconds / 2 + 10;
      let i = 0;
      for (; i < slots; i++) await push.write(stream.slot(i));
      // Rebuild cost: render after each of the next fragments (in the server, timed around point.manifest()).
      await t.waitPublished(smooth, `w${w.seconds}.isml`, (slots - 2) * TRACKS.length);
      await smooth.call('measureRenders', { point: `w${w.seconds}.isml` });
      for (let k = 0; k < RENDER_SLOTS; k++, i++) {
        await push.write(stream.slot(i));
        await t.sleep(5);
      }
      await t.waitPublished(smooth, `w${w.seconds}.isml`, (i - 2) * TRACKS.length);
      const renders = await smooth.call('takeRenders');
      const url = `/live/w${w.seconds}.isml/Manifest`;
      const m = await t.get(smooth.url + url);
      if (m.status !== 200) throw new Error(`manifest answered ${m.status}`);
      const chunks = (m.body.toString().match(/<c /g) || []).length;
      const name = `manifest-${w.seconds}.xml`;
      fs.writeFileSync(path.join(files, name), m.body);
      rows.push({ label: w.label, seconds: w.seconds, url, file: `/${name}`, size: m.body.length, chunks, renders });
      log(`  window ${w.label}: ${chunks} fragments listed, ${m.body.length} bytes`);
    }
    fs.chmodSync(files, 0o755);
    const stat = await t.startServer('static', { dir: files });
    const nginx = await t.startNginx(files);
    try {
      for (const row of rows) {
        const targets = [
          ['liveSmooth', smooth.url + row.url],
          ['express.static', stat.url + row.file],
          ...(nginx ? [['nginx', nginx.url + row.file]] : []),
        ];
        row.ac = await t.compare(targets, t.cannon, o.rounds);
        row.wrk = t.WRK ? await t.compare(targets, t.wrk, 1) : {};
        log(
          `  window ${row.label}: liveSmooth ${row.ac.liveSmooth.rps.toFixed(0)} req/s, ` +
            `express.static ${row.ac['express.static'].rps.toFixed(0)} req/s`,
        );
      }
    } finally {
      await Promise.all([stat.stop(), nginx && nginx.stop()]);
    }
  } finally {
    for (const p of pushes) p.req.destroy();
    await smooth.stop();
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(files, { recursive: true, force: true });
  }
  return { rows };
}

module.exports = { run };
