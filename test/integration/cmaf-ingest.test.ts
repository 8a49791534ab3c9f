/**
 * CMAF ingest (DASH-IF live media ingest, one long POST per track) on an ordinary `.isml` point, from
 * a real encoder: ffmpeg's mp4 muxer in `cmaf` mode pushes two H.264 bitrates to
 * `Streams(video-<b>k.cmfv)` and AAC to `Streams(audio.cmfa)`, live. The point lists them as the
 * StreamIndexes `video` (two quality levels) and `audio` with the encoder's times, serves them as
 * Smooth fragments (with `tfxd` and `tfrf`), DASH and HLS; GStreamer and dash.js (Smooth), dash.js
 * (DASH) and hls.js (HLS) play them. The encoder's end (its `mfra`) stops the point.
 */
import { cmafPlaySuite, FFMPEG } from '../helpers/cmaf-play';
import { push } from '../helpers/ffmpeg';
import { withTools } from '../helpers/tools';

const BITRATES = [600, 200];
const PUSH_SECONDS = 45;

describe('CMAF ingest from ffmpeg, played as Smooth, DASH and HLS', () => {
  const { play, playerTests } = cmafPlaySuite({
    label: 'CMAF ingest',
    push: (ffmpeg, url) => push({ ffmpeg, url, seconds: PUSH_SECONDS, bitrates: BITRATES, cmaf: true }),
    gstSeconds: 25,
    pageSeconds: 15,
    pageWallSeconds: 35,
  });

  withTools(['ffmpeg', FFMPEG])('the point lists the CMAF tracks as StreamIndexes, with the encoder\'s times, and serves Smooth fragments with tfxd', async () => {
    const video = play.manifest.split('<StreamIndex').find((x) => /Type="video"/.test(x))!;
    const audio = play.manifest.split('<StreamIndex').find((x) => /Type="audio"/.test(x))!;
    expect(video).toMatch(/Name="video"/);
    expect([...video.matchAll(/Bitrate="(\d+)"/g)].map((m) => Number(m[1])).sort((a, b) => b - a)).toEqual(BITRATES.map((b) => b * 1000));
    expect(audio).toMatch(/Name="audio"[\s\S]*FourCC="AACL"/);
    expect(video).toMatch(/FourCC="H264"/);
    // ffmpeg's CMAF times start at 0 in each track's own timescale (tfdt).
    const t = /<c t="(\d+)"/.exec(video)![1]!;
    expect(t).toBe('0');
    const r = await fetch(`${play.server.base}/ch1.isml/QualityLevels(${BITRATES[1]! * 1000})/Fragments(video=${t})`);
    const body = Buffer.from(await r.arrayBuffer());
    expect(r.status).toBe(200);
    expect(body.includes(Buffer.from('6d1d9b0542d544e680e2141daff757b2', 'hex'))).toBe(true); // tfxd
    const point = (await play.server.handler.origin.resolve('ch1.isml'))!;
    expect(point.streams.map((x) => x.id).sort()).toEqual(['audio.cmfa', ...BITRATES.map((b) => `video-${b}k.cmfv`)].sort());
  });

  playerTests();

  withTools(['ffmpeg', FFMPEG])('the encoder\'s end of stream (its mfra on every track) stops the point', async () => {
    await play.players;
    const { code } = await play.encoder.done;
    expect(code).toBe(0);
    const point = (await play.server.handler.origin.resolve('ch1.isml'))!;
    const end = Date.now() + 10_000;
    while (point.state !== 'Stopped' && Date.now() < end) await new Promise((ok) => setTimeout(ok, 200));
    expect(point.state).toBe('Stopped');
  }, 90_000);
});
