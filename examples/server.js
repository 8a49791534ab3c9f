#!/usr/bin/env node
// The demo behind `npm start`: an Express app serving examples/media/*.isml with liveSmooth at /live,
// the admin dashboard at /admin, the sample player at /, and the simulated encoder looping
// examples/media/sample.ismv (3 H.264 bitrates + AAC, made by make-sample.js) into live.isml, with a
// caption track (each caption names its time) and an SCTE-35 ad marker every minute, in a second POST.
// PORT overrides the port (default 3000; 0 picks a free one). Ctrl-C stops the encoder cleanly (it
// sends end of stream) and then the server.
'use strict';
const crypto = require('node:crypto');
const http = require('node:http');
const path = require('node:path');
const express = require('express');
const { createOrigin, liveSmooth } = require('live-smooth');
const { startEncoder, formatStatus } = require('live-smooth/encoder');
const { player } = require('live-smooth/player');

const port = Number(process.env.PORT ?? 3000);
const media = path.join(__dirname, 'media');
// Who may push: without ingestAuth only loopback may; here a random token shows the setup (once any
// method is configured, loopback is no longer allowed by itself). Encoders send it as `?token=…` on the
// ingest URL or as `Authorization: Bearer …`. INGEST_TOKEN sets it (at least 16 characters).
const token = process.env.INGEST_TOKEN ?? crypto.randomBytes(18).toString('base64url');
// The origin is the framework-free core; the middleware and the management API both serve it.
const origin = createOrigin(media, { ingestAuth: { tokens: [token] } });

const app = express();
app.use('/live', liveSmooth(origin));
app.use('/admin', liveSmooth.admin(origin, { live: '/live' }));
app.use('/', player({ manifest: 'live/live.isml/Manifest', title: 'live-smooth demo' }));

// Live ingest POSTs last as long as the event: Node's default requestTimeout (300 s) would cut them.
// Headers, keep-alive and the connection count stay bounded (README: "Recommended server settings").
const server = http.createServer({ requestTimeout: 0, headersTimeout: 10_000, keepAliveTimeout: 5_000 }, app);
server.maxConnections = 1000;

let encoder;
let statusTimer;
let stopping = false;

async function stop() {
  if (stopping) {
    console.log('\nstopping at once');
    process.exit(130);
  }
  stopping = true;
  console.log('\nstopping: the encoder sends end of stream, then the server closes (Ctrl-C again to quit at once)');
  clearInterval(statusTimer);
  if (encoder) {
    await encoder.stop();
    console.log(`encoder:  ${encoder.status().state === 'stopped' ? 'end of stream sent' : 'stopped'}`);
  }
  origin.close();
  server.close(() => process.exit(process.exitCode ?? 0));
  server.closeAllConnections();
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

server.listen(port, async () => {
  const base = `http://localhost:${server.address().port}`;
  console.log(`player:   ${base}/`);
  console.log(`manifest: ${base}/live/live.isml/Manifest`);
  console.log(`dash:     ${base}/live/live.isml/.mpd`);
  console.log(`hls:      ${base}/live/live.isml/.m3u8`);
  console.log(`admin:    ${base}/admin/`);
  console.log(`ingest:   ${base}/live/<name>.isml/Streams(<id>)?token=${token}`);
  try {
    encoder = await startEncoder({
      url: `http://127.0.0.1:${server.address().port}/live/live.isml`,
      files: [path.join(media, 'sample.ismv')],
      streamId: 'demo',
      token,
      // Start as if the encoder had been running for 20 s: the player finds fragments listed at once (with
      // only 3 listed, dash.js 5 in Chromium 156 fetched audio only and stalled).
      backlog: 20,
      // Sparse tracks, pushed as Streams(demo-sparse): TTML captions ("live-smooth hh:mm:ss", one per video
      // fragment) and a 30 s ad break announced every 60 s of media (SCTE-35 splice_insert).
      captions: { language: 'en' },
      adMarkers: { every: 60, duration: 30 },
    });
  } catch (err) {
    console.error(`encoder: ${err.message}`);
    process.exitCode = 1;
    return stop();
  }
  const tracks = encoder.source.tracks.map((t) => `${t.info.type} ${Math.round(t.info.bitrate / 1000)}k`).join(', ');
  console.log(`encoder:  looping sample.ismv (${tracks}) into live.isml, with captions and an ad marker every 60 s`);
  encoder.on('disconnected', ({ error }) => console.log(`encoder: ${error.message}; reconnecting`));
  encoder.on('sparseFailed', ({ error }) => console.log(`encoder: captions and ad markers stopped: ${error.message}`));
  encoder.on('connected', ({ reconnect }) => reconnect && console.log('encoder: reconnected'));
  encoder.done.catch((err) => console.error(`encoder stopped: ${err.message}`));
  if (process.stdout.isTTY) {
    statusTimer = setInterval(() => process.stdout.write(`\r\x1b[Kencoder:  ${formatStatus(encoder.status())}`), 1000);
  }
});
