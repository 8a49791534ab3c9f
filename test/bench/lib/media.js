'use strict';
/**
 * Ingest bytes for the benchmarks: a Smooth live ingest stream shaped like ffmpeg's `ismv` muxer output
 * (ftyp, Live Server Manifest box, moov; then one moof+mdat per track and time slot; mfra at the end),
 * with any number of tracks and any fragment size, plus the captured ffmpeg push replayed with rewritten
 * times. Mirrors test/helpers/fmp4.ts (plain JS so `npm run bench` needs no TypeScript loader).
 */
const fs = require('node:fs');
const path = require('node:path');

const UUID_LSM = Buffer.from('a5d40b30e81411ddba2f0800200c9a66', 'hex');
const UUID_TFXD = Buffer.from('6d1d9b0542d544e680e2141daff757b2', 'hex');
const SPS = Buffer.from('6742c00cda0a37e4c044000003000400000300c83c50aa80', 'hex');
const PPS = Buffer.from('68ce3c80', 'hex');
const ASC = Buffer.from('1190', 'hex'); // AAC-LC 48 kHz stereo
const SYNC = 0x02000000;
const NON_SYNC = 0x01010000;
/** Smooth's 100-ns timescale. */
const TICKS = 10_000_000;

const u8 = (v) => Buffer.from([v & 0xff]);
const u16 = (v) => {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(v);
  return b;
};
const u24 = (v) => {
  const b = Buffer.alloc(3);
  b.writeUIntBE(v, 0, 3);
  return b;
};
const u32 = (v) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(v >>> 0);
  return b;
};
const u64 = (v) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, BigInt(v)));
  return b;
};
const zeros = (n) => Buffer.alloc(n);
const str = (s) => Buffer.from(s, 'latin1');
const box = (type, ...parts) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(8 + body.length), str(type), body]);
};
const fullBox = (type, version, flags, ...parts) => box(type, u8(version), u24(flags), ...parts);

const MATRIX = Buffer.concat([0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000].map(u32));

function avc1(width, height) {
  const avcC = box(
    'avcC',
    u8(1),
    u8(SPS[1]),
    u8(SPS[2]),
    u8(SPS[3]),
    u8(0xff),
    u8(0xe1),
    u16(SPS.length),
    SPS,
    u8(1),
    u16(PPS.length),
    PPS,
  );
  return box(
    'avc1',
    zeros(6),
    u16(1),
    zeros(16),
    u16(width),
    u16(height),
    u32(0x00480000),
    u32(0x00480000),
    u32(0),
    u16(1),
    zeros(32),
    u16(0x0018),
    u16(0xffff),
    avcC,
  );
}

function mp4a(bitrate) {
  const dsi = Buffer.concat([u8(5), u8(ASC.length), ASC]);
  const dcd = Buffer.concat([u8(4), u8(13 + dsi.length), u8(0x40), u8(0x15), u24(0), u32(bitrate), u32(bitrate), dsi]);
  const sl = Buffer.from([6, 1, 2]);
  const es = Buffer.concat([u8(3), u8(3 + dcd.length + sl.length), u16(0), u8(0), dcd, sl]);
  return box(
    'mp4a',
    zeros(6),
    u16(1),
    u16(0),
    u16(0),
    u32(0),
    u16(2),
    u16(16),
    u16(0),
    u16(0),
    u32(48000 * 65536),
    fullBox('esds', 0, 0, es),
  );
}

