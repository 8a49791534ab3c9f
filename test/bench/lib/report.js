'use strict';
/**
 * Turns benchmark results into Markdown tables (printed by `npm run bench` and written to
 * test/bench/results.md). Each target of issue 5 is shown with the measured value; nothing fails.
 */

const int = (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const fix = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : '–');
const mb = (bytes) => (Number.isFinite(bytes) ? (bytes / 1e6).toFixed(0) : '–');
const ratio = (a, b) => (a && b && b.rps ? a.rps / b.rps : NaN);
const mark = (value, ok) => (Number.isFinite(value) ? `${value.toFixed(2)}× ${ok(value) ? '✓' : '✗'}` : '–');
const ms = (q) => (q ? `${fix(q.p50, 2)} / ${fix(q.p99, 2)}` : '–');

function row(cells) {
  return `| ${cells.join(' | ')} |`;
}

function tableOf(head, rows) {
  return [row(head), row(head.map(() => '---')), ...rows.map(row)].join('\n');
}

function fragments(s, env) {
  const out = [];
  out.push(`### 1. Fragment GET\n`);
  out.push(
    `autocannon ${env.autocannon}, ${env.connections} keep-alive connections, median of ${env.rounds} interleaved rounds of ${env.seconds} s per server` +
      `${env.wrk ? `; ${env.wrk} (1 thread, same connections, one round of ${Math.max(1, Math.round(env.seconds / 2))} s) as a cross-check` : ''}. ` +
      'MB/s counts response bodies. "liveSmooth" is the middleware mounted in Express 5 as the README shows; ' +
      '"(node:http)" is the same middleware as the whole `http.createServer` callback, and "Express + bare handler" is the ' +
      "node:http Buffer handler mounted in Express 5: together they separate Express's cost from ours.\n",
  );
  const names = [
    'liveSmooth',
    'liveSmooth (node:http)',
    'express.static',
    'node:http',
    'Express + bare handler',
    'nginx',
  ];
  const present = names.filter((n) => s.rows.some((r) => r.ac[n]));
  const head = [
    'fragment',
    ...present.map((n) => `${n} req/s (MB/s)`),
    'liveSmooth ÷ express.static (target ≥ 1.0)',
    'liveSmooth ÷ node:http (target ≥ 0.8)',
    'liveSmooth ÷ Express + bare handler',
    'liveSmooth (node:http) ÷ node:http',
  ];
  const plain = (v) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '–');
  const rows = s.rows.map((r) => [
    `${r.label} (${int(r.size)} B)`,
    ...present.map((n) => (r.ac[n] ? `${int(r.ac[n].rps)} (${int((r.ac[n].rps * r.size) / 1e6)})` : '–')),
    mark(ratio(r.ac.liveSmooth, r.ac['express.static']), (v) => v >= 1.0),
    mark(ratio(r.ac.liveSmooth, r.ac['node:http']), (v) => v >= 0.8),
    plain(ratio(r.ac.liveSmooth, r.ac['Express + bare handler'])),
    plain(ratio(r.ac['liveSmooth (node:http)'], r.ac['node:http'])),
  ]);
  out.push(tableOf(head, rows));
  if (s.rows.some((r) => Object.keys(r.wrk || {}).length > 0)) {
    out.push(`\nSame servers under wrk:\n`);
    const wrows = s.rows.map((r) => [
      r.label,
      ...present.map((n) => (r.wrk[n] ? `${int(r.wrk[n].rps)} (${int((r.wrk[n].rps * r.size) / 1e6)})` : '–')),
      mark(ratio(r.wrk.liveSmooth, r.wrk['express.static']), (v) => v >= 1.0),
      mark(ratio(r.wrk.liveSmooth, r.wrk['node:http']), (v) => v >= 0.8),
      plain(ratio(r.wrk.liveSmooth, r.wrk['Express + bare handler'])),
      plain(ratio(r.wrk['liveSmooth (node:http)'], r.wrk['node:http'])),
    ]);
    out.push(tableOf(head, wrows));
  }
  return out.join('\n');
}

