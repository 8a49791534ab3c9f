/**
 * The sample player page: dash.js with its MSS module playing a Smooth Streaming manifest, showing the
 * quality level on screen, its bitrate and the buffer, with a selector to pin a level or go back to
 * automatic switching. Self-contained (inline CSS and script); the two dash.js bundles are loaded from
 * `dashjs/` next to the page, so it works under any mount path that ends with `/`.
 *
 * Test hooks: `window.__player` = `{ errors, playingAt, waiting, levels, rendered, pinned }`
 * (`levels`: `{ id, bandwidth, width, height }` per video level; `rendered`: the video levels shown, in
 * order); elements carry `data-testid` `video`, `manifest`, `status`, `quality`, `bitrate`, `buffer`,
 * `throughput` and the `<select data-testid="level">` (value `auto` or a level id).
 */

/** What the page is configured with. */
export interface PlayerPageConfig {
  /** Manifest URL played when the page URL has no `?src=`; relative to the page. */
  manifest: string;
  /** Page title. */
  title: string;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The page's HTML. The configuration is embedded as JSON with `<` escaped, so no value can end the
 * script element; the title is HTML-escaped.
 */
export function playerPage(config: PlayerPageConfig): string {
  const json = JSON.stringify(config).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
  return PAGE.replace('__TITLE__', escapeHtml(config.title)).replace('__CONFIG__', json);
}

// The page's script avoids template literals so that this file stays a plain string.
const PAGE = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>__TITLE__</title>
<style>
  :root { color-scheme: dark; --muted: #9aa4ae; --line: #2c333a; --accent: #60a5fa; }
  body { margin: 0; font: 15px/1.45 system-ui, sans-serif; background: #111417; color: #e6e9ec; }
  main { max-width: 980px; margin: 0 auto; padding: 1.25rem; }
  h1 { font-size: 1.2rem; font-weight: 600; margin: 0 0 .75rem; }
  video { width: 100%; aspect-ratio: 16 / 9; background: #000; display: block; border-radius: 6px; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1.25rem; margin: 1rem 0 0; }
  dt { color: var(--muted); }
  dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
  a { color: var(--accent); }
  select { font: inherit; padding: .15rem .4rem; background: #1b2025; color: inherit; border: 1px solid var(--line); border-radius: 4px; }
  .error { color: #f87171; }
</style>
<!-- dash.js 5: MSS support is a separate bundle, loaded after the main one. -->
<script src="dashjs/dash.all.min.js"></script>
<script src="dashjs/dash.mss.min.js"></script>
</head>
<body>
<main>
  <h1 id="title"></h1>
  <video id="video" data-testid="video" controls muted autoplay playsinline></video>
  <dl>
    <dt>Manifest</dt><dd><a id="manifest" data-testid="manifest"></a></dd>
    <dt>Status</dt><dd id="status" data-testid="status">loading</dd>
    <dt>Quality</dt><dd id="quality" data-testid="quality">–</dd>
    <dt>Bitrate</dt><dd id="bitrate" data-testid="bitrate">–</dd>
    <dt>Buffer</dt><dd id="buffer" data-testid="buffer">–</dd>
    <dt>Throughput</dt><dd id="throughput" data-testid="throughput">–</dd>
    <dt><label for="level">Level</label></dt>
    <dd><select id="level" data-testid="level"><option value="auto">Auto</option></select></dd>
  </dl>
</main>
<script>
(function () {
  'use strict';
  var config = __CONFIG__;
  var params = new URLSearchParams(location.search);
  var src = new URL(params.get('src') || config.manifest, location.href).href;
  var $ = function (id) { return document.getElementById(id); };
  var video = $('video');
  var state = (window.__player = { errors: [], playingAt: undefined, waiting: 0, levels: [], rendered: [], pinned: 'auto' });
  var shown; // the video level on screen

  $('title').textContent = config.title;
  $('manifest').textContent = src;
  $('manifest').href = src;

  function kbps(bps) { return Math.round(bps / 1000) + ' kbit/s'; }
  function label(level) { return kbps(level.bandwidth) + ', ' + level.width + '×' + level.height; }
  function status(text, isError) {
    $('status').textContent = text;
    $('status').className = isError ? 'error' : '';
  }
  function describe(e) {
    var err = e && e.error;
    if (!err) return String(e && e.type);
    return 'code ' + err.code + ': ' + err.message + (err.data && err.data.url ? ' (' + err.data.url + ')' : '');
  }

  if (!window.dashjs || !window.dashjs.MediaPlayer) {
    status('dash.js did not load', true);
    state.errors.push('dash.js did not load');
    return;
  }
  var events = dashjs.MediaPlayer.events;
  var player = dashjs.MediaPlayer().create();
  player.updateSettings({
    // The default clock source is an internet host; the origin's own timeline is all a live MSS stream needs.
    streaming: { utcSynchronization: { enabled: false } },
    debug: { logLevel: params.get('debug') ? dashjs.Debug.LOG_LEVEL_DEBUG : dashjs.Debug.LOG_LEVEL_WARNING },
  });
  player.on(events.ERROR, function (e) {
    var text = 'dash.js error ' + describe(e);
    state.errors.push(text);
    status(text, true);
  });
  player.on(events.PLAYBACK_ERROR, function (e) {
    var text = 'playback error ' + describe(e);
    state.errors.push(text);
    status(text, true);
  });
  player.on(events.STREAM_INITIALIZED, function () {
    var reps = player.getRepresentationsByType('video') || [];
    state.levels = reps.map(function (r) { return { id: String(r.id), bandwidth: r.bandwidth, width: r.width, height: r.height }; })
      .sort(function (a, b) { return a.bandwidth - b.bandwidth; });
    var select = $('level');
    while (select.options.length > 1) select.remove(1);
    state.levels.forEach(function (level) {
      var option = document.createElement('option');
      option.value = level.id;
      option.textContent = label(level);
      select.appendChild(option);
    });
  });
  player.on(events.QUALITY_CHANGE_RENDERED, function (e) {
    if (e.mediaType !== 'video' || !e.newRepresentation) return;
    var r = e.newRepresentation;
    shown = { id: String(r.id), bandwidth: r.bandwidth, width: r.width, height: r.height };
    state.rendered.push(shown);
    refresh();
  });
  video.addEventListener('playing', function () {
    if (state.playingAt === undefined) state.playingAt = performance.now();
    status(player.isDynamic() ? 'playing (live)' : 'playing');
  });
  video.addEventListener('waiting', function () { state.waiting++; status('buffering'); });
  video.addEventListener('error', function () {
    var e = video.error;
    var text = 'video element: ' + (e ? e.code + ' ' + e.message : 'unknown error');
    state.errors.push(text);
    status(text, true);
  });

  $('level').addEventListener('change', function () {
    var value = $('level').value;
    state.pinned = value;
    if (value === 'auto') {
      player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: true } } } });
    } else {
      player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: false } } } });
      // forceReplace: drop what is buffered at the other level so the choice shows at once.
      player.setRepresentationForTypeById('video', value, true);
    }
    refresh();
  });

  function refresh() {
    var level = shown;
    if (level) {
      var index = state.levels.findIndex(function (l) { return l.id === level.id; });
      $('quality').textContent = (index >= 0 ? 'level ' + (index + 1) + ' of ' + state.levels.length + ': ' : '') +
        level.width + '×' + level.height + (state.pinned === 'auto' ? ' (auto)' : ' (pinned)');
      $('bitrate').textContent = kbps(level.bandwidth);
    }
    var buffers = ['video', 'audio'].map(function (type) {
      var seconds = player.getBufferLength(type);
      return type + ' ' + (isFinite(seconds) ? seconds.toFixed(1) : '0.0') + ' s';
    });
    $('buffer').textContent = buffers.join(', ');
    var throughput = player.getAverageThroughput('video');
    if (throughput > 0) $('throughput').textContent = Math.round(throughput) + ' kbit/s';
  }
  setInterval(function () { if (player.isReady()) refresh(); }, 500);

  player.initialize(video, src, true);
})();
</script>
</body>
</html>
`;
