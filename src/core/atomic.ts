/**
 * Durable file writes. `writeFileAtomic` replaces a file atomically: write a sibling
 * temporary file, flush it to disk, rename it over the target, and flush the folder (where
 * the platform allows) so the rename itself survives a power cut. Readers see the old file
 * or the new one, never a half-written one. The one implementation every writer in the
 * project uses: checkpoints, tokenizers, data sets, metrics, reports. `writeFileDurable`
 * and `fsyncDir` are its two halves, for a folder written as a whole (a checkpoint: every
 * file flushed inside a temporary folder, the folder flushed, renamed into place, the
 * parent flushed). `makeDirs` is `mkdir -p` reporting the real cause of a failure (a
 * read-only file system, a missing permission) where Node's recursive mkdir says ENOENT.
 * Errors name the path. Node built-ins only.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

let counter = 0;

/** `error` with the path it concerns in front (and its errno code kept), unless the message already names it. */
function naming(path: string, error: unknown, what = 'cannot write'): Error {
  const e = error as NodeJS.ErrnoException;
  if (typeof e?.message === 'string' && e.message.startsWith(`${what} `)) return e;
  const out = new Error(`${what} ${path}: ${e?.message ?? String(error)}`) as NodeJS.ErrnoException;
  if (e?.code) out.code = e.code;
  return out;
}

/**
 * `mkdir -p dir`. Node's recursive mkdir reports ENOENT when an ancestor cannot be created
 * (on a read-only mount, say) and EEXIST when a file is in the way; this reports the real
 * cause (EROFS, EACCES, "... is a file"), naming the folder.
 */
export function makeDirs(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (e) {
    let existing = dir;
    while (!existsSync(existing) && dirname(existing) !== existing) existing = dirname(existing);
    if (existsSync(existing) && !statSync(existing).isDirectory()) {
      const error = new Error(`cannot create folder ${dir}: ${existing} is a file, not a folder`) as NodeJS.ErrnoException;
      error.code = 'ENOTDIR';
      throw error;
    }
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' && existing !== dir) {
      let missing = dir;
      while (dirname(missing) !== existing) missing = dirname(missing);
      try {
        mkdirSync(missing); // the first level alone: its error is the real one
      } catch (cause) {
        throw naming(dir, cause, 'cannot create folder');
      }
    }
    throw naming(dir, e, 'cannot create folder');
  }
}

/** Flushes a folder's entries (files created or renamed in it) to disk; a no-op where the platform cannot. */
export function fsyncDir(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return; // some platforms cannot open a folder for reading
  }
  try {
    fsyncSync(fd);
  } catch {
    // some platforms (and file systems) cannot fsync a folder; the files themselves are flushed
  } finally {
    closeSync(fd);
  }
}

/** Writes `data` to `path` (created or truncated) and flushes it to disk before returning. Not atomic by itself. */
export function writeFileDurable(path: string, data: string | Uint8Array): void {
  let fd: number;
  try {
    fd = openSync(path, 'w');
  } catch (e) {
    throw naming(path, e);
  }
  try {
    const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let off = 0;
    while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
  } catch (e) {
    throw naming(path, e);
  } finally {
    closeSync(fd);
  }
}

export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  makeDirs(dirname(path));
  const tmp = `${path}.${process.pid}.${counter++}.tmp`;
  try {
    writeFileDurable(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw naming(path, e);
  }
  fsyncDir(dirname(path));
}

/** `JSON.stringify(value, null, 2)` plus a final newline, written atomically. */
export function writeJsonAtomic(path: string, value: unknown): void {
  writeFileAtomic(path, `${JSON.stringify(value, null, 2)}\n`);
}
