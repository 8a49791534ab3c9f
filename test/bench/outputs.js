'use strict';
/**
 * 3. DASH and HLS beside Smooth: GET rates of the MPD, the HLS master and a media playlist next to the
 * Smooth manifest (30 min DVR window, 3 video bitrates + audio, 2 s fragments), and of a CMAF segment
 * next to the Smooth fragment of the same stored samples (~100 KB), each against express.static and
 * nginx serving the very same bytes from files.
 */
const fs = require('node:fs');
const path = require('node:path');
const { Stream } = require('./lib/media');
const t = require('./lib/tools');

const WINDOW = 1800;
const TRACKS = [
  { kind: 'video', bitrate: 1_800_000, bytes: 100_000 },
  { kind: 'video', bitrate: 800_000, bytes: 2000 },
  { kind: 'video', bitrate: 300_000, bytes: 1000 },
  { kind: 'audio', bitrate: 100_000, bytes: 500 },
];

async function run(log, o = {}) {
  const root = t.tmpDir('outputs');
  fs.writeFileSync(path.join(root, 'out.isml'), t.isml({ manifestWindowLength: WINDOW }));
  const smooth = await t.startServer('smooth', { root });
  const files = t.tmpDir('outputs-files');
  const rows = [];
  let push;
  try {
    const stream = new Stream(TRACKS, 2);
    push = t.openPush(`${smooth.url}/live/out.isml/Streams(bench)`);
    await push.write(stream.header);
    const slots = WINDOW / 2 + 10;
    for (let i = 0; i < slots; i++) await push.write(stream.slot(i));
    await t.waitPublished(smooth, 'out.isml', (slots - 2) * TRACKS.length);
    // A listed segment well inside the window, at the 1.8 Mbit/s bitrate: its $Time$ from the MPD.
    const mpd = (await t.get(`${smooth.url}/live/out.isml/.mpd`)).body.toString();
    const first = /<S t="(\d+)"/.exec(mpd);
    if (!first) throw new Error('the MPD lists no segment');
    const segmentTime = BigInt(first[1]) + 100n * 20_000_000n;
    const smoothTime = BigInt(/<c t="(\d+)"/.exec((await t.get(`${smooth.url}/live/out.isml/Manifest`)).body.toString())[1]) + 100n * 20_000_000n;
    const targets = [
      { label: 'Smooth manifest', url: '/live/out.isml/Manifest' },
      { label: 'DASH MPD', url: '/live/out.isml/.mpd' },
      { label: 'HLS master playlist', url: '/live/out.isml/.m3u8' },
      { label: 'HLS media playlist', url: '/live/out.isml/cmaf/video=1800000/index.m3u8' },
      { label: 'Smooth fragment', url: `/live/out.isml/QualityLevels(1800000)/Fragments(video=${smoothTime})` },
      { label: 'CMAF segment (DASH, HLS)', url: `/live/out.isml/cmaf/video=1800000/${segmentTime}.m4s` },
    ];
    for (const [i, target] of targets.entries()) {
      const r = await t.get(smooth.url + target.url);
      if (r.status !== 200) throw new Error(`${target.label} answered ${r.status}`);
      const name = `o${i}.bin`;
      fs.writeFileSync(path.join(files, name), r.body);
      rows.push({ ...target, file: `/${name}`, size: r.body.length });
    }
    fs.chmodSync(files, 0o755);
    const stat = await t.startServer('static', { dir: files });
    const nginx = await t.startNginx(files);
    try {
      for (const row of rows) {
        const against = [
          ['liveSmooth', smooth.url + row.url],
          ['express.static', stat.url + row.file],
          ...(nginx ? [['nginx', nginx.url + row.file]] : []),
        ];
        row.ac = await t.compare(against, t.cannon, o.rounds);
        for (const [name, r] of Object.entries(row.ac)) {
          if (r.non2xx || r.errors) throw new Error(`${row.label}, ${name}: ${r.non2xx} non-2xx, ${r.errors} errors under load`);
        }
        log(`  ${row.label} (${row.size} bytes): liveSmooth ${row.ac.liveSmooth.rps.toFixed(0)} req/s, express.static ${row.ac['express.static'].rps.toFixed(0)} req/s`);
      }
    } finally {
      await Promise.all([stat.stop(), nginx && nginx.stop()]);
    }
  } finally {
    if (push) push.req.destroy();
    await smooth.stop();
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(files, { recursive: true, force: true });
  }
  return { rows };
}

module.exports = { run };
