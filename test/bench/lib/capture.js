'use strict';
/**
 * Captures a real ffmpeg live push for the benchmarks: 3 H.264 bitrates (1800/800/300 kbit/s, 2 s GOPs)
 * plus AAC, about 3 Mbit/s in one POST, encoded as fast as the machine allows (no `-re`) into a
 * throwaway loopback server. Returns the POST body, or undefined without ffmpeg.
 */
const http = require('node:http');
const { spawn } = require('node:child_process');
const { which } = require('./tools');

async function captureLadder(seconds = 20) {
  const ffmpeg = which('ffmpeg');
  if (!ffmpeg) return undefined;
  const bodies = [];
  const server = http.createServer({ requestTimeout: 0 }, (req, res) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(parts));
      res.end();
    });
  });
  await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
  const url = `http://127.0.0.1:${server.address().port}/c.isml/Streams(all)`;
  const rate = (i, k) => [`-b:v:${i}`, `${k}k`, `-maxrate:v:${i}`, `${k}k`, `-bufsize:v:${i}`, `${2 * k}k`];
  // prettier-ignore
  const args = [
    '-hide_banner', '-loglevel', 'error', '-nostdin',
    '-f', 'lavfi', '-i', 'testsrc2=size=1280x720:rate=25',
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000',
    '-filter_complex', '[0:v]split=3[a][b][c];[b]scale=854:480[b2];[c]scale=640:360[c2]',
    '-map', '[a]', '-map', '[b2]', '-map', '[c2]', '-map', '1:a',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-g', '50', '-keyint_min', '50', '-sc_threshold', '0',
    ...rate(0, 1800), ...rate(1, 800), ...rate(2, 300),
    '-c:a', 'aac', '-b:a', '96k', '-ac', '2',
    '-t', String(seconds), '-movflags', 'isml+frag_keyframe', '-f', 'ismv', url,
  ];
  const code = await new Promise((ok) =>
    spawn(ffmpeg, args, { stdio: ['ignore', 'ignore', 'inherit'] }).on('exit', ok),
  );
  server.close();
  if (code !== 0 || bodies.length !== 1) return undefined;
  return bodies[0];
}

module.exports = { captureLadder };