function manifest(s, env) {
  const out = [`### 2. Manifest GET\n`];
  out.push(
    '3 video bitrates + audio, 2 s fragments, DVR window filled through a real ingest POST. Static servers serve the ' +
      'same bytes from a file. Rebuild = time for `point.manifest()` to make the manifest current after a new fragment ' +
      `(in the server, p50 / p99 over ${s.rows[0] ? s.rows[0].renders.length : 0} fragments). Same load settings as above.\n`,
  );
  const names = ['liveSmooth', 'express.static', 'nginx'].filter((n) => s.rows.some((r) => r.ac && r.ac[n]));
  const head = [
    'DVR window',
    '`c` listed',
    'bytes',
    ...names.map((n) => `${n} req/s`),
    'liveSmooth ÷ express.static (target ≥ 0.8 at 2 h)',
    ...(env.wrk ? ['same under wrk'] : []),
    'rebuild ms p50 / p99',
  ];
  const rows = s.rows.map((r) => {
    const rb = [...r.renders].sort((a, b) => a - b);
    const p = (x) => rb[Math.min(rb.length - 1, Math.max(0, Math.ceil((x / 100) * rb.length) - 1))];
    return [
      r.label,
      int(r.chunks),
      int(r.size),
      ...names.map((n) => (r.ac && r.ac[n] ? int(r.ac[n].rps) : '–')),
      mark(ratio(r.ac.liveSmooth, r.ac['express.static']), (v) => v >= 0.8),
      ...(env.wrk ? [mark(ratio(r.wrk.liveSmooth, r.wrk['express.static']), (v) => v >= 0.8)] : []),
      `${fix(p(50), 2)} / ${fix(p(99), 2)}`,
    ];
  });
  out.push(tableOf(head, rows));
  return out.join('\n');
}

function ingest(s) {
  const out = [`### 4. Ingest\n`];
  out.push(
    'Parse-and-store: a captured ffmpeg push looped (times rewritten) to ~50 MB and fed in 64 KiB chunks through an ' +
      'ingest session of a real publishing point (parser, the one copy of the samples into the memory store, timelines) on one core, no HTTP; ' +
      'median of 15 rounds after 2 warm-up rounds.\n',
  );
  out.push(
    tableOf(
      ['captured push', 'MB/s median (target ≥ 500)', 'best round', 'fragments per round', 'mean fragment'],
      s.parse.map((p) => [
        p.label,
        mark(p.mbps, (v) => v >= 500).replace('×', ''),
        int(p.best),
        int(p.fragments),
        `${int(p.perFragment)} B`,
      ]),
    ),
  );
  const p = s.pushes;
  if (p) {
    out.push(
      `\n${p.pushes} concurrent live pushes, one publishing point and one chunked POST each, ${fix(p.mbitPerPush, 2)} Mbit/s each ` +
        `(whole 2 s slots written as the encoder finishes them, pushes staggered), for ${fix(p.seconds, 0)} s. Publication lag = ` +
        'time from a slot being handed to the socket to the server publishing the fragments it releases (lookahead 2).\n',
    );
    out.push(
      tableOf(
        [
          'fragments pushed',
          'published',
          'dropped',
          'publication lag ms p50 / p99 / max',
          'server event-loop delay ms p99 / max',
          'sender behind schedule ms max',
        ],
        [
          [
            int(p.expected),
            int(p.published),
            int(p.dropped),
            `${fix(p.lag.p50, 2)} / ${fix(p.lag.p99, 2)} / ${fix(p.lag.max, 2)}`,
            `${fix(p.loop.p99)} / ${fix(p.loop.max)}`,
            fix(p.lateness.max),
          ],
        ],
      ),
    );
  }
  return out.join('\n');
}

