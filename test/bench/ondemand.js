'use strict';
/**
 * 9. On-demand presentations (`.ism`): GET rates of a ~100 KB fragment and of the Manifest of a live
 * archive served on demand by the same handler, and of 2,000 different fragments of 20 archives requested
 * in a shuffled order (80 media files through a pool of 32 handles), each against express.static and
 * nginx serving the very same bytes from files.
 */
const fs = require('node:fs');
const path = require('node:path');
const { Stream, MFRA } = require('./lib/media');
const t = require('./lib/tools');

const PRESENTATIONS = 20;
const SLOTS = 25;
/** The pool of file handles of the on-demand server: fewer than the 80 media files, so the cold run churns it. */
const MAX_OPEN_FILES = 32;
const TRACKS = [
  { kind: 'video', bitrate: 400_000, bytes: 100_000 },
  { kind: 'video', bitrate: 200_000, bytes: 50_000 },
  { kind: 'video', bitrate: 100_000, bytes: 25_000 },
  { kind: 'audio', bitrate: 100_000 },
];
const TICKS_PER_SLOT = 20_000_000n; // 2 s

async function run(log, o = {}) {
  const root = t.tmpDir('ondemand');
  const files = t.tmpDir('ondemand-files');
  const stopping = [];
  try {
    const folders = await archive(log, root);
    const smooth = await t.startServer('smooth', { root, options: { stateFile: false, maxOpenFiles: MAX_OPEN_FILES } });
    stopping.push(smooth);
    const url = (p, rest) => `/live/${folders[p]}/v${p}.ism/${rest}`;
    const fragment = (p, i, track) =>
      url(p, `QualityLevels(${track.bitrate})/Fragments(${track.kind}=${BigInt(i) * TICKS_PER_SLOT})`);
    const rows = [
      { label: 'Manifest (.ismc)', url: url(0, 'Manifest'), file: '/manifest.xml' },
      { label: 'fragment, 100 KB video', url: fragment(0, 10, TRACKS[0]), file: '/fragment.mp4' },
    ];
    for (const row of rows) {
      const r = await t.get(smooth.url + row.url);
      if (r.status !== 200) throw new Error(`${row.label} answered ${r.status}: ${r.body.toString().slice(0, 200)}`);
      fs.writeFileSync(path.join(files, row.file), r.body);
      row.size = r.body.length;
    }
    // The cold run: every fragment of every presentation once, in one shuffled order, saved for the file servers.
    const all = [];
    for (let p = 0; p < PRESENTATIONS; p++)
      for (let i = 0; i < SLOTS; i++) for (const track of TRACKS) all.push(fragment(p, i, track));
    shuffle(all);
    fs.mkdirSync(path.join(files, 'c'));
    let coldBytes = 0;
    const coldFiles = [];
    for (const [n, u] of all.entries()) {
      const r = await t.get(smooth.url + u);
      if (r.status !== 200) throw new Error(`${u} answered ${r.status}`);
      fs.writeFileSync(path.join(files, 'c', `${n}.mp4`), r.body);
      coldFiles.push(`/c/${n}.mp4`);
      coldBytes += r.body.length;
    }
    fs.chmodSync(files, 0o755);
    fs.chmodSync(path.join(files, 'c'), 0o755);
    const stat = await t.startServer('static', { dir: files });
    stopping.push(stat);
    const nginx = await t.startNginx(files);
    if (nginx) stopping.push(nginx);
    for (const row of rows) {
      const targets = [
        ['liveSmooth', smooth.url + row.url],
        ['express.static', stat.url + row.file],
        ...(nginx ? [['nginx', nginx.url + row.file]] : []),
      ];
      row.ac = await t.compare(targets, t.cannon, o.rounds);
      check(row);
      row.wrk = t.WRK ? await t.compare(targets, t.wrk, 1) : {};
      check(row, 'wrk');
      log(`  ${row.label} (${row.size} bytes): ${summary(row)}`);
    }
    const cold = {
      label: `${all.length.toLocaleString('en-US')} fragments, shuffled`,
      size: coldBytes / all.length,
      count: all.length,
    };
    const paths = new Map([
      [smooth.url, all],
      [stat.url, coldFiles],
      ...(nginx ? [[nginx.url, coldFiles]] : []),
    ]);
    const scripts = new Map();
    for (const [base, list] of paths) {
      const script = path.join(files, `walk-${scripts.size}.lua`);
      fs.writeFileSync(script, walkScript(list));
      scripts.set(base, script);
    }
    const targets = [
      ['liveSmooth', smooth.url],
      ['express.static', stat.url],
      ...(nginx ? [['nginx', nginx.url]] : []),
    ];
    const coldCannon = (u, x) => t.cannon(u, { ...x, paths: paths.get(u) });
    for (const [, u] of targets) await coldCannon(u, { seconds: 1, warm: false });
    cold.ac = await t.compare(targets, coldCannon, o.rounds);
    check(cold);
    cold.wrk = t.WRK ? await t.compare(targets, (u, x) => t.wrk(u, { ...x, script: scripts.get(u) }), 1) : {};
    check(cold, 'wrk');
    log(`  ${cold.label} (${Math.round(cold.size)} bytes mean): ${summary(cold)}`);
    rows.push(cold);
    return {
      rows,
      presentations: PRESENTATIONS,
      mediaFiles: PRESENTATIONS * TRACKS.length,
      maxOpenFiles: MAX_OPEN_FILES,
      nginx: nginx ? nginx.version : undefined,
    };
  } finally {
    await Promise.all(stopping.map((s) => s.stop()));
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(files, { recursive: true, force: true });
  }
}

