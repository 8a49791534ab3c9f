#!/usr/bin/env node
// Generates examples/media/sample.ismv, the content `npm start` loops into live.isml: 24 s of ffmpeg's
// testsrc2 pattern with a clock and frame counter burnt in, in 3 H.264 bitrates (640x360 350k,
// 480x270 175k, 320x180 90k; each labelled on screen) with aligned 2 s GOPs, plus AAC stereo (a 440 Hz
// tone that beeps every second). Written as ffmpeg's `-f ismv` fragmented file: one fragment per track
// every 2 s (12 per loop), about 2 MB.
//
// Needs ffmpeg with libx264 and drawtext (Debian: apt-get install ffmpeg fonts-dejavu-core).
// Usage: node examples/make-sample.js [output]   (FFMPEG=/path/to/ffmpeg to pick the binary)
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

const out = path.resolve(process.argv[2] || path.join(__dirname, 'media', 'sample.ismv'));
const ffmpeg = process.env.FFMPEG || 'ffmpeg';
const SECONDS = 24; // a whole number of 2 s GOPs; 24 s of 48 kHz AAC is exactly 1125 frames

// drawtext options: `font=` goes through fontconfig, so no font path is written here.
const text = (size, color, x, y, what) =>
  `drawtext=font=monospace:fontsize=${size}:fontcolor=${color}:box=1:boxcolor=black@0.65:boxborderw=6:x=${x}:y=${y}:text='${what}'`;
// The clock is the media time of the loop (it restarts at each loop) and the frame number.
const clock = text(30, 'white', '(w-tw)/2', 'h*0.62', '%{pts\\:hms}  frame %{frame_num}');
const levels = [
  { size: '640x360', bitrate: '350k', font: 24 },
  { size: '480x270', bitrate: '175k', font: 18 },
  { size: '320x180', bitrate: '90k', font: 12 },
];
const filter =
  `[0:v]${clock},split=${levels.length}${levels.map((_, i) => `[s${i}]`).join('')};` +
  levels
    .map(({ size, bitrate, font }, i) => {
      const [w, h] = size.split('x');
      return `[s${i}]scale=${w}:${h},${text(font, 'yellow', 10, `h-th-10`, `${bitrate} ${size}`)}[v${i}]`;
    })
    .join(';');

// prettier-ignore
const args = [
  '-hide_banner', '-loglevel', 'error', '-nostdin', '-y',
  '-f', 'lavfi', '-i', 'testsrc2=size=640x360:rate=25',
  '-f', 'lavfi', '-i', 'sine=frequency=440:beep_factor=4:sample_rate=48000',
  '-filter_complex', filter,
  ...levels.flatMap((_, i) => ['-map', `[v${i}]`]), '-map', '1:a',
  '-t', String(SECONDS),
  '-c:v', 'libx264', '-preset', 'medium', '-pix_fmt', 'yuv420p',
  // Aligned 2 s GOPs in every bitrate: fragment boundaries (and so the manifest timeline) line up.
  '-g', '50', '-keyint_min', '50', '-sc_threshold', '0',
  ...levels.flatMap(({ bitrate }, i) => [`-b:v:${i}`, bitrate, `-maxrate:v:${i}`, bitrate, `-bufsize:v:${i}`, bitrate]),
  '-c:a', 'aac', '-b:a', '64k', '-ac', '2',
  '-fflags', '+bitexact',
  '-movflags', 'frag_keyframe', '-f', 'ismv', out,
];

const run = spawnSync(ffmpeg, args, { stdio: 'inherit' });
if (run.error || run.status !== 0) {
  console.error(`ffmpeg failed (${run.error ? run.error.message : `exit ${run.status}`})`);
  process.exit(1);
}
console.log(`wrote ${out}`);