function latency(s) {
  const out = [`### 5. Ingest → available\n`];
  out.push(
    'From handing the last KiB of the fragment that completes the lookahead (lookahead 2, 3 Mbit/s ladder) to the ingest ' +
      'socket, until a `Fragments` GET of the held fragment answers 200 (served) and the manifest lists it (listed), both ' +
      'polled back to back over keep-alive HTTP from another process, so it includes at least one HTTP round trip. ' +
      'A fragment is served as soon as it arrives (it was already before its lookahead completed), so "served" is one round trip; ' +
      '"listed" is what waits for the lookahead. ' +
      '"Published in the server" is when the server stored the fragment that completes its lookahead (its `fragment` event), on the same clock.\n',
  );
  out.push(
    tableOf(
      [
        'DVR window',
        'samples',
        'published in the server ms p50 / p99',
        'served ms p50 / p99',
        'listed ms p50 / p99',
        'served and listed ms p50 / p99',
        'target p99 ≤ 5 ms',
      ],
      s.rows.map((r) => [
        r.label,
        int(r.samples),
        ms(r.published),
        ms(r.served),
        ms(r.listed),
        ms(r.both),
        r.both.p99 <= 5 ? '✓' : '✗',
      ]),
    ),
  );
  return out.join('\n');
}

function memory(s) {
  const out = [`### 6. Memory\n`];
  out.push(
    `${s.mediaMinutes} min of 3 Mbit/s media (3 video + audio, 2 s fragments) pushed over HTTP ${fix(s.speed, 0)}× faster than real time ` +
      `into a point with a ${s.windowMinutes} min DVR window. Base = the server's RSS before ingest; ratio = (RSS − base) ÷ bytes held. ` +
      `Steady state = samples from minute ${s.steady.from} on (window full).\n`,
  );
  out.push(
    tableOf(
      [
        'held MB',
        'base MB',
        'RSS MB',
        '(RSS − base) ÷ held (target ≤ 1.15)',
        'after a forced GC',
        'steady-state RSS MB min – max',
        'steady-state trend MB per hour',
      ],
      [
        [
          mb(s.held),
          mb(s.base),
          mb(s.rss),
          mark(s.ratio, (v) => v <= 1.15),
          fix(s.ratioAfterGc, 3),
          `${mb(s.steady.min)} – ${mb(s.steady.max)}`,
          fix(s.steady.slope, 0),
        ],
      ],
    ),
  );
  const d = s.disk;
  if (d) {
    out.push(
      `\nThe store on disk (\`diskStore\`): ${d.mediaMinutes} min of the same media pushed ${fix(d.speed, 0)}× faster than real time into a point ` +
        `that keeps the whole event, so the bytes held on disk grow past 2 GB. RSS is sampled every simulated minute from minute ` +
        `${d.steady.from}; flat means it does not follow the held bytes.\n`,
    );
    out.push(
      tableOf(
        ['held on disk MB', 'base MB', 'RSS MB at the end', 'RSS MB min – max', 'RSS trend MB per hour of media', 'held grew MB', 'fragments lost'],
        [
          [
            mb(d.held),
            mb(d.base),
            mb(d.rss),
            `${mb(d.steady.min)} – ${mb(d.steady.max)}`,
            fix(d.steady.slope, 0),
            mb(d.held - (d.samples[0] ? d.samples[0].held : 0)),
            `${d.lost} ${d.lost === 0 ? '✓' : '✗'}`,
          ],
        ],
      ),
    );
  }
  return out.join('\n');
}

