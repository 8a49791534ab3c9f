/**
 * The management dashboard: one self-contained HTML page (inline CSS and JS, no build step, no external
 * assets) that the admin router serves at its mount root. It lists the publishing points, follows them
 * live over the router's `events` Server-Sent Events stream, sends the start / stop / shutdown commands
 * and creates or updates points through `PUT publishing-points/<path>`.
 *
 * The page never assumes where the router is mounted: it resolves `publishing-points` and `events`
 * against its own URL, made to end with `/`, so `/admin` and `/admin/` both work under any prefix.
 * Every string from the server reaches the DOM through `textContent` or `setAttribute`, never through
 * `innerHTML`, so titles, paths and error messages cannot inject markup.
 *
 * Test hooks (stable, for browser tests): each point is an `article[data-testid="point"]` with
 * `data-path` (relative to the root, e.g. `events/game1.isml`) and `data-state`; inside it
 * `[data-testid="urls"]` with the player URLs `url-smooth`, `url-dash`, `url-hls` (links when the
 * admin router was given the middleware's mount point, `live`), `[data-testid="archives"]` with one
 * `li[data-testid="archive"][data-state]` per archive holding its `archive-link`, and
 * `[data-testid="source"]` (a pulled point's upstream, `data-state` `waiting` | `connecting` | `pulling` |
 * `failing` | `ended`), `[data-testid="state"]` (badge), `point-title`, `command-error`, `error`, buttons `start` / `stop` /
 * `shutdown` / `edit` / `delete`, and `tr[data-testid="track"][data-key]` rows whose cells are
 * `bitrate`, `incoming`, `fragments`, `last-fragment`, and `plots` holding the sparklines
 * `svg[data-testid="spark-incoming"]` (incoming bitrate) and `svg[data-testid="spark-requests"]`
 * (fragment requests per second, from successive `stats` events), each with `data-samples` (points
 * plotted) and `data-last` (newest value). The create form is `create-form` with inputs
 * `create-path`, `create-title`, `create-lookahead`, `create-window`, `create-start-on-first-request`,
 * `create-restart-on-reconnect` and the outcome in `create-result` (`data-status` = HTTP status).
 * `[data-testid="connection"]` has `data-state` `connecting` | `live` | `reconnecting` | `offline`.
 */

// String.raw keeps the page's backslashes (regular expressions) as written; the page's script uses no
// template literals, so nothing in it is interpolated by TypeScript.
/**
 * The dashboard page (UTF-8 HTML). Serve it for `GET` on the admin router's root with
 * `Content-Type: text/html; charset=utf-8`; it needs the router's JSON endpoints
 * (`publishing-points`, `publishing-points/<path>[/start|/stop|/shutdown]`) and `events` (SSE) next to it.
 */
