/**
 * Locating the external tools the integration tests drive (ffmpeg, GStreamer, VLC, Chromium). Outside CI a
 * missing tool skips its tests with a message; with CI=true it fails them, so CI never passes by
 * skipping.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

export const inCI = process.env.CI === 'true' || process.env.CI === '1';

function onPath(cmd: string): string | undefined {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Debian's ffmpeg (newer, preferred), else FFMPEG_PATH, else the static build from the npm devDependency. */
export function ffmpegPath(): string | undefined {
  if (process.env.FFMPEG_PATH && existsSync(process.env.FFMPEG_PATH)) return process.env.FFMPEG_PATH;
  return onPath('ffmpeg') ?? npmFfmpegPath();
}

/** The static ffmpeg shipped by `@ffmpeg-installer/ffmpeg`, if installed. */
export function npmFfmpegPath(): string | undefined {
  try {
    const p = (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
    return existsSync(p) ? p : undefined;
  } catch {
    return undefined;
  }
}

export function gstLaunchPath(): string | undefined {
  return onPath('gst-launch-1.0');
}

/** VLC 3: `vlc`, else `cvlc` (a script that starts it without a GUI); `runVlc` (helpers/vlc.ts) makes it headless. */
export function vlcPath(): string | undefined {
  return onPath('vlc') ?? onPath('cvlc');
}

export function chromiumPath(): string | undefined {
  for (const p of [process.env.CHROMIUM_PATH, '/usr/lib/chromium/chromium', '/usr/bin/chromium']) {
    if (p && existsSync(p)) return p;
  }
  return undefined;
}

/**
 * `it` when the tool exists; otherwise `it.skip` with a note outside CI, and a failing test in CI.
 */
export function withTool(name: string, path: string | undefined): jest.It {
  if (path) return it;
  if (inCI) {
    return ((title: string) =>
      it(title, () => {
        throw new Error(`${name} is required in CI but was not found; .ci/run installs it`);
      })) as unknown as jest.It;
  }
  console.warn(`${name} not found: skipping its tests (they fail in CI)`);
  return it.skip;
}

/** ffprobe next to the ffmpeg in use, else on the PATH. */
export function ffprobePath(): string | undefined {
  const ffmpeg = ffmpegPath();
  const sibling = ffmpeg && ffmpeg.replace(/ffmpeg$/, 'ffprobe');
  if (sibling && sibling !== ffmpeg && existsSync(sibling)) return sibling;
  return onPath('ffprobe');
}

/** `it` when every tool exists; else {@link withTool}'s skip (or CI failure) for the first missing one. */
export function withTools(...tools: Array<[string, string | undefined]>): jest.It {
  const missing = tools.find(([, p]) => !p);
  return missing ? withTool(missing[0], undefined) : it;
}