function viewers(s) {
  const out = [`### 7. Viewers\n`];
  out.push(
    `${int(s.viewers)} simulated players in another process, one keep-alive connection each, joining over 5 s and following the live edge for ${s.seconds} s ` +
      'while the encoder pushes 3 Mbit/s in real time: half poll the manifest every 2 s, half poll `FragmentInfo`; each fetches its video bitrate ' +
      '(spread over the ladder) and the audio. Latency = request sent to response fully read, measured by the players (so it includes their own ' +
      'event-loop lag, shown too). Two runs: the newest fragment answered at once, and held until the next one arrives (the default `edgeWait`), ' +
      'which holds the `FragmentInfo` pollers at the live edge and releases them together when a fragment arrives.\n',
  );
  out.push(
    tableOf(
      [
        'newest fragment',
        'req/s',
        'MB/s',
        'manifest ms p50 / p99',
        'fragment ms p50 / p99',
        'FragmentInfo ms p50 / p99',
        'errors',
        'ingest fragments dropped',
        'server loop delay ms p99 / max',
        "players' loop lag ms p99",
      ],
      s.rows.map((r) => [
        r.label,
        int(r.rps),
        int(r.mbps),
        ms(r.manifest),
        ms(r.fragment),
        ms(r.info),
        `${int(r.errors)}${r.errors ? ' ✗' : ' ✓'}`,
        `${int(r.dropped)} of ${int(r.pushed)}${r.dropped ? ' ✗' : ' ✓'}`,
        `${fix(r.serverLoop.p99)} / ${fix(r.serverLoop.max)}`,
        fix(r.viewerLoop.p99),
      ]),
    ),
  );
  return out.join('\n');
}

function outputs(s) {
  const out = [`### 3. DASH and HLS beside Smooth\n`];
  out.push(
    'One point, 30 min DVR window, 3 video bitrates + audio, 2 s fragments, filled through a real ingest POST. Each document and ' +
      'segment is fetched once and the same bytes are served from a file by express.static and nginx. The Smooth fragment and the ' +
      'CMAF segment carry the same stored samples (1.8 Mbit/s, ~100 KB); DASH and HLS share the segment URL. Same load settings as above.\n',
  );
  const names = ['liveSmooth', 'express.static', 'nginx'].filter((n) => s.rows.some((r) => r.ac && r.ac[n]));
  const head = ['resource', 'bytes', ...names.map((n) => `${n} req/s`), 'liveSmooth ÷ express.static', 'liveSmooth ÷ nginx'];
  const plain = (v) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '–');
  const rows = s.rows.map((r) => [
    r.label,
    int(r.size),
    ...names.map((n) => (r.ac && r.ac[n] ? int(r.ac[n].rps) : '–')),
    plain(ratio(r.ac.liveSmooth, r.ac['express.static'])),
    plain(ratio(r.ac.liveSmooth, r.ac.nginx)),
  ]);
  out.push(tableOf(head, rows));
  return out.join('\n');
}

