#!/usr/bin/env node
// The demo behind `npm start`: an Express app serving examples/media/*.isml with liveSmooth, a dash.js
// player page at /, and ffmpeg pushing a live test pattern (3 H.264 bitrates + AAC) into live.isml.
// PORT overrides the port (default 3000); Ctrl-C stops the encoder cleanly (it sends EOS) and the server.
'use strict';
const http = require('node:http');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const express = require('express');
const { liveSmooth } = require('live-smooth');

const port = Number(process.env.PORT || 3000);
const media = path.join(__dirname, 'media');
const handler = liveSmooth(media);

const app = express();
app.use('/live', handler);
app.get('/', (_req, res) => res.sendFile(path.join(__dirname, 'player.html')));
// dash.js and its MSS module, served locally from the package (its `require` entry is the UMD bundle).
app.use('/dashjs', express.static(path.dirname(require.resolve('dashjs'))));

// Live ingest POSTs last as long as the event: Node's default requestTimeout (300 s) would cut them.
const server = http.createServer({ requestTimeout: 0 }, app);

function findFfmpeg() {
  try {
    return execFileSync('sh', ['-c', 'command -v ffmpeg'], { encoding: 'utf8' }).trim();
  } catch {
    return require('@ffmpeg-installer/ffmpeg').path;
  }
}

let encoder;
function startEncoder() {
  const url = `http://127.0.0.1:${port}/live/live.isml/Streams(demo)`;
  // prettier-ignore
  const args = [
    '-hide_banner', '-loglevel', 'error', '-nostdin',
    '-re', '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25',
    '-re', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-filter_complex', '[0:v]split=3[a][b][c];[b]scale=480:270[b2];[c]scale=320:180[c2]',
    '-map', '[a]', '-map', '[b2]', '-map', '[c2]', '-map', '1:a',
    '-c:v', 'libx264', '-preset', 'veryfast', '-tune', 'zerolatency', '-pix_fmt', 'yuv420p',
    '-g', '50', '-keyint_min', '50', '-sc_threshold', '0',
    '-b:v:0', '800k', '-b:v:1', '400k', '-b:v:2', '200k',
    '-c:a', 'aac', '-b:a', '96k', '-ac', '2',
    '-movflags', 'isml+frag_keyframe', '-f', 'ismv', url,
  ];
  encoder = spawn(findFfmpeg(), args, { stdio: ['ignore', 'inherit', 'inherit'] });
  encoder.on('exit', (code, signal) => {
    encoder = undefined;
    if (!stopping) console.error(`encoder exited (${signal || code})`);
  });
}

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  console.log('\nstopping: the encoder sends end-of-stream, then the server closes');
  const close = () => {
    handler.origin.close();
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  if (!encoder) return close();
  encoder.once('exit', close);
  encoder.kill('SIGINT'); // ffmpeg writes its last fragment and an mfra (EOS) on SIGINT
  setTimeout(close, 5000).unref();
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);

server.listen(port, () => {
  console.log(`player:   http://localhost:${port}/`);
  console.log(`manifest: http://localhost:${port}/live/live.isml/Manifest`);
  console.log(`ingest:   http://localhost:${port}/live/live.isml/Streams(<id>)  (encoder pushing now: ffmpeg test pattern)`);
  startEncoder();
});