export const DASHBOARD_HTML: string = String.raw`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>live-smooth · publishing points</title>
<link rel="icon" href="data:,">
<style>
  :root {
    --fg: #1d232a; --muted: #5f6b76; --line: #d9dee3; --bg: #f5f7f9; --card: #fff; --accent: #2563eb;
    --idle: #6b7280; --busy: #b45309; --ok: #15803d; --stopped: #1e40af; --down: #7c3aed; --err: #b91c1c;
  }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: var(--bg); }
  header.top { display: flex; align-items: center; gap: 16px; padding: 12px 20px; background: #111827; color: #f9fafb; }
  header.top h1 { margin: 0; font-size: 18px; font-weight: 600; }
  header.top .spacer { flex: 1; }
  .conn { font-size: 12px; padding: 2px 8px; border-radius: 10px; background: #374151; }
  .conn[data-state="live"] { background: var(--ok); }
  .conn[data-state="reconnecting"], .conn[data-state="offline"] { background: var(--err); }
  .updated { font-size: 12px; color: #d1d5db; }
  main { padding: 16px 20px; max-width: 1400px; margin: 0 auto; }
  .empty { color: var(--muted); }
  article.point { background: var(--card); border: 1px solid var(--line); border-radius: 8px; margin: 0 0 14px; padding: 12px 14px; }
  article.point > .head { display: flex; flex-wrap: wrap; align-items: center; gap: 10px; }
  .path { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-weight: 600; font-size: 15px; }
  .ptitle { color: var(--muted); }
  .badge { display: inline-block; min-width: 74px; text-align: center; padding: 2px 8px; border-radius: 10px; color: #fff; font-size: 12px; font-weight: 600; background: var(--idle); }
  .badge[data-state="Starting"], .badge[data-state="Stopping"] { background: var(--busy); }
  .badge[data-state="Started"] { background: var(--ok); }
  .badge[data-state="Stopped"] { background: var(--stopped); }
  .badge[data-state="ShuttingDown"] { background: var(--down); }
  .badge[data-state="Error"] { background: var(--err); }
  .reason { color: var(--muted); font-size: 12px; }
  .urls { display: flex; gap: .75rem; margin: .25rem 0; font-size: 12px; flex-wrap: wrap; }
  .total { color: var(--muted); font-size: 12px; }
  .actions { margin-left: auto; display: flex; gap: 6px; }
  button { font: inherit; padding: 3px 10px; border-radius: 5px; border: 1px solid var(--line); background: #fff; cursor: pointer; }
  button:hover:not(:disabled) { border-color: var(--accent); }
  button:disabled { opacity: .5; cursor: default; }
  button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
  .msg { margin: 8px 0 0; padding: 6px 10px; border-radius: 5px; white-space: pre-wrap; }
  .msg.bad { background: #fef2f2; color: var(--err); border: 1px solid #fecaca; }
  .msg.good { background: #f0fdf4; color: var(--ok); border: 1px solid #bbf7d0; }
  .settings { display: flex; flex-wrap: wrap; gap: 4px 14px; margin: 8px 0 0; color: var(--muted); font-size: 12px; }
  .settings span b { color: var(--fg); font-weight: 600; }
  .settings details.more > summary { cursor: pointer; color: var(--accent); }
  .settings details.more[open] { flex-basis: 100%; }
  .settings details.more > span { display: inline-block; margin: 2px 14px 0 0; }
  .settings .pending { color: var(--busy); }
  .streams { display: flex; flex-wrap: wrap; gap: 6px; margin: 8px 0 0; font-size: 12px; }
  .stream { border: 1px solid var(--line); border-radius: 10px; padding: 1px 8px; }
  .stream[data-state="connected"] { border-color: var(--ok); color: var(--ok); }
  .stream[data-state="ended"] { color: var(--muted); }
  .counts { color: var(--muted); padding: 1px 0; }
  .counts b { color: var(--fg); font-weight: 600; }
  .counts b.warn { color: var(--err); }
  table.tracks { width: 100%; border-collapse: collapse; margin-top: 8px; font-size: 13px; }
  table.tracks th, table.tracks td { text-align: right; padding: 3px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
  table.tracks th:first-child, table.tracks td:first-child { text-align: left; }
  table.tracks th { color: var(--muted); font-weight: 500; font-size: 12px; }
  table.tracks td.plots { padding: 1px 8px; }
  svg.spark { display: inline-block; vertical-align: middle; width: 90px; height: 20px; margin-left: 6px; background: #f8fafc; border-bottom: 1px solid var(--line); }
  svg.spark polyline { fill: none; stroke-width: 1.5; stroke-linejoin: round; vector-effect: non-scaling-stroke; }
  svg.spark[data-kind="incoming"] polyline { stroke: var(--ok); }
  svg.spark[data-kind="requests"] polyline { stroke: var(--accent); }
  table.tracks td.mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12px; }
  section.create { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; margin-top: 22px; }
  section.create h2 { margin: 0 0 4px; font-size: 15px; }
  section.create .hint { margin: 0 0 10px; color: var(--muted); font-size: 12px; }
  form.create { display: flex; flex-wrap: wrap; align-items: flex-end; gap: 10px 16px; }
  form.create label { display: flex; flex-direction: column; gap: 3px; font-size: 12px; color: var(--muted); }
  form.create label.check { flex-direction: row; align-items: center; gap: 6px; color: var(--fg); font-size: 13px; }
  form.create input[type="text"], form.create input[type="number"] { font: inherit; padding: 4px 6px; border: 1px solid var(--line); border-radius: 5px; }
  form.create input[name="path"] { width: 230px; }
  form.create input[type="number"] { width: 110px; }
</style>
</head>
<body>
<header class="top">
  <h1>live-smooth · publishing points</h1>
  <span class="spacer"></span>
  <span class="updated" id="updated" data-testid="updated"></span>
  <span class="conn" id="conn" data-testid="connection" data-state="connecting">connecting</span>
</header>
<main>
  <div id="points" data-testid="points" aria-live="polite"></div>
  <p id="empty" class="empty" data-testid="empty" hidden>No publishing points yet: create one below, or put an .isml file in the root folder.</p>
  <p id="load-error" class="msg bad" data-testid="load-error" role="alert" hidden></p>

  <section class="create">
    <h2>Create or update a publishing point</h2>
    <p class="hint">Saving an existing point changes the fields below (an empty field restores its default) and keeps its other settings; settings change only while the point is Idle.</p>
    <form id="create" class="create" data-testid="create-form" novalidate>
      <label>Path (relative to the root)
        <input type="text" name="path" data-testid="create-path" placeholder="events/game1.isml" required autocomplete="off">
      </label>
      <label>Title
        <input type="text" name="title" data-testid="create-title" autocomplete="off">
      </label>
      <label>lookaheadChunks
        <input type="number" name="lookaheadChunks" data-testid="create-lookahead" min="0" max="32" step="1" placeholder="2">
      </label>
      <label>manifestWindowLength (s)
        <input type="number" name="manifestWindowLength" data-testid="create-window" min="0" step="1" placeholder="0">
      </label>
      <label class="check"><input type="checkbox" name="startOnFirstRequest" data-testid="create-start-on-first-request"> startOnFirstRequest</label>
      <label class="check"><input type="checkbox" name="restartOnEncoderReconnect" data-testid="create-restart-on-reconnect"> restartOnEncoderReconnect</label>
      <button type="submit" class="primary" data-testid="create-submit">Save</button>
    </form>
    <p id="create-result" class="msg" data-testid="create-result" role="status" hidden></p>
  </section>
</main>
<script>
(function () {
  'use strict';

  // The router may be mounted anywhere and this page loaded as "/admin" or "/admin/": resolve the API
  // against the page's own path, forced to end with a slash.
  var base = location.pathname.replace(/\/+$/, '') + '/';
  var STATES = ['Idle', 'Starting', 'Started', 'Stopping', 'Stopped', 'ShuttingDown', 'Error'];
  var COMMANDS = ['start', 'stop', 'shutdown'];

  var list = document.getElementById('points');
  var empty = document.getElementById('empty');
  var loadError = document.getElementById('load-error');
  var conn = document.getElementById('conn');
  var updated = document.getElementById('updated');
  var form = document.getElementById('create');
  var createResult = document.getElementById('create-result');

  /** path -> { el, parts, point } */
  var cards = new Map();
  /** Bumped by every event-stream message: a slower GET that started before it is stale. */
  var seq = 0;

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) e.setAttribute(k, attrs[k]);
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function pointUrl(path) {
    return base + 'publishing-points/' + String(path).split('/').map(encodeURIComponent).join('/');
  }

  function bitrate(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '\u2013';
    if (n >= 1e6) return (n / 1e6).toFixed(2) + ' Mbit/s';
    return Math.round(n / 1000) + ' kbit/s';
  }

  function bytes(n) {
    if (typeof n !== 'number' || !isFinite(n)) return '\u2013';
    if (n >= 1048576) return (n / 1048576).toFixed(1) + ' MiB';
    if (n >= 1024) return (n / 1024).toFixed(1) + ' KiB';
    return n + ' B';
  }

  function count(n) {
    return typeof n === 'number' && isFinite(n) ? String(n) : '\u2013';
  }

  function orDash(v) {
    return v === null || v === undefined || v === '' ? '\u2013' : String(v);
  }

  // Times arrive as decimal strings of ticks (they exceed 2^53): show seconds, computed exactly.
  function ticks(v, timescale) {
    if (v === null || v === undefined || !timescale) return orDash(v);
    const t = BigInt(v);
    const ts = BigInt(timescale);
    const ms = (t % ts) * 1000n / ts;
    return (t / ts).toString() + '.' + ms.toString().padStart(3, '0');
  }

  function show(node, text, kind) {
    node.textContent = text || '';
    node.hidden = !text;
    if (kind) node.className = 'msg ' + kind;
  }

  /** A pulled point's upstream connection: where from, and why it is not pulling. */
  var SOURCE_WORDS = { waiting: 'Waiting to pull from', connecting: 'Connecting to', pulling: 'Pulling from', failing: 'Failing:', ended: 'Ended:' };
  function renderSource(node, s) {
    if (!s) return show(node, '');
    node.setAttribute('data-state', String(s.state));
    var text = (SOURCE_WORDS[s.state] || String(s.state)) + ' ' + String(s.upstream) + (s.reason ? ' \u2013 ' + String(s.reason) : '');
    show(node, text, s.state === 'failing' ? 'bad' : 'good');
  }

  /** The error text of a failed response: its JSON "error", else its text, else the status line. */
  function failure(res) {
    return res.text().then(function (body) {
      var text = body;
      try {
        var json = JSON.parse(body);
        if (json && typeof json.error === 'string') text = json.error;
      } catch (e) { /* not JSON: keep the text */ }
      return res.status + ' ' + (String(text || res.statusText).trim());
    }, function () {
      return res.status + ' ' + res.statusText;
    });
  }

  function createCard(path) {
    var root = el('article', { 'class': 'point', 'data-testid': 'point', 'data-path': path, 'data-state': '' });
    var head = el('div', { 'class': 'head' });
    var pathEl = el('span', { 'class': 'path', 'data-testid': 'point-path' }, path);
    var title = el('span', { 'class': 'ptitle', 'data-testid': 'point-title' });
    var badge = el('span', { 'class': 'badge', 'data-testid': 'state', 'data-state': '' });
    var reason = el('span', { 'class': 'reason', 'data-testid': 'reason' });
    var total = el('span', { 'class': 'total', 'data-testid': 'incoming-total' });
    var actions = el('span', { 'class': 'actions' });
    var buttons = {};
    COMMANDS.concat(['edit', 'delete']).forEach(function (action) {
      var label = action.charAt(0).toUpperCase() + action.slice(1);
      var b = el('button', { type: 'button', 'data-action': action, 'data-testid': action, 'aria-label': label + ' ' + path }, label);
      buttons[action] = b;
      actions.appendChild(b);
    });
    head.append(pathEl, title, badge, reason, total, actions);
    var urls = el('div', { 'class': 'urls', 'data-testid': 'urls' });
    var error = el('p', { 'class': 'msg bad', 'data-testid': 'error' });
    error.hidden = true;
    var source = el('p', { 'class': 'msg', 'data-testid': 'source' });
    source.hidden = true;
    var commandError = el('p', { 'class': 'msg bad', 'data-testid': 'command-error', role: 'alert' });
    commandError.hidden = true;
    var settings = el('div', { 'class': 'settings', 'data-testid': 'settings' });
    var streams = el('div', { 'class': 'streams', 'data-testid': 'streams' });
    var table = el('table', { 'class': 'tracks', 'data-testid': 'tracks' });
    var thead = el('thead');
    var hr = el('tr');
    ['track', 'FourCC', 'bitrate', 'incoming', 'fragments', 'bytes', 'last fragment (s)', 'duration (s)', 'requests', '404', '412', 'in \u00b7 req/s (' + HISTORY + ' s)']
      .forEach(function (h) { hr.appendChild(el('th', { scope: 'col' }, h)); });
    thead.appendChild(hr);
    var tbody = el('tbody');
    table.append(thead, tbody);
    table.hidden = true;
    var archives = el('ul', { 'class': 'archives', 'data-testid': 'archives' });
    archives.hidden = true;
    root.append(head, urls, source, error, commandError, settings, streams, table, archives);
    return {
      el: root, point: null,
      parts: { title: title, badge: badge, reason: reason, total: total, buttons: buttons, error: error, urls: urls, source: source,
        commandError: commandError, settings: settings, streams: streams, table: table, tbody: tbody, archives: archives }
    };
  }

  function setState(card, state, reason) {
    var s = STATES.indexOf(state) >= 0 ? state : String(state);
    card.el.setAttribute('data-state', s);
    card.parts.badge.setAttribute('data-state', s);
    card.parts.badge.textContent = s;
    if (reason !== undefined) card.parts.reason.textContent = reason ? String(reason) : '';
  }

  /** Settings shown on the card itself; every other meta is listed under "more settings". */
  var MAIN_SETTINGS = ['lookaheadChunks', 'manifestWindowLength', 'estimatedTime', 'startOnFirstRequest', 'restartOnEncoderReconnect', 'encoderRestart'];

  function setting(name, value) {
    var item = el('span', { 'data-setting': name }, name + ': ');
    item.appendChild(el('b', null, orDash(value)));
    return item;
  }

  function renderSettings(node, settings, pending) {
    var wasOpen = !!node.querySelector('details[open]');
    node.textContent = '';
    if (!settings || typeof settings !== 'object') return;
    MAIN_SETTINGS.forEach(function (name) {
      if (Object.prototype.hasOwnProperty.call(settings, name)) node.appendChild(setting(name, settings[name]));
    });
    var others = Object.keys(settings).sort().filter(function (name) {
      // The title is shown next to the path; unset metas would only add noise.
      return name !== 'title' && MAIN_SETTINGS.indexOf(name) < 0 && settings[name] !== null && settings[name] !== '';
    });
    if (others.length) {
      var more = el('details', { 'class': 'more', 'data-testid': 'more-settings' });
      more.open = wasOpen;
      more.appendChild(el('summary', null, others.length + ' more settings'));
      others.forEach(function (name) { more.appendChild(setting(name, settings[name])); });
      node.appendChild(more);
    }
    if (pending) node.appendChild(el('span', { 'class': 'pending', 'data-testid': 'pending-settings' }, 'changed settings apply when the point is Idle again'));
  }

  function renderStreams(node, streams) {
    node.textContent = '';
    (Array.isArray(streams) ? streams : []).forEach(function (s) {
      var text = 'Streams(' + s.id + ') ' + s.state;
      if (s.remoteAddress) text += ' from ' + s.remoteAddress;
      if (typeof s.connections === 'number') text += ' \u00b7 ' + s.connections + ' conn.';
      node.appendChild(el('span', { 'class': 'stream', 'data-testid': 'stream', 'data-id': String(s.id), 'data-state': String(s.state) }, text));
    });
  }

  /** What the point did with encoders that went back in time; shown once anything happened. */
  var COUNTS = [['restarts', 'restarts'], ['duplicatesDropped', 'duplicates dropped'], ['refused', 'refused']];

  function renderCounts(node, p) {
    if (!COUNTS.some(function (c) { return Number(p[c[0]]) > 0; })) return;
    var line = el('span', { 'class': 'counts', 'data-testid': 'encoder-counts' }, 'encoders: ');
    COUNTS.forEach(function (c, i) {
      var n = Number(p[c[0]]) || 0;
      if (i) line.appendChild(document.createTextNode(' \u00b7 '));
      line.appendChild(el('b', { 'data-testid': c[0], 'class': c[0] === 'refused' && n > 0 ? 'warn' : '' }, count(n)));
      line.appendChild(document.createTextNode(' ' + c[1]));
    });
    node.appendChild(line);
  }

  // Live plots: per track, the incoming bitrate and the fragment requests per second of the last
  // HISTORY stats events (one a second). Only the stats events feed them, so every sample is one period
  // apart; requests per second come from the difference of successive request counts.
  var HISTORY = 60;
  var SVG = 'http://www.w3.org/2000/svg';
  /** path + NUL + track key -> { incoming: [], requests: [], count, at } */
  var history = new Map();

  function sample(points) {
    var now = Date.now();
    var seen = new Set();
    (Array.isArray(points) ? points : []).forEach(function (p) {
      if (!p || typeof p.path !== 'string' || !Array.isArray(p.tracks)) return;
      p.tracks.forEach(function (t) {
        var id = p.path + '\u0000' + t.key;
        seen.add(id);
        var h = history.get(id);
        if (!h) {
          h = { incoming: [], requests: [], count: undefined, at: 0 };
          history.set(id, h);
        }
        var n = Number(t.requests);
        var incoming = Number(t.incomingBitrate);
        h.incoming.push(isFinite(incoming) && incoming > 0 ? incoming : 0);
        // A first count, or one that went down (a new session), starts the rate over.
        if (h.count !== undefined && isFinite(n) && n >= h.count && now > h.at) h.requests.push((n - h.count) * 1000 / (now - h.at));
        h.count = isFinite(n) ? n : undefined;
        h.at = now;
        if (h.incoming.length > HISTORY) h.incoming.shift();
        if (h.requests.length > HISTORY) h.requests.shift();
      });
    });
    history.forEach(function (h, id) { if (!seen.has(id)) history.delete(id); });
  }

  function spark(kind, values, label, format) {
    var w = 90, hgt = 20;
    var svg = document.createElementNS(SVG, 'svg');
    var last = values.length ? values[values.length - 1] : 0;
    svg.setAttribute('class', 'spark');
    svg.setAttribute('data-testid', 'spark-' + kind);
    svg.setAttribute('data-kind', kind);
    svg.setAttribute('data-samples', String(values.length));
    svg.setAttribute('data-last', String(Math.round(last * 1000) / 1000));
    svg.setAttribute('viewBox', '0 0 ' + w + ' ' + hgt);
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('role', 'img');
    var max = Math.max.apply(null, values.concat([0])) || 1;
    var title = document.createElementNS(SVG, 'title');
    title.textContent = label + ': ' + format(last) + ' (peak ' + format(Math.max.apply(null, values.concat([0]))) + ')';
    svg.setAttribute('aria-label', title.textContent);
    svg.appendChild(title);
    if (values.length) {
      var step = w / (HISTORY - 1);
      var x0 = w - (values.length - 1) * step;
      var pts = values.map(function (v, i) {
        return (x0 + i * step).toFixed(1) + ',' + (hgt - 1 - (v / max) * (hgt - 2)).toFixed(1);
      });
      if (pts.length === 1) pts.unshift((w - step).toFixed(1) + ',' + pts[0].split(',')[1]);
      var line = document.createElementNS(SVG, 'polyline');
      line.setAttribute('points', pts.join(' '));
      svg.appendChild(line);
    }
    return svg;
  }

  function plots(path, key) {
    var h = history.get(path + '\u0000' + key) || { incoming: [], requests: [] };
    var td = el('td', { 'class': 'plots', 'data-testid': 'plots' });
    td.append(
      spark('incoming', h.incoming, 'incoming', bitrate),
      spark('requests', h.requests, 'requests', function (v) { return (Math.round(v * 10) / 10) + '/s'; })
    );
    return td;
  }

  function renderTracks(card, tracks) {
    var tbody = card.parts.tbody;
    tbody.textContent = '';
    var sum = 0;
    var order = { video: 0, audio: 1 };
    var rows = (Array.isArray(tracks) ? tracks.slice() : []).sort(function (a, b) {
      var ta = order[a.type] === undefined ? 2 : order[a.type];
      var tb = order[b.type] === undefined ? 2 : order[b.type];
      if (ta !== tb) return ta - tb;
      if (a.name !== b.name) return String(a.name) < String(b.name) ? -1 : 1;
      return (Number(b.bitrate) || 0) - (Number(a.bitrate) || 0);
    });
    rows.forEach(function (t) {
      if (typeof t.incomingBitrate === 'number' && isFinite(t.incomingBitrate)) sum += t.incomingBitrate;
      var tr = el('tr', { 'data-testid': 'track', 'data-key': String(t.key), 'data-type': String(t.type) });
      var name = t.type === t.name ? String(t.type) : t.type + ' \u00b7 ' + t.name;
      tr.append(
        el('td', { title: String(t.key) }, name),
        el('td', { 'data-testid': 'fourcc' }, orDash(t.fourCC)),
        el('td', { 'data-testid': 'bitrate', 'data-value': String(t.bitrate) }, bitrate(t.bitrate)),
        el('td', { 'data-testid': 'incoming', 'data-value': String(t.incomingBitrate) }, bitrate(t.incomingBitrate)),
        el('td', { 'data-testid': 'fragments' }, count(t.fragments)),
        el('td', { 'data-testid': 'bytes' }, bytes(t.bytes)),
        el('td', { 'class': 'mono', 'data-testid': 'last-fragment', title: orDash(t.lastFragmentTime) }, ticks(t.lastFragmentTime, t.timescale)),
        el('td', { 'class': 'mono', 'data-testid': 'last-duration', title: orDash(t.lastFragmentDuration) }, ticks(t.lastFragmentDuration, t.timescale)),
        el('td', { 'data-testid': 'requests' }, count(t.requests)),
        el('td', { 'data-testid': 'not-found' }, count(t.notFound)),
        el('td', { 'data-testid': 'not-yet-available' }, count(t.notYetAvailable)),
        plots(card.el.getAttribute('data-path'), t.key)
      );
      tbody.appendChild(tr);
    });
    card.parts.table.hidden = rows.length === 0;
    card.parts.total.textContent = rows.length ? 'in: ' + bitrate(sum) : '';
  }

  var FORMATS = [['smooth', 'Smooth'], ['dash', 'DASH'], ['hls', 'HLS']];
  /** The point's player URLs: links when they are absolute (admin option live), text otherwise. */
  function renderUrls(box, urls) {
    box.textContent = '';
    FORMATS.forEach(function (f) {
      var url = urls && urls[f[0]];
      if (typeof url !== 'string') return;
      var item = /^(\/|https?:\/\/)/.test(url)
        ? el('a', { href: url, 'data-testid': 'url-' + f[0], target: '_blank', rel: 'noopener' }, f[1])
        : el('span', { 'class': 'mono', 'data-testid': 'url-' + f[0], title: f[1] }, url);
      item.setAttribute('title', f[1] + ': ' + url);
      box.appendChild(item);
    });
  }

  /**
   * The point's archives, newest first: each a link that plays it (the sample player when the admin
   * router knows its mount, else the Manifest), with its state, length and size.
   */
  function renderArchives(box, archives) {
    box.textContent = '';
    var list = Array.isArray(archives) ? archives.slice().reverse() : [];
    list.forEach(function (a) {
      if (!a || typeof a.ism !== 'string') return;
      var href = typeof a.player === 'string' ? a.player : typeof a.url === 'string' ? a.url : null;
      var label = a.ism + (a.state === 'writing' ? ' (writing)' : a.state === 'failed' ? ' (failed)' : '');
      var item = el('li', { 'data-testid': 'archive', 'data-state': String(a.state) });
      item.appendChild(href && /^(\/|https?:\/\/)/.test(href)
        ? el('a', { href: href, target: '_blank', rel: 'noopener', 'data-testid': 'archive-link' }, label)
        : el('span', { 'class': 'mono', 'data-testid': 'archive-link' }, label));
      var facts = (typeof a.duration === 'number' ? a.duration.toFixed(0) + ' s, ' : '') + bytes(a.bytes) + (a.error ? ' \u2013 ' + a.error.code + ': ' + a.error.message : '');
      item.appendChild(el('span', { 'class': 'reason' }, ' ' + facts));
      box.appendChild(item);
    });
    box.hidden = list.length === 0;
  }

  function update(card, p) {
    card.point = p;
    renderUrls(card.parts.urls, p.urls);
    renderArchives(card.parts.archives, p.archives);
    var title = p.settings && p.settings.title;
    card.parts.title.textContent = title ? String(title) : '';
    setState(card, p.state);
    show(card.parts.error, p.error ? String(p.error) : '');
    renderSource(card.parts.source, p.source);
    renderSettings(card.parts.settings, p.settings, p.pendingSettings === true);
    renderStreams(card.parts.streams, p.streams);
    renderCounts(card.parts.streams, p);
    renderTracks(card, p.tracks);
  }

  function render(points) {
    var seen = new Set();
    var sorted = (Array.isArray(points) ? points.slice() : []).filter(function (p) { return p && typeof p.path === 'string'; });
    sorted.sort(function (a, b) { return a.path < b.path ? -1 : a.path > b.path ? 1 : 0; });
    sorted.forEach(function (p, i) {
      seen.add(p.path);
      var card = cards.get(p.path);
      if (!card) {
        card = createCard(p.path);
        cards.set(p.path, card);
      }
      update(card, p);
      // Keep the DOM in path order without re-creating nodes (buttons stay clickable across updates).
      if (list.children[i] !== card.el) list.insertBefore(card.el, list.children[i] || null);
    });
    cards.forEach(function (card, path) {
      if (!seen.has(path)) {
        card.el.remove();
        cards.delete(path);
      }
    });
    empty.hidden = sorted.length > 0;
    updated.textContent = 'updated ' + new Date().toLocaleTimeString();
  }

  function refresh() {
    var at = seq;
    return fetch(base + 'publishing-points', { headers: { Accept: 'application/json' }, cache: 'no-store' })
      .then(function (res) {
        if (!res.ok) return failure(res).then(function (t) { throw new Error(t); });
        return res.json();
      })
      .then(function (body) {
        show(loadError, '');
        if (at === seq) render(body && body.publishingPoints);
      })
      .catch(function (err) {
        show(loadError, 'Could not load the publishing points: ' + (err && err.message ? err.message : err));
      });
  }

  function setConn(state) {
    conn.setAttribute('data-state', state);
    conn.textContent = state;
  }

  var source = null;
  function connect() {
    setConn(source ? 'reconnecting' : 'connecting');
    source = new EventSource(base + 'events');
    source.addEventListener('open', function () {
      setConn('live');
      refresh();
    });
    source.addEventListener('stats', function (e) {
      seq++;
      try {
        var points = JSON.parse(e.data).publishingPoints;
        sample(points);
        render(points);
      } catch (err) { /* a malformed message: wait for the next one */ }
    });
    source.addEventListener('state', function (e) {
      seq++;
      var d;
      try { d = JSON.parse(e.data); } catch (err) { return; }
      var card = d && cards.get(d.path);
      if (card) setState(card, d.state, d.reason === undefined ? '' : d.reason);
      else refresh();
    });
    source.addEventListener('error', function () {
      // EventSource retries by itself while CONNECTING; once CLOSED (e.g. a non-200 answer) retry here.
      if (source.readyState === 2) {
        setConn('offline');
        source.close();
        setTimeout(connect, 3000);
      } else {
        setConn('reconnecting');
      }
    });
  }

  function command(card, action) {
    var path = card.el.getAttribute('data-path');
    var b = card.parts.buttons;
    Object.keys(b).forEach(function (k) { b[k].disabled = true; });
    show(card.parts.commandError, '');
    var done = function () { Object.keys(b).forEach(function (k) { b[k].disabled = false; }); };
    var request;
    if (action === 'delete') {
      if (!window.confirm('Delete the publishing point ' + path + '?')) { done(); return; }
      request = fetch(pointUrl(path), { method: 'DELETE' });
    } else {
      request = fetch(pointUrl(path) + '/' + action, {
        method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: '{}'
      });
    }
    request.then(function (res) {
      if (!res.ok) {
        return failure(res).then(function (t) { show(card.parts.commandError, action + ' refused: ' + t); });
      }
      if (action === 'delete') return refresh();
      return res.json().then(function (p) {
        if (p && p.path === path) update(card, p);
      }, function () { return refresh(); });
    }).catch(function (err) {
      show(card.parts.commandError, action + ' failed: ' + (err && err.message ? err.message : err));
    }).then(done);
  }

  function edit(card) {
    var p = card.point;
    var s = (p && p.settings) || {};
    form.elements.path.value = card.el.getAttribute('data-path');
    form.elements.title.value = s.title === undefined || s.title === null ? '' : String(s.title);
    form.elements.lookaheadChunks.value = s.lookaheadChunks === undefined || s.lookaheadChunks === null ? '' : String(s.lookaheadChunks);
    form.elements.manifestWindowLength.value = s.manifestWindowLength === undefined || s.manifestWindowLength === null ? '' : String(s.manifestWindowLength);
    form.elements.startOnFirstRequest.checked = String(s.startOnFirstRequest).toLowerCase() === 'true';
    form.elements.restartOnEncoderReconnect.checked = String(s.restartOnEncoderReconnect).toLowerCase() === 'true';
    form.elements.path.focus();
  }

  list.addEventListener('click', function (e) {
    var target = e.target;
    var button = target && target.closest ? target.closest('button[data-action]') : null;
    if (!button) return;
    var article = button.closest('article.point');
    var card = article && cards.get(article.getAttribute('data-path'));
    if (!card) return;
    var action = button.getAttribute('data-action');
    if (action === 'edit') edit(card);
    else command(card, action);
  });

  form.addEventListener('submit', function (e) {
    e.preventDefault();
    var f = form.elements;
    var path = f.path.value.trim().replace(/^\/+/, '');
    var result = function (status, text, kind) {
      createResult.setAttribute('data-status', String(status));
      show(createResult, text, kind);
    };
    if (!/\.isml$/i.test(path)) return result(0, 'The path must name an .isml file, e.g. events/game1.isml', 'bad');
    // An empty field is sent as null, which removes the meta (its default applies): clearing a field
    // after "Edit" really clears it.
    var body = { title: f.title.value.trim() === '' ? null : f.title.value.trim() };
    var numbers = ['lookaheadChunks', 'manifestWindowLength'];
    for (var i = 0; i < numbers.length; i++) {
      var raw = f[numbers[i]].value.trim();
      body[numbers[i]] = null;
      if (raw === '') continue;
      if (!/^\d+$/.test(raw)) return result(0, numbers[i] + ' must be a whole number', 'bad');
      body[numbers[i]] = Number(raw);
    }
    body.startOnFirstRequest = f.startOnFirstRequest.checked;
    body.restartOnEncoderReconnect = f.restartOnEncoderReconnect.checked;
    f.path.value = path;
    var submit = form.querySelector('button[type="submit"]');
    submit.disabled = true;
    fetch(pointUrl(path), {
      method: 'PUT', headers: { 'Content-Type': 'application/json', Accept: 'application/json' }, body: JSON.stringify(body)
    }).then(function (res) {
      if (!res.ok) return failure(res).then(function (t) { result(res.status, 'Not saved: ' + t, 'bad'); });
      result(res.status, (res.status === 201 ? 'Created ' : 'Updated ') + path, 'good');
      return refresh();
    }).catch(function (err) {
      result(0, 'Not saved: ' + (err && err.message ? err.message : err), 'bad');
    }).then(function () { submit.disabled = false; });
  });

  // The event stream carries everything; this GET shows the list at once, and the poll covers the time
  // the stream is down.
  refresh();
  connect();
  setInterval(function () {
    if (conn.getAttribute('data-state') !== 'live') refresh();
  }, 5000);
})();
</script>
</body>
</html>
`;