function archive(s) {
  const out = [`### 8. Live archives\n`];
  out.push(
    `${s.pushes} concurrent pushes, one point and one chunked POST each, ${s.slots} slots of ${s.slotSeconds} s of the synthetic ` +
      `${fix(s.mbitPerPush, 2)} Mbit/s ladder (3 H.264 bitrates + AAC; ${fix(s.bytesPerPush / 1e6)} MB per push), into points whose ` +
      '`publishing` lists `Archives` and, in the same run, into points without, each run a fresh server and root. ' +
      `Unpaced = as fast as the server takes them, median of ${s.archive.rounds.length} interleaved runs (by MB/s; all rounds shown), ` +
      `the archives with \`archiveQueueBytes\` ${fix(s.archive.queueMax / 2 ** 20, 0)} MiB (more than a run) so that they take every fragment ` +
      'however far the disk falls behind; one more unpaced run with the default queue (64 MiB) shows what a disk that cannot keep up ' +
      'gets (`ERR_ARCHIVE_BEHIND` stops the archive, not the ingest). ' +
      `${s.speed}× = ${s.speed}× real time with the pushes' slots staggered, one run each. Ingest MB/s = bytes pushed ÷ time until the ` +
      'last fragment was stored. Lag = from a slot handed to the socket to its last fragment stored (the publication it releases, ' +
      'as in the ingest section; unpaced, it includes the socket buffers). Archived = `archiver.list()` fragments, compared per point with ' +
      "the fragments stored (`fragment` events). Disk = the archives' bytes ÷ time until the last file was closed (mfra written, " +
      "`fdatasync` done); write_bytes = the server process's `/proc/self/io` over the run. Queue peak = `origin.archiver.queue.pending`, " +
      'sampled at each stored fragment.\n',
  );
  const line = (label, x, archived) => [
    label,
    `${fix(x.mbps, 0)}${x.rounds ? ` (${x.rounds.join(', ')})` : ''}`,
    `${fix(x.lag.p50)} / ${fix(x.lag.p99)} / ${fix(x.lag.max)}`,
    int(x.stored),
    archived ? `${int(x.archived)} ${x.archived === x.stored && x.mismatched === 0 ? '✓' : '✗'}` : '–',
    archived ? `${x.failed.length} ${x.failed.length === 0 ? '✓' : `✗ ${[...new Set(x.failed.map((f) => f.code))].join(', ')}`}` : '–',
    archived ? `${mb(x.archiveBytes)} in ${fix(x.archiveSeconds)} s (${fix(x.archiveMBps, 0)} MB/s)` : '–',
    Number.isFinite(x.writeBytes) ? mb(x.writeBytes) : '–',
    archived ? `${fix(x.peak / 2 ** 20)} of ${fix(x.queueMax / 2 ** 20, 0)}` : '–',
    `${fix(x.loop.p99)} / ${fix(x.loop.max)}`,
    mb(x.rss),
  ];
  const rows = [line('unpaced, no archive', s.plain, false), line('unpaced, Archives', s.archive, true)];
  if (s.defaultQueue) rows.push(line('unpaced, Archives, default queue', s.defaultQueue, true));
  if (s.pacedPlain) rows.push(line(`${s.speed}×, no archive`, s.pacedPlain, false));
  if (s.pacedArchive) rows.push(line(`${s.speed}×, Archives`, s.pacedArchive, true));
  out.push(
    tableOf(
      [
        'pushes',
        'ingest MB/s (rounds)',
        'lag ms p50 / p99 / max',
        'fragments stored',
        'archived',
        'failed archives',
        'archive MB on disk (MB/s)',
        'server write_bytes MB',
        'queue peak MiB of max',
        'server loop delay ms p99 / max',
        'RSS MB',
      ],
      rows,
    ),
  );
  out.push(
    `\nIngest with Archives ÷ without, unpaced: ${fix(s.archive.mbps / s.plain.mbps, 2)}×; every fragment stored was archived in every run ` +
      `but the default-queue one: ${s.allArchived ? 'yes ✓' : 'no ✗'}.`,
  );
  return out.join('\n');
}

function ondemand(s, env) {
  const out = [`### 9. On-demand presentations\n`];
  out.push(
    `${s.presentations} live archives (3 video bitrates of 100, 50 and 25 KB fragments + audio, 2 s, 50 s each) served on demand by the ` +
      `same handler (\`/live/<archive>/<name>.ism/…\`), through a pool of ${s.maxOpenFiles} file handles for their ${s.mediaFiles} media files. ` +
      'Each response is fetched once and the same bytes are served from files by express.static and nginx. The cold row requests ' +
      'every fragment of every archive once per pass, in one shuffled order, so most requests need a handle the pool closed ' +
      "(no response is cached by the handler; the OS page cache is warm for all servers). Same load settings as above" +
      `${env.wrk ? '; the wrk rows walk the same list with a Lua script' : ''}.\n`,
  );
  const names = ['liveSmooth', 'express.static', 'nginx'].filter((n) => s.rows.some((r) => r.ac && r.ac[n]));
  const plain = (v) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '–');
  const cell = (x, r) => (x ? `${int(x.rps)} (${int((x.rps * r.size) / 1e6)})` : '–');
  const head = [
    'resource',
    'bytes',
    ...names.map((n) => `${n} req/s (MB/s)`),
    'liveSmooth ÷ express.static',
    'liveSmooth ÷ nginx',
    ...(env.wrk ? ['wrk: liveSmooth ÷ express.static', 'wrk: liveSmooth ÷ nginx'] : []),
  ];
  const rows = s.rows.map((r) => [
    r.label,
    int(r.size),
    ...names.map((n) => cell(r.ac[n], r)),
    plain(ratio(r.ac.liveSmooth, r.ac['express.static'])),
    plain(ratio(r.ac.liveSmooth, r.ac.nginx)),
    ...(env.wrk
      ? [plain(ratio(r.wrk.liveSmooth, r.wrk['express.static'])), plain(ratio(r.wrk.liveSmooth, r.wrk.nginx))]
      : []),
  ]);
  out.push(tableOf(head, rows));
  if (s.rows.some((r) => Object.keys(r.wrk || {}).length > 0)) {
    out.push(`\nSame servers under wrk, req/s (MB/s):\n`);
    out.push(tableOf(['resource', ...names], s.rows.map((r) => [r.label, ...names.map((n) => cell(r.wrk[n], r))])));
  }
  return out.join('\n');
}