function trak(t) {
  const video = t.kind === 'video';
  const stbl = box(
    'stbl',
    fullBox('stsd', 0, 0, u32(1), video ? avc1(t.width, t.height) : mp4a(t.bitrate)),
    fullBox('stts', 0, 0, u32(0)),
    fullBox('stsc', 0, 0, u32(0)),
    fullBox('stsz', 0, 0, u32(0), u32(0)),
    fullBox('stco', 0, 0, u32(0)),
  );
  const minf = box(
    'minf',
    video ? fullBox('vmhd', 0, 1, zeros(8)) : fullBox('smhd', 0, 0, u32(0)),
    box('dinf', fullBox('dref', 0, 0, u32(1), fullBox('url ', 0, 1))),
    stbl,
  );
  const tkhd = fullBox(
    'tkhd',
    0,
    7,
    u32(0),
    u32(0),
    u32(t.id),
    u32(0),
    u32(0),
    zeros(8),
    u16(0),
    u16(0),
    u16(0),
    u16(0),
    MATRIX,
    u32((t.width || 0) << 16),
    u32((t.height || 0) << 16),
  );
  const lang = ((0x75 - 0x60) << 10) | ((0x6e - 0x60) << 5) | (0x64 - 0x60); // 'und'
  const mdhd = fullBox('mdhd', 0, 0, u32(0), u32(0), u32(TICKS), u32(0), u16(lang), u16(0));
  const hdlr = fullBox('hdlr', 0, 0, u32(0), str(video ? 'vide' : 'soun'), zeros(12), str('bench'), u8(0));
  return box('trak', tkhd, box('mdia', mdhd, hdlr, minf));
}

function lsm(tracks) {
  const els = tracks.map((t) => {
    const tag = t.kind === 'video' ? 'video' : 'audio';
    const params = { systemBitrate: t.bitrate, trackID: t.id, trackName: tag };
    const body = Object.entries(params)
      .map(([n, v]) => `<param name="${n}" value="${v}" valuetype="data"/>\n`)
      .join('');
    return `<${tag} systemBitrate="${t.bitrate}">\n${body}</${tag}>\n`;
  });
  const smil = `<?xml version="1.0" encoding="utf-8"?>
<smil xmlns="http://www.w3.org/2001/SMIL20/Language">
<head>
<meta name="creator" content="live-smooth bench" />
</head>
<body>
<switch>
${els.join('')}</switch>
</body>
</smil>
`;
  return box('uuid', UUID_LSM, u8(0), u24(0), Buffer.from(smil, 'utf8'));
}

/**
 * The header of an ingest POST.
 * @param tracks - `{ id, kind: 'video'|'audio', bitrate, width?, height? }`
 */
function header(tracks) {
  const mvhd = fullBox(
    'mvhd',
    0,
    0,
    u32(0),
    u32(0),
    u32(1000),
    u32(0),
    u32(0x00010000),
    u16(0x0100),
    zeros(10),
    MATRIX,
    zeros(24),
    u32(tracks.length + 1),
  );
  const trex = tracks.map((t) => fullBox('trex', 0, 0, u32(t.id), u32(1), u32(0), u32(0), u32(0)));
  const ftyp = box('ftyp', str('isml'), u32(1), str('piff'), str('iso2'));
  return Buffer.concat([ftyp, lsm(tracks), box('moov', mvhd, ...tracks.map(trak), box('mvex', ...trex))]);
}

const payloadCache = new Map();
function payload(n) {
  let p = payloadCache.get(n);
  if (!p) {
    p = Buffer.alloc(n);
    for (let i = 0; i < n; i += 4096) p[i] = (i / 4096) & 0xff;
    payloadCache.set(n, p);
  }
  return p;
}

/**
 * One track's moof+mdat as ffmpeg writes it: tfhd with default sample flags, trun v1 with data offset,
 * first-sample flags, durations and sizes, then tfxd.
 * @param t - the track (`id`, `kind`)
 * @param seq - mfhd sequence number
 * @param time - start in 100-ns ticks (bigint or number)
 * @param duration - duration in ticks
 * @param bytes - mdat payload size
 */
