/**
 * The sample player page: a point's live stream as Smooth (dash.js with its MSS module), DASH (dash.js)
 * or HLS (hls.js, or the browser's own HLS), chosen with a selector or `?format=smooth|dash|hls`;
 * it shows the quality level on screen, its bitrate and the buffer, with a selector to pin a level or go
 * back to automatic switching. Self-contained (inline CSS and script); the dash.js bundles are loaded
 * from `dashjs/` and hls.js from `hlsjs/` next to the page, so it works under any mount path that ends
 * with `/`.
 *
 * Captions (a caption or subtitle track of the point) are shown over the video: dash.js renders TTML
 * into an overlay, hls.js through the video element's own text tracks; the text on screen is also
 * shown in the page's Captions line.
 *
 * Test hooks: `window.__player` = `{ errors, playingAt, waiting, levels, rendered, pinned, format,
 * captions }` (`levels`: `{ id, bandwidth, width, height }` per video level; `rendered`: the video levels
 * shown, in order; `captions`: the last 100 caption texts shown, `{ text, at }` with `at` the video's
 * time then); elements carry `data-testid` `video`, `manifest`, `status`, `quality`, `bitrate`, `buffer`,
 * `throughput`, `captions` and the `<select data-testid="level">` (value `auto` or a level id).
 */