function edge(s, env) {
  const out = [`### 10. Edge caches\n`];
  out.push(
    'One live point (3 video bitrates + audio, 2 s fragments, a 2 min window filled through a real ingest POST, the POST kept open) ' +
      'behind `liveSmooth.edge` (Express 5 at `/live` as the README mounts it, and the same handler as the whole node:http callback), ' +
      'nginx (`proxy_cache`, one worker) and Varnish (its default thread pools), both from the configurations in examples/edge/. ' +
      'Every URL is requested twice through each edge before the runs, so all are served from the caches; the Smooth manifest ' +
      '(max-age=1) is refreshed about once a second by each edge: "origin requests" counts what reached the origin during each ' +
      "edge's runs (autocannon and wrk together). " +
      '"origin (liveSmooth)" is the origin itself, for scale. Same load settings as above' +
      `${env.wrk ? '; the wrk rows walk the fragment list with a Lua script' : ''}.\n`,
  );
  if (!s.edgeInBuild) out.push('`liveSmooth.edge` is not in the build under test: its columns are empty.\n');
  const names = ['liveSmooth.edge', 'liveSmooth.edge (node:http)', 'nginx', 'varnish', 'origin (liveSmooth)'].filter((n) =>
    s.rates.some((r) => r.ac && r.ac[n]),
  );
  const plain = (v) => (Number.isFinite(v) ? `${v.toFixed(2)}×` : '–');
  const cell = (x, r) => (x ? `${int(x.rps)} (${int((x.rps * r.size) / 1e6)})` : '–');
  const edges = names.filter((n) => n !== 'origin (liveSmooth)');
  const ratios = (x) => [
    plain(ratio(x['liveSmooth.edge'], x.nginx)),
    plain(ratio(x['liveSmooth.edge (node:http)'], x.nginx)),
    plain(ratio(x['liveSmooth.edge (node:http)'], x.varnish)),
  ];
  const ratioHead = ['liveSmooth.edge ÷ nginx', '(node:http) ÷ nginx', '(node:http) ÷ varnish'];
  out.push(
    tableOf(
      ['resource', 'bytes', ...names.map((n) => `${n} req/s (MB/s)`), ...ratioHead, `origin requests during the runs of ${edges.join(' / ')}`],
      s.rates.map((r) => [
        r.label,
        int(r.size),
        ...names.map((n) => cell(r.ac[n], r)),
        ...ratios(r.ac),
        edges.map((n) => int(r.originRequests[n])).join(' / '),
      ]),
    ),
  );
  if (s.rates.some((r) => Object.keys(r.wrk || {}).length > 0)) {
    out.push(`\nSame servers under wrk, req/s (MB/s):\n`);
    out.push(tableOf(['resource', ...names, ...ratioHead], s.rates.map((r) => [r.label, ...names.map((n) => cell(r.wrk[n], r)), ...ratios(r.wrk)])));
  }
  out.push(`\nWhat each edge said it did on the second request (X-Cache): ${s.rates
    .map((r) => `${r.label}: ${names.filter((n) => r.cache[n] && n !== 'origin (liveSmooth)').map((n) => `${n} ${r.cache[n]}`).join('; ')}`)
    .join(' / ')}.\n`);
  const a = s.audience;
  out.push(
    `The edge test's audience: ${a.players} simulated players per edge (${a.mix.map((m) => `${m.count} ${m.kind}`).join(', ')}; ` +
      'half of the players of each format switch bitrate) for ' +
      `${a.seconds} s through every edge at once, in front of one origin (the build under test, one port per edge) fed in real time by the ` +
      'simulated encoder looping examples/media/sample.ismv (3 H.264 bitrates + AAC, 2 s fragments). Players → origin = requests the ' +
      'players sent through the edge → requests the edge sent to the origin. Complete = fragments and segments answered `immutable`; ' +
      'growing = Smooth fragments whose tfrf could still grow (max-age half a fragment); not yet = 412/404 answers to the probers\' ' +
      'early requests, which an edge may keep 1 s at most.\n',
  );
  const m = (x, side) => ['manifest', 'mpd', 'hls-master', 'hls-media'].reduce((n, k) => n + x.byResource[k][side], 0);
  const f = (x, side) => x.byResource.fragment[side] + x.byResource.segment[side];
  out.push(
    tableOf(
      [
        'edge',
        'requests players → origin',
        'manifests and playlists players → origin',
        'origin manifest answers kept (max-age) / no-cache',
        'fragments and segments players → origin',
        'complete at the origin (URLs; most for one URL)',
        'growing at the origin',
        'not yet at the origin / to the probers',
        'init segments players → origin',
        'DASH clock players → origin',
        'ingest POST',
      ],
      s.summaries.map((x) => [
        x.edge,
        `${int(x.players)} → ${int(x.origin)}`,
        `${int(m(x, 'players'))} → ${int(m(x, 'origin'))}`,
        `${int(x.manifestsKept)} / ${int(x.manifestsUncacheable)}`,
        `${int(f(x, 'players'))} → ${int(f(x, 'origin'))}`,
        `${int(x.complete)} (${int(x.completeUrls)}; ${x.mostPerUrl}${x.mostPerUrl <= 1 ? ' ✓' : ' ✗'})`,
        int(x.growing),
        `${int(x.notYet)} / ${int(x.probeNotYet)}`,
        `${int(x.byResource.init.players)} → ${int(x.byResource.init.origin)}`,
        `${int(x.byResource.time.players)} → ${int(x.byResource.time.origin)}`,
        String(x.ingest),
      ]),
    ),
  );
  out.push(
    `\nOrigin manifest and playlist answers by Cache-Control: ${Object.entries(s.lifetimes)
      .map(([k, v]) => `\`${k}\` ×${int(v)}`)
      .join(', ')}.${s.failed.length ? ` Edges that did not start: ${s.failed.join('; ')}.` : ''}`,
  );
  return out.join('\n');
}

const RENDER = { fragments, manifest, outputs, ingest, latency, memory, viewers, archive, ondemand, edge };

function table(results) {
  const parts = [];
  for (const [name, s] of Object.entries(results.sections)) parts.push(RENDER[name](s, results.env));
  for (const [name, err] of Object.entries(results.errors)) parts.push(`### ${name}: failed\n\n\`\`\`\n${err}\n\`\`\``);
  return parts.join('\n\n');
}

function markdown(results) {
  const e = results.env;
  const head = [
    '# live-smooth benchmark results',
    '',
    'Written by `npm run bench` (test/bench/run.js). Numbers are from one run on the machine below; the servers under test and the load',
    'generators share its cores, so read ratios measured side by side rather than absolute rates. No timing is asserted anywhere.',
    '',
    `- date: ${e.date}`,
    `- machine: ${e.cpu}, ${e.cores} cores, ${e.memory}; ${e.os}`,
    `- Node.js ${e.node}; autocannon ${e.autocannon}; ${e.wrk || 'wrk not installed'}; ${e.nginx || 'nginx not installed'}; ${e.ffmpeg || 'ffmpeg not installed'}`,
    `- run time ${Math.round(results.seconds)} s; 1-min load average at the start of each section: ${Object.entries(
      results.sections,
    )
      .map(([n, s]) => `${n} ${s.load[0].toFixed(1)}`)
      .join(', ')}`,
    '',
  ];
  return `${head.join('\n')}\n${table(results)}\n`;
}

module.exports = { markdown, table };
