/**
 * Writing a small file whole, for the state file, definitions and archive manifests alike.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';

/**
 * Replaces `file` with `data` atomically: written to a temp file of a unique name beside it (created
 * exclusively, so never through an existing file or link), then renamed over it. The temp file is
 * removed when either step fails.
 */
export async function replaceFile(file: string, data: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await fs.writeFile(tmp, data, { flag: 'wx' });
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
}