/** What the page is configured with. */
export interface PlayerPageConfig {
  /**
   * Smooth manifest URL of the point the page plays when its URL has no `?src=`, relative to the page;
   * its DASH and HLS URLs are derived from it (`…/Manifest` → `…/.mpd`, `…/.m3u8`).
   */
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
  .stage { position: relative; }
  #overlay { position: absolute; inset: 0; pointer-events: none; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1.25rem; margin: 1rem 0 0; }
  dt { color: var(--muted); }
  dd { margin: 0; font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
  a { color: var(--accent); }
  select { font: inherit; padding: .15rem .4rem; background: #1b2025; color: inherit; border: 1px solid var(--line); border-radius: 4px; }
  .error { color: #f87171; }
</style>
<!-- dash.js 5: MSS support is a separate bundle, loaded after the main one; hls.js when installed. -->
<script src="dashjs/dash.all.min.js"></script>
<script src="dashjs/dash.mss.min.js"></script>
<script src="hlsjs/hls.min.js"></script>
</head>
<body>
<main>
  <h1 id="title"></h1>
  <div class="stage"><video id="video" data-testid="video" controls muted autoplay playsinline></video><div id="overlay"></div></div>
  <dl>
    <dt><label for="format">Format</label></dt>
    <dd><select id="format" data-testid="format"><option value="smooth">Smooth (dash.js + MSS)</option><option value="dash">DASH (dash.js)</option><option value="hls">HLS (hls.js)</option></select></dd>
    <dt>Manifest</dt><dd><a id="manifest" data-testid="manifest"></a></dd>
    <dt>Status</dt><dd id="status" data-testid="status">loading</dd>
    <dt>Quality</dt><dd id="quality" data-testid="quality">–</dd>
    <dt>Bitrate</dt><dd id="bitrate" data-testid="bitrate">–</dd>
    <dt>Buffer</dt><dd id="buffer" data-testid="buffer">–</dd>
    <dt>Throughput</dt><dd id="throughput" data-testid="throughput">–</dd>
    <dt>Captions</dt><dd id="captions" data-testid="captions">–</dd>
    <dt><label for="level">Level</label></dt>
    <dd><select id="level" data-testid="level"><option value="auto">Auto</option></select></dd>
  </dl>
</main>
<script>
(function () {
  'use strict';
  var config = __CONFIG__;
  var params = new URLSearchParams(location.search);
  var $ = function (id) { return document.getElementById(id); };
  // The configured manifest names the point; its DASH and HLS URLs sit beside it.
  var base = config.manifest.replace(/(Manifest|\.mpd|\.m3u8)$/, '');
  var urls = { smooth: base + 'Manifest', dash: base + '.mpd', hls: base + '.m3u8' };
  var given = params.get('src');
  var format = params.get('format') || (given ? (/\.mpd$/.test(given) ? 'dash' : /\.m3u8$/.test(given) ? 'hls' : 'smooth') : 'smooth');
  if (!urls[format]) format = 'smooth';
  var src = new URL(given || urls[format], location.href).href;
  var video = $('video');
  var state = (window.__player = { errors: [], playingAt: undefined, waiting: 0, levels: [], rendered: [], pinned: 'auto', format: format, captions: [] });
  var shown; // the video level on screen
  var api; // what the page needs of the player in use: pin(level), buffer(type), throughput(), live()

  $('title').textContent = config.title;
  $('manifest').textContent = src;
  $('manifest').href = src;
  $('format').value = format;
  $('format').addEventListener('change', function () {
    params.set('format', $('format').value);
    params.delete('src');
    location.search = params.toString();
  });

  function kbps(bps) { return Math.round(bps / 1000) + ' kbit/s'; }
  function label(level) { return kbps(level.bandwidth) + ', ' + level.width + '×' + level.height; }
  function status(text, isError) {
    $('status').textContent = text;
    $('status').className = isError ? 'error' : '';
  }
  function fail(text) {
    state.errors.push(text);
    status(text, true);
  }
  function describe(e) {
    var err = e && e.error;
    if (!err) return String(e && e.type);
    return 'code ' + err.code + ': ' + err.message + (err.data && err.data.url ? ' (' + err.data.url + ')' : '');
  }
  function showLevels(levels) {
    state.levels = levels.slice().sort(function (a, b) { return a.bandwidth - b.bandwidth; });
    var select = $('level');
    while (select.options.length > 1) select.remove(1);
    state.levels.forEach(function (level) {
      var option = document.createElement('option');
      option.value = level.id;
      option.textContent = label(level);
      select.appendChild(option);
    });
  }
  function rendered(level) {
    shown = level;
    state.rendered.push(level);
    refresh();
  }
  /** Seconds buffered ahead of the playhead (the video element's view, for players that do not say). */
  function ahead() {
    var b = video.buffered;
    for (var i = 0; i < b.length; i++) if (b.start(i) <= video.currentTime + 0.1 && b.end(i) >= video.currentTime) return b.end(i) - video.currentTime;
    return 0;
  }

  /** dash.js: Smooth (with its MSS module) and DASH. */
  function startDash() {
    if (!window.dashjs || !window.dashjs.MediaPlayer) return fail('dash.js did not load');
    var events = dashjs.MediaPlayer.events;
    var player = dashjs.MediaPlayer().create();
    player.updateSettings({
      // The default clock source is an internet host; the origin's own timeline (and, for DASH, the
      // MPD's UTCTiming) is all a live stream needs.
      streaming: { utcSynchronization: { enabled: format === 'dash' } },
      debug: { logLevel: params.get('debug') ? dashjs.Debug.LOG_LEVEL_DEBUG : dashjs.Debug.LOG_LEVEL_WARNING },
    });
    player.on(events.ERROR, function (e) { fail('dash.js error ' + describe(e)); });
    player.on(events.PLAYBACK_ERROR, function (e) { fail('playback error ' + describe(e)); });
    player.on(events.STREAM_INITIALIZED, function () {
      showLevels((player.getRepresentationsByType('video') || []).map(function (r) {
        return { id: String(r.id), bandwidth: r.bandwidth, width: r.width, height: r.height };
      }));
    });
    player.on(events.QUALITY_CHANGE_RENDERED, function (e) {
      if (e.mediaType !== 'video' || !e.newRepresentation) return;
      var r = e.newRepresentation;
      rendered({ id: String(r.id), bandwidth: r.bandwidth, width: r.width, height: r.height });
    });
    api = {
      pin: function (value) {
        if (value === 'auto') {
          player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: true } } } });
        } else {
          player.updateSettings({ streaming: { abr: { autoSwitchBitrate: { video: false } } } });
          // forceReplace: drop what is buffered at the other level so the choice shows at once.
          player.setRepresentationForTypeById('video', value, true);
        }
      },
      buffer: function (type) { return player.isReady() ? player.getBufferLength(type) : 0; },
      throughput: function () { return player.isReady() ? player.getAverageThroughput('video') : 0; },
      live: function () { return player.isReady() && player.isDynamic(); },
    };
    player.initialize(video, src, true);
    // dash.js renders TTML only into a page element of its own (given once it has the video).
    player.attachTTMLRenderingDiv($('overlay'));
  }

