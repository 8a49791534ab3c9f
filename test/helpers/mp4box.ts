/**
 * Reading fragmented MP4 the way a DASH/HLS player's demuxer does, with the `mp4box` package (a test
 * oracle only): segments are appended one by one and every sample of one track extracted.
 */
import { MP4BoxBuffer, createFile, type Sample as Mp4boxSample } from 'mp4box';

/** What mp4box found in a track. */
export interface Extracted {
  codec: string;
  timescale: number;
  samples: Array<{ dts: number; cts: number; duration: number; size: number; sync: boolean; data: Buffer }>;
}

/** Appends the parts to mp4box one by one (with their file offsets) and extracts every sample of the track. */
export function mp4boxExtract(trackId: number, parts: Buffer[]): Extracted {
  const errors = jest.spyOn(console, 'error').mockImplementation(() => undefined);
  try {
    const file = createFile(true);
    let failure: string | undefined;
    let codec = '';
    let timescale = 0;
    const samples: Extracted['samples'] = [];
    file.onError = (module, message) => (failure = `${module}: ${message}`);
    file.onReady = (info) => {
      expect(info.tracks.map((t) => t.id)).toEqual([trackId]);
      codec = info.tracks[0]!.codec;
      timescale = info.tracks[0]!.timescale;
      file.setExtractionOptions(trackId, undefined, { nbSamples: 1_000_000 });
      file.start();
    };
    file.onSamples = (id: number, _user: unknown, batch: Mp4boxSample[]) => {
      expect(id).toBe(trackId);
      for (const s of batch) {
        samples.push({ dts: s.dts, cts: s.cts, duration: s.duration, size: s.size, sync: s.is_sync, data: Buffer.from(s.data!) });
      }
    };
    let fileStart = 0;
    for (const part of parts) {
      const ab = part.buffer.slice(part.byteOffset, part.byteOffset + part.length) as ArrayBuffer;
      file.appendBuffer(MP4BoxBuffer.fromArrayBuffer(ab, fileStart));
      fileStart += part.length;
    }
    file.flush();
    expect(failure).toBeUndefined();
    expect(errors).not.toHaveBeenCalled();
    return { codec, timescale, samples };
  } finally {
    errors.mockRestore();
  }
}

