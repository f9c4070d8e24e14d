import { open } from "node:fs/promises";

/** The last `lines` lines of a file, reading at most its last `maxBytes`; none when it does not exist. */
export async function readTail(path: string, lines: number, maxBytes = 64 * 1024): Promise<string[]> {
  let file;
  try {
    file = await open(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  try {
    const { size } = await file.stat();
    const start = Math.max(0, size - maxBytes);
    const buf = Buffer.alloc(size - start);
    await file.read(buf, 0, buf.length, start);
    const all = buf.toString("utf8").split("\n");
    // A cut first line is only part of a line; a final "" is the file's last newline.
    if (start > 0) all.shift();
    if (all.at(-1) === "") all.pop();
    return all.slice(-lines);
  } finally {
    await file.close();
  }
}