  /** hls.js, or the browser's own HLS (Safari, iOS). */
  function startHls() {
    if (window.Hls && Hls.isSupported()) {
      var hls = new Hls({ debug: !!params.get('debug') });
      hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, function (_event, data) {
        // Captions on unless the playlist picked a rendition already.
        if (data.subtitleTracks.length > 0 && hls.subtitleTrack < 0) hls.subtitleTrack = 0;
      });
      hls.on(Hls.Events.ERROR, function (_event, data) {
        if (data.fatal) fail('hls.js error ' + data.type + ': ' + data.details + (data.url ? ' (' + data.url + ')' : ''));
      });
      hls.on(Hls.Events.MANIFEST_PARSED, function (_event, data) {
        showLevels(data.levels.map(function (l, i) { return { id: String(i), bandwidth: l.bitrate, width: l.width, height: l.height }; }));
      });
      hls.on(Hls.Events.LEVEL_SWITCHED, function (_event, data) {
        var l = hls.levels[data.level];
        if (l) rendered({ id: String(data.level), bandwidth: l.bitrate, width: l.width, height: l.height });
      });
      api = {
        pin: function (value) { hls.currentLevel = value === 'auto' ? -1 : Number(value); },
        buffer: function () { return ahead(); },
        throughput: function () { return hls.bandwidthEstimate / 1000; },
        live: function () { return !!(hls.latestLevelDetails && hls.latestLevelDetails.live); },
      };
      hls.loadSource(src);
      hls.attachMedia(video);
    } else if (video.canPlayType('application/vnd.apple.mpegurl')) {
      api = { pin: function () {}, buffer: function () { return ahead(); }, throughput: function () { return 0; }, live: function () { return video.duration === Infinity; } };
      $('level').disabled = true;
      video.src = src;
    } else {
      fail('HLS needs hls.js (npm install hls.js beside live-smooth) or a browser that plays HLS itself');
    }
  }

  video.addEventListener('playing', function () {
    if (state.playingAt === undefined) state.playingAt = performance.now();
    status(api && api.live() ? 'playing (live)' : 'playing');
  });
  video.addEventListener('waiting', function () { state.waiting++; status('buffering'); });
  video.addEventListener('error', function () {
    var e = video.error;
    fail('video element: ' + (e ? e.code + ' ' + e.message : 'unknown error'));
  });

  $('level').addEventListener('change', function () {
    var value = $('level').value;
    state.pinned = value;
    if (api) api.pin(value);
    refresh();
  });

  function refresh() {
    if (!api) return;
    var level = shown;
    if (level) {
      var index = state.levels.findIndex(function (l) { return l.id === level.id; });
      $('quality').textContent = (index >= 0 ? 'level ' + (index + 1) + ' of ' + state.levels.length + ': ' : '') +
        level.width + '×' + level.height + (state.pinned === 'auto' ? ' (auto)' : ' (pinned)');
      $('bitrate').textContent = kbps(level.bandwidth);
    }
    var buffers = ['video', 'audio'].map(function (type) {
      var seconds = api.buffer(type);
      return type + ' ' + (isFinite(seconds) ? seconds.toFixed(1) : '0.0') + ' s';
    });
    $('buffer').textContent = format === 'hls' ? buffers[0].replace('video', 'media') : buffers.join(', ');
    var throughput = api.throughput();
    if (throughput > 0) $('throughput').textContent = Math.round(throughput) + ' kbit/s';
  }
  setInterval(refresh, 500);

  /** The caption text on screen now: dash.js's overlay, or the active cues of a showing text track. */
  function captionText() {
    var text = $('overlay').textContent.trim();
    if (text) return text;
    for (var i = 0; i < video.textTracks.length; i++) {
      var track = video.textTracks[i];
      if (track.mode !== 'showing' || !track.activeCues) continue;
      for (var j = 0; j < track.activeCues.length; j++) {
        var cue = track.activeCues[j];
        if (cue.text) text += (text ? ' ' : '') + cue.text.trim();
      }
    }
    return text;
  }
  video.textTracks.addEventListener('addtrack', function (e) {
    var track = e.track;
    if ((track.kind === 'captions' || track.kind === 'subtitles') && track.mode === 'disabled' && format === 'hls') track.mode = 'showing';
  });
  var lastCaption = '';
  setInterval(function () {
    var text = captionText();
    $('captions').textContent = text || '–';
    if (!text || text === lastCaption) return;
    lastCaption = text;
    state.captions.push({ text: text, at: video.currentTime });
    if (state.captions.length > 100) state.captions.shift();
  }, 250);

  if (format === 'hls') startHls();
  else startDash();
})();
</script>
</body>
</html>
`;
