'use strict';
/**
 * 1. Fragment GET: req/s and MB/s for ~25 KB, ~100 KB and ~500 KB fragments served by liveSmooth in
 * Express, against express.static serving the same bytes from files, a bare node:http handler writing
 * the same Buffer, and nginx (when installed). Two more columns separate costs: the same middleware as
 * a plain node:http handler (no Express), and the bare Buffer handler mounted in Express (Express alone).
 * Loads by autocannon, and by wrk when installed.
 */
const fs = require('node:fs');
const path = require('node:path');
const { Stream } = require('./lib/media');
const t = require('./lib/tools');

const SIZES = [
  { label: '25 KB', bytes: 25_000, bitrate: 100_000 },
  { label: '100 KB', bytes: 100_000, bitrate: 400_000 },
  { label: '500 KB', bytes: 500_000, bitrate: 2_000_000 },
];

async function run(log, o = {}) {
  const root = t.tmpDir('fragments');
  fs.writeFileSync(path.join(root, 'frag.isml'), t.isml());
  const smooth = await t.startServer('smooth', { root });
  // Real ingest through the middleware: one POST, three video bitrates of the three sizes plus audio.
  const stream = new Stream([
    ...SIZES.map((s) => ({ kind: 'video', bitrate: s.bitrate, bytes: s.bytes })),
    { kind: 'audio', bitrate: 100_000 },
  ]);
  const push = t.openPush(`${smooth.url}/live/frag.isml/Streams(bench)`);
  await push.write(stream.header);
  for (let i = 0; i < 4; i++) await push.write(stream.slot(i));
  const files = t.tmpDir('fragment-files');
  const paths = [];
  for (const s of SIZES) {
    const url = `${smooth.url}/live/frag.isml/QualityLevels(${s.bitrate})/Fragments(video=0)`;
    let r;
    for (let i = 0; i < 100; i++) {
      r = await t.get(url);
      if (r.status === 200) break;
      await t.sleep(20);
    }
    if (r.status !== 200) throw new Error(`fragment GET answered ${r.status}`);
    const name = `f${s.bytes}.mp4`;
    fs.writeFileSync(path.join(files, name), r.body);
    paths.push({
      ...s,
      url: `/live/frag.isml/QualityLevels(${s.bitrate})/Fragments(video=0)`,
      file: `/${name}`,
      size: r.body.length,
    });
  }
  fs.chmodSync(files, 0o755);
  const stat = await t.startServer('static', { dir: files });
  const bare = await t.startServer('bare', { dir: files });
  const expressBare = await t.startServer('express-bare', { dir: files });
  const nginx = await t.startNginx(files);
  const rows = [];
  try {
    for (const p of paths) {
      log(`  fragment ${p.label} (${p.size} bytes)`);
      const targets = [
        ['liveSmooth', smooth.url + p.url],
        ['liveSmooth (node:http)', smooth.rawUrl + p.url.slice('/live'.length)],
        ['express.static', stat.url + p.file],
        ['node:http', bare.url + p.file],
        ['Express + bare handler', expressBare.url + p.file],
        ...(nginx ? [['nginx', nginx.url + p.file]] : []),
      ];
      const row = { label: p.label, size: p.size };
      row.ac = await t.compare(targets, t.cannon, o.rounds);
      for (const [name, r] of Object.entries(row.ac)) {
        if (r.non2xx || r.errors) throw new Error(`${name}: ${r.non2xx} non-2xx, ${r.errors} errors under load`);
      }
      row.wrk = t.WRK ? await t.compare(targets, t.wrk, 1) : {};
      rows.push(row);
    }
  } finally {
    push.req.destroy();
    await Promise.all([smooth.stop(), stat.stop(), bare.stop(), expressBare.stop(), nginx && nginx.stop()]);
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(files, { recursive: true, force: true });
  }
  return { rows, nginx: nginx ? nginx.version : undefined };
}

module.exports = { run };