function fragment(t, seq, time, duration, bytes) {
  const video = t.kind === 'video';
  // 25 fps video; AAC frames of 1024 samples at 48 kHz.
  const count = Math.max(1, Math.round(video ? (duration / TICKS) * 25 : (duration / TICKS) * 46.875));
  const sampleDuration = Math.floor(duration / count);
  const base = Math.floor(bytes / count);
  const sizes = [];
  let sum = 0;
  for (let i = 0; i < count; i++) {
    const s = i === count - 1 ? bytes - sum : base;
    sizes.push(s);
    sum += s;
  }
  const trunEntries = Buffer.alloc(count * 8);
  for (let i = 0; i < count; i++) {
    trunEntries.writeUInt32BE(i === count - 1 ? duration - sampleDuration * (count - 1) : sampleDuration, i * 8);
    trunEntries.writeUInt32BE(sizes[i], i * 8 + 4);
  }
  const tfhd = fullBox('tfhd', 0, 0x20, u32(t.id), u32(video ? NON_SYNC : SYNC));
  const trunSize = 8 + 4 + 4 + 4 + 4 + trunEntries.length;
  const tfxd = box('uuid', UUID_TFXD, u8(1), u24(0), u64(time), u64(duration));
  const trafSize = 8 + tfhd.length + trunSize + tfxd.length;
  const moofSize = 8 + 16 + trafSize;
  const trun = fullBox('trun', 1, 0x000305, u32(count), u32(moofSize + 8), u32(video ? SYNC : SYNC), trunEntries);
  const moof = box('moof', fullBox('mfhd', 0, 0, u32(seq)), box('traf', tfhd, trun, tfxd));
  if (moof.length !== moofSize) throw new Error('moof size mismatch');
  return Buffer.concat([moof, u32(8 + bytes), str('mdat'), payload(bytes)]);
}

/** The 8-byte empty `mfra` that ends an ffmpeg push. */
const MFRA = box('mfra');

/**
 * A stream layout: tracks plus fragment sizes. `bitrate` is in bit/s; a fragment of `seconds` carries
 * bitrate × seconds / 8 bytes.
 */
class Stream {
  /**
   * @param tracks - `{ kind, bitrate, width?, height?, bytes? }` (ids are assigned 1..n)
   * @param seconds - fragment duration
   */
  constructor(tracks, seconds = 2) {
    this.tracks = tracks.map((t, i) => ({ id: i + 1, width: 640, height: 360, ...t }));
    this.duration = Math.round(seconds * TICKS);
    this.header = header(this.tracks);
    this.seq = 1;
  }

  /**
   * All tracks' fragments of time slot `i` (start `i × duration`), in track order.
   * @param bytes - mdat size of every track instead of its bitrate's (small fragments fill long windows fast)
   */
  slot(i, bytes) {
    return Buffer.concat(this.slotParts(i, bytes));
  }

  /** The fragments of time slot `i`, one Buffer per track. */
  slotParts(i, bytes) {
    const time = BigInt(i) * BigInt(this.duration);
    return this.tracks.map((t) => fragment(t, this.seq++, time, this.duration, bytes ?? this.bytesOf(t)));
  }

  /** Seconds of media per slot. */
  get slotSeconds() {
    return this.duration / TICKS;
  }

  bytesOf(t) {
    return t.bytes ?? Math.round((t.bitrate * this.duration) / TICKS / 8);
  }

  /** Bytes of one time slot, all tracks. */
  get slotBytes() {
    return this.tracks.reduce((s, t) => s + this.bytesOf(t) + 400, 0);
  }
}

/** Three H.264 bitrates plus AAC: the 3 Mbit/s ladder the ingest and viewer benchmarks push. */
const LADDER_3M = [
  { kind: 'video', bitrate: 1_800_000, width: 1280, height: 720 },
  { kind: 'video', bitrate: 800_000, width: 854, height: 480 },
  { kind: 'video', bitrate: 300_000, width: 640, height: 360 },
  { kind: 'audio', bitrate: 100_000 },
];

const FIXTURE = path.join(__dirname, '..', '..', 'fixtures', 'ffmpeg-push-all.bin');