/**
 * Makes the presentations: 20 points with `Archives`, each pushed 25 slots (50 s) of 3 video bitrates
 * (100, 50 and 25 KB fragments) + audio, then ended. Returns each archive's folder, relative to the root.
 */
async function archive(log, root) {
  for (let p = 0; p < PRESENTATIONS; p++)
    fs.writeFileSync(path.join(root, `v${p}.isml`), t.isml({ publishing: 'Fragments;Streams;Archives' }));
  const server = await t.startServer('smooth', { root, options: { stateFile: false } });
  try {
    const stream = new Stream(TRACKS, 2);
    const slots = [];
    for (let i = 0; i < SLOTS; i++) slots.push(stream.slot(i));
    await Promise.all(
      Array.from({ length: PRESENTATIONS }, async (_, p) => {
        const push = t.openPush(`${server.url}/live/v${p}.isml/Streams(enc${p})`);
        await push.write(stream.header);
        for (const s of slots) await push.write(s);
        const status = await push.end(MFRA);
        if (status !== 200) throw new Error(`push v${p} answered ${status}`);
      }),
    );
    const end = Date.now() + 30_000;
    let a;
    for (;;) {
      a = await server.call('archives');
      if (a.list.length >= PRESENTATIONS && a.list.every((x) => x.state !== 'writing')) break;
      if (Date.now() > end) throw new Error('the archives were not finished in 30 s');
      await t.sleep(20);
    }
    await server.call('archiveIdle');
    const folders = [];
    for (const x of a.list) {
      if (x.state !== 'finished' || x.fragments !== SLOTS * TRACKS.length) {
        throw new Error(`${x.point}: archive ${x.state}, ${x.fragments} fragments`);
      }
      folders[Number(/^v(\d+)\.isml$/.exec(x.point)[1])] = path.relative(root, x.folder).split(path.sep).join('/');
    }
    const bytes = a.list.reduce((s, x) => s + x.bytes, 0);
    log(
      `  ${PRESENTATIONS} archives of ${SLOTS * TRACKS.length} fragments (${(bytes / 1e6).toFixed(0)} MB) ` +
        `served on demand, maxOpenFiles ${MAX_OPEN_FILES}`,
    );
    return folders;
  } finally {
    await server.stop();
  }
}

function check(row, tool = 'ac') {
  for (const [name, r] of Object.entries(row[tool])) {
    if (r.non2xx || r.errors) throw new Error(`${row.label}, ${name} (${tool}): ${r.non2xx} non-2xx, ${r.errors} errors under load`);
  }
}

function summary(row) {
  const wrk = Object.entries(row.wrk || {});
  return (
    Object.entries(row.ac)
      .map(([name, r]) => `${name} ${Math.round(r.rps)} req/s`)
      .join(', ') + (wrk.length ? `; wrk ${wrk.map(([name, r]) => `${name} ${Math.round(r.rps)}`).join(', ')}` : '')
  );
}

/** A fixed shuffle (same order every run and for every server). */
function shuffle(list) {
  let seed = 12345;
  for (let i = list.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [list[i], list[j]] = [list[j], list[i]];
  }
}

/** A wrk script that requests `paths` in turn. */
function walkScript(paths) {
  return `local paths = {\n${paths.map((p) => `  ${JSON.stringify(p)},`).join('\n')}\n}
local i = 0
request = function()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
`;
}

module.exports = { run };
