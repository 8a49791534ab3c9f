/**
 * Where and how the store on disk keeps its files: its options, and its folders, one per store, named
 * `<16 hex of sha256(point)>-<8 random hex>` and holding an `owner` file with the pid of the process
 * that made it. A folder whose process is gone is garbage (its files never outlive that process),
 * which the next `diskStore()` on the same folder removes. Nothing that does not match the pattern is
 * ever touched.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import createDebug from 'debug';
import { SmoothError } from '../errors';

const debug = createDebug('live-smooth:store');

/** Options of `diskStore()`. */
export interface DiskStoreOptions {
  /**
   * A folder given to live-smooth: each store makes a folder of its own in it. Created when missing.
   * Only folders named like a store's are ever removed from it, and only when their process is gone.
   */
  folder: string;
  /** Byte budget on disk per publishing point. Default: the `maxBytes` the point passes to the factory. */
  maxBytes?: number;
  /**
   * Bytes of fragments a store may hold in memory while they wait to be written; a put beyond it is
   * refused, so a disk slower than the ingest costs fragments, not unbounded memory. Default: 64 MiB.
   */
  maxPendingBytes?: number;
  /** Size at which a track's current file is closed and a new one started. Default: 64 MiB. */
  segmentBytes?: number;
}

const MIB = 1024 * 1024;

/** {@link DiskStoreOptions} validated, with defaults. */
export interface ResolvedDiskOptions {
  folder: string;
  maxBytes: number | undefined;
  maxPendingBytes: number;
  segmentBytes: number;
}

/** An invalid option of the store on disk. */
export function invalid(message: string): SmoothError {
  return new SmoothError('ERR_INVALID_OPTION', message);
}

function positive(value: unknown, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw invalid(`options.${name} must be a positive finite number`);
  }
  return value;
}

/**
 * Validates the options and applies the defaults.
 * @throws SmoothError ERR_INVALID_OPTION naming the option
 */
export function resolveDiskOptions(options: DiskStoreOptions): ResolvedDiskOptions {
  if (typeof options !== 'object' || options === null) throw invalid('options.folder must be given: options must be an object');
  const { folder } = options;
  if (typeof folder !== 'string' || folder === '' || folder.includes('\0')) {
    throw invalid('options.folder must be a non-empty path');
  }
  return {
    // Resolved once: a later process.chdir() must not move the store's files.
    folder: resolve(folder),
    maxBytes: positive(options.maxBytes, 'maxBytes'),
    maxPendingBytes: positive(options.maxPendingBytes, 'maxPendingBytes') ?? 64 * MIB,
    segmentBytes: positive(options.segmentBytes, 'segmentBytes') ?? 64 * MIB,
  };
}

/** A per-store folder (`final`) or one being made (`tmp`, renamed once its `owner` file is written). */
const STORE_FOLDER = /^[0-9a-f]{16}-[0-9a-f]{8}(\.tmp)?$/;
const OWNER = 'owner';

/** The `code` of a Node.js system error, if it has one. */
export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The pid in a store folder's `owner` file; `undefined` when the file is missing or not a pid; `null` when it cannot be read. */
function readOwner(dir: string): number | undefined | null {
  let text: string;
  try {
    text = readFileSync(join(dir, OWNER), 'utf8');
  } catch (err) {
    return errorCode(err) === 'ENOENT' ? undefined : null;
  }
  if (!/^[1-9][0-9]{0,9}\n?$/.test(text)) return undefined;
  const pid = Number.parseInt(text, 10);
  return pid <= 0x7fffffff ? pid : undefined;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else.
    return errorCode(err) !== 'ESRCH';
  }
}

/**
 * Removes the store folders in `folder` whose process is gone; a folder that cannot be judged is left.
 * Never throws: a failed sweep leaves garbage, not a broken setup.
 */
export function removeStaleFolders(folder: string): void {
  let entries: import('node:fs').Dirent[];
  try {
    entries = readdirSync(folder, { withFileTypes: true });
  } catch (err) {
    debug('cannot look for stale store folders in %s: %O', folder, err);
    return;
  }
  for (const entry of entries) {
    const match = STORE_FOLDER.exec(entry.name);
    if (!match || !entry.isDirectory()) continue;
    const dir = join(folder, entry.name);
    const pid = readOwner(dir);
    if (pid === null) continue;
    // A `.tmp` folder without an owner may be one another process is making right now.
    const stale = pid === undefined ? match[1] === undefined : !isAlive(pid);
    if (!stale) continue;
    try {
      rmSync(dir, { recursive: true, force: true });
      debug('removed stale store folder %s (owner %s)', dir, pid ?? 'missing');
    } catch (err) {
      debug('cannot remove stale store folder %s: %O', dir, err);
    }
  }
}

/**
 * Makes a new store folder in `root` for the store named by `prefix`. It is made under another name
 * and renamed once `owner` is in it: a folder with the final name always says whose it is, so another
 * process's sweep never takes a live one for garbage.
 */
export async function makeStoreFolder(root: string, prefix: string): Promise<string> {
  const dir = join(root, `${prefix}-${randomBytes(4).toString('hex')}`);
  const tmp = `${dir}.tmp`;
  await mkdir(root, { recursive: true });
  await mkdir(tmp);
  try {
    await writeFile(join(tmp, OWNER), `${process.pid}\n`);
    await rename(tmp, dir);
  } catch (err) {
    await rm(tmp, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  debug('store folder %s', dir);
  return dir;
}