/**
 * A captured ffmpeg push, split into its header and its fragments grouped by time slot (ffmpeg writes
 * one moof+mdat per track and slot, in track order), with copies shifted by whole capture lengths
 * (tfxd and tfdt rewritten) so the capture can be looped into a stream of any length.
 * @param all - the POST body as captured
 * @param reader - `{ BoxReader, children }` from the library under test
 */
function capturedPush(all, { BoxReader, children }) {
  const boxReader = new BoxReader({ maxBoxSize: all.length });
  const boxes = [...boxReader.push(all), ...boxReader.end()].map((b) => Buffer.from(b.data));
  const headerEnd = boxes.findIndex((b) => b.toString('latin1', 4, 8) === 'moof');
  const end = boxes.length - (boxes[boxes.length - 1].toString('latin1', 4, 8) === 'mfra' ? 1 : 0);
  const header = Buffer.concat(boxes.slice(0, headerEnd));
  const body = Buffer.concat(boxes.slice(headerEnd, end));
  const patches = []; // offsets of the 64-bit times to shift
  const slots = []; // [start, end) byte ranges in body
  let slotTracks = new Set();
  let maxEnd = 0n;
  let step = 0n;
  for (const top of children(body)) {
    if (top.type !== 'moof') {
      slots[slots.length - 1][1] = top.offset + top.data.length;
      continue;
    }
    for (const traf of children(body, top.offset + 8, top.offset + top.data.length)) {
      if (traf.type !== 'traf') continue;
      for (const c of children(body, traf.offset + 8, traf.offset + traf.data.length)) {
        if (c.type === 'tfhd') {
          const id = body.readUInt32BE(c.offset + 12);
          if (slots.length === 0 || slotTracks.has(id)) {
            slots.push([top.offset, top.offset + top.data.length]);
            slotTracks = new Set();
          }
          slotTracks.add(id);
        } else if (c.type === 'uuid' && c.uuid === UUID_TFXD.toString('hex')) {
          const at = c.offset + c.headerSize + 4;
          patches.push(at);
          const duration = body.readBigUInt64BE(at + 8);
          if (body.readBigInt64BE(at) + duration > maxEnd) maxEnd = body.readBigInt64BE(at) + duration;
          if (duration > step) step = duration;
        } else if (c.type === 'tfdt') {
          patches.push(c.offset + c.headerSize + 4);
        }
      }
    }
  }
  const cached = { loop: -1, body: undefined };
  // Each copy starts a whole number of fragment durations after the previous one's newest end.
  const span = ((maxEnd + step - 1n) / step) * step;
  return {
    header,
    body,
    span,
    /** Byte ranges of the time slots in `body`. */
    slots,
    /** Seconds of media in one copy. */
    seconds: Number(span) / TICKS,
    /** Seconds between time slots when pushed in real time. */
    slotSeconds: Number(span) / TICKS / slots.length,
    /** A copy of the fragments shifted by `loop` capture lengths. */
    loop(loop) {
      const out = Buffer.from(body);
      const shift = BigInt(loop) * span;
      for (const at of patches) out.writeBigInt64BE(body.readBigInt64BE(at) + shift, at);
      return out;
    },
    /** Time slot `i` of the endless loop (all tracks' fragments of one slot). */
    slot(i) {
      const loop = Math.floor(i / slots.length);
      if (cached.loop !== loop) {
        cached.loop = loop;
        cached.body = this.loop(loop);
      }
      const [start, end] = slots[i % slots.length];
      return cached.body.subarray(start, end);
    },
  };
}

/** The test fixture: a 4 s capture of ffmpeg pushing 2 H.264 bitrates + AAC (100 kbit/s, 1 s fragments). */
function fixture(lib) {
  return capturedPush(fs.readFileSync(FIXTURE), lib);
}

module.exports = { Stream, header, fragment, MFRA, TICKS, LADDER_3M, capturedPush, fixture, FIXTURE };
