// A process's output handled as bytes: split into lines, searched for telling words, kept as a
// tail and written to the log with the machine's prefix, without a string per line and without
// holding on to the chunks it came in.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { OutputTail, phaseAfter, systemPathIn, TELLING_WORDS } from "../ops/deploy-output.ts";
import { bytesStartWith, eachLine, LineSplitter, MAX_LINE_BYTES, releaseChunk, type LineSink } from "../ops/line-splitter.ts";
import { LogFile } from "../ops/log-file.ts";
import { MachineOutput } from "../ops/machine-output.ts";
import { WordFinder } from "../ops/word-finder.ts";
import { tempDir } from "./support/temp-dir.ts";

const text = (bytes: Buffer, start: number, end: number): string => bytes.toString("utf8", start, end);
const chunksOf = (...parts: (string | Buffer)[]): Buffer[] => parts.map((p) => (typeof p === "string" ? Buffer.from(p) : p));
const decoding = (found: string[]): LineSink => ({ line: (b, s, e) => void found.push(text(b, s, e)), chunkDone() {} });

/**
 * Pushes `chunks` through a LineSplitter into `sink`, each chunk its own buffer, overwritten right
 * after it was pushed, as a freed or reused chunk would be: whoever kept a view of it sees garbage.
 */
function feed(sink: LineSink, chunks: Buffer[], max = MAX_LINE_BYTES): void {
  const splitter = new LineSplitter(sink, max);
  for (const c of chunks) {
    const own = Buffer.from(c);
    splitter.push(own);
    own.fill(0x3f);
  }
  splitter.end();
}

/** The lines a LineSplitter finds in `chunks`, decoded. */
function split(chunks: Buffer[], max = MAX_LINE_BYTES): string[] {
  const found: string[] = [];
  feed(decoding(found), chunks, max);
  return found;
}

// ---------------------------------------------------------------------------------------------
// ops/line-splitter.ts

test("lines split across chunks are joined, also over several chunks", () => {
  assert.deepEqual(split(chunksOf("[lap", "top] buil", "ding\n[laptop] co", "pying\n")), ["[laptop] building", "[laptop] copying"]);
  assert.deepEqual(split(chunksOf("a", "b", "c", "\n")), ["abc"]);
});

test("CRLF line ends are taken, also when CR and LF come in different chunks; a lone CR is kept", () => {
  assert.deepEqual(split(chunksOf("one\r\ntwo\r", "\nthree\r\n")), ["one", "two", "three"]);
  assert.deepEqual(split(chunksOf("a CR \r inside\n")), ["a CR \r inside"]);
});

test("empty lines are lines", () => {
  assert.deepEqual(split(chunksOf("\n\nx\n", "\n")), ["", "", "x", ""]);
});

test("the last line is given even without a line end, and nothing more after a final LF", () => {
  assert.deepEqual(split(chunksOf("first\nlast wo", "rds")), ["first", "last words"]);
  assert.deepEqual(split(chunksOf("only\n")), ["only"]);
  assert.deepEqual(split([]), []);
});

test("a multi-byte character split across chunks stays whole", () => {
  const bytes = Buffer.from("défini → ✅ 🚀\n", "utf8");
  // Cut inside "é" (2 bytes), "→" (3 bytes) and "🚀" (4 bytes).
  const e = bytes.indexOf(0xc3) + 1;
  const arrow = bytes.indexOf(0xe2) + 2;
  const rocket = bytes.indexOf(0xf0) + 3;
  assert.deepEqual(split([bytes.subarray(0, e), bytes.subarray(e, arrow), bytes.subarray(arrow, rocket), bytes.subarray(rocket)]), ["défini → ✅ 🚀"]);
});

test("a very long line is cut into pieces of MAX_LINE_BYTES, in one chunk or arriving without newline", () => {
  const long = "a".repeat(MAX_LINE_BYTES) + "b".repeat(MAX_LINE_BYTES) + "c".repeat(100);
  const pieces = [MAX_LINE_BYTES, MAX_LINE_BYTES, 100];
  const inOne = split(chunksOf(`${long}\nnext\n`));
  assert.deepEqual(inOne.map((l) => l.length), [...pieces, 4]);
  assert.equal(inOne.slice(0, 3).join(""), long);
  const small: Buffer[] = [];
  for (let i = 0; i < long.length; i += 10_000) small.push(Buffer.from(long.slice(i, i + 10_000)));
  const arriving = split(small);
  assert.deepEqual(arriving.map((l) => l.length), pieces);
  assert.equal(arriving.join(""), long);
  const inOneChunkWithoutEnd = split(chunksOf(long));
  assert.deepEqual(inOneChunkWithoutEnd.map((l) => l.length), pieces);
});

test("a long line is never cut inside a character", () => {
  // 10 bytes at most; "✅" is 3 bytes and would straddle byte 10.
  assert.deepEqual(split(chunksOf("abcdefgh✅ijk\n"), 10), ["abcdefgh", "✅ijk"]);
  assert.deepEqual(split(chunksOf("abcdefgh", "✅ijklmnopq", "rs"), 10), ["abcdefgh", "✅ijklmno", "pqrs"]);
});

test("lines inside one chunk are views of it; chunkDone follows each chunk's lines", () => {
  const chunk = Buffer.from("one\ntwo\nthr");
  const events: string[] = [];
  const splitter = new LineSplitter({
    line: (b, s, e) => void events.push(`${b === chunk ? "view" : "copy"} ${text(b, s, e)}${b[e] === 0x0a ? " LF" : ""}`),
    chunkDone: () => void events.push("done"),
  });
  splitter.push(chunk);
  splitter.push(Buffer.from("ee\r\nfour"));
  splitter.end();
  assert.deepEqual(events, ["view one LF", "view two LF", "done", "copy three", "done", "copy four", "done"]);
});

test("eachLine reads a stream's chunks as they come and the last line at its end", async () => {
  const stream = new PassThrough();
  const found: string[] = [];
  const done = eachLine(stream, decoding(found));
  stream.write("[laptop] buil");
  await delay(0);
  stream.write(Buffer.from("ding\r\n[laptop] done"));
  await delay(0);
  assert.deepEqual(found, ["[laptop] building"]);
  stream.end();
  await done;
  assert.deepEqual(found, ["[laptop] building", "[laptop] done"]);
});

test("releaseChunk frees a buffer that is all of its memory, and leaves slices of shared memory alone", () => {
  const own = Buffer.alloc(64 * 1024, 0x61);
  releaseChunk(own);
  assert.equal(own.length, 0, "detached: its memory is gone");
  const pool = Buffer.alloc(1024, 0x62);
  const slice = pool.subarray(10, 20);
  releaseChunk(slice);
  assert.equal(slice.length, 10);
  assert.equal(pool.length, 1024);
});

test("eachLine releases chunks only when asked and when it is the stream's only reader", async () => {
  const run = async (release: boolean, otherReader: boolean): Promise<{ found: string[]; chunk: Buffer }> => {
    const stream = new PassThrough();
    const found: string[] = [];
    const done = eachLine(stream, decoding(found), { releaseChunks: release });
    if (otherReader) stream.on("data", () => {});
    const chunk = Buffer.alloc(16 * 1024, 0x78);
    chunk[chunk.length - 1] = 0x0a;
    stream.end(chunk);
    await done;
    return { found, chunk };
  };
  const alone = await run(true, false);
  assert.equal(alone.found[0]?.length, 16 * 1024 - 1);
  assert.equal(alone.chunk.length, 0, "released");
  assert.equal((await run(false, false)).chunk.length, 16 * 1024);
  assert.equal((await run(true, true)).chunk.length, 16 * 1024, "another reader still sees it");
});

test("bytesStartWith compares only inside the line", () => {
  const b = Buffer.from("[a] x\n[b");
  const prefix = Buffer.from("[a] ");
  assert.equal(bytesStartWith(b, 0, 5, prefix), true);
  assert.equal(bytesStartWith(b, 6, 8, Buffer.from("[b")), true);
  assert.equal(bytesStartWith(b, 6, 8, Buffer.from("[b]")), false);
  assert.equal(bytesStartWith(b, 0, 3, prefix), false);
});

// ---------------------------------------------------------------------------------------------
// ops/word-finder.ts

/** Whether each line of `chunks` holds one of the finder's words, as it says. */
function holds(finder: WordFinder, chunks: Buffer[], max?: number): boolean[] {
  const answers: boolean[] = [];
  feed({ line: (b, s, e) => void answers.push(finder.inLine(b, s, e)), chunkDone: () => finder.chunkDone() }, chunks, max);
  return answers;
}

test("WordFinder finds words in the right lines of a chunk, and in the next chunks", () => {
  const finder = new WordFinder(["cop", "/nix/store/"]);
  const first = "building\ncopying path\nbuilding\nx /nix/store/abc\nno\ncop\n";
  assert.deepEqual(holds(finder, chunksOf(first, "copy\nnothing\nst", "ill /nix/", "store/ here\nend\n")), [
    false,
    true,
    false,
    true,
    false,
    true,
    true,
    false,
    true,
    false,
  ]);
});

test("WordFinder does not count a word cut by the end of a line or by a cut of a long line", () => {
  const finder = new WordFinder(["switch"]);
  const b = Buffer.from("xxswitchyy");
  assert.equal(finder.inLine(b, 0, 5), false, "'xxswi' only");
  assert.equal(finder.inLine(b, 5, 10), false, "'tchyy' only");
  assert.equal(finder.inLine(b, 0, 10), true, "an earlier line is a new search");
  // Pieces of 10 bytes out of the carried-over line: the same buffer, each piece at 0.
  assert.deepEqual(holds(finder, chunksOf("abcd", "efgswitch ", "zzzzzzzzzzswitch\n"), 10), [false, false, true]);
});

test("a line without the telling words neither moves a phase nor names a store path", () => {
  const finder = new WordFinder(TELLING_WORDS);
  const lines = [
    "[laptop] $ nix copy --to ssh-ng://root@laptop.lan /nix/store/wyxh543rx800zrp1zz0l89nscibd7frx-nixos-system-laptop-25.11",
    "[laptop] copying 3 paths...",
    "[laptop] activating the configuration...",
    "[laptop] $ nix-env -p /nix/var/nix/profiles/system --set /nix/store/wyxh543rx800zrp1zz0l89nscibd7frx-nixos-system-laptop-25.11",
    "[laptop] /nix/store/wyxh543rx800zrp1zz0l89nscibd7frx-nixos-system-laptop-25.11/bin/switch-to-configuration switch",
    "/nix/store/wyxh543rx800zrp1zz0l89nscibd7frx-nixos-system-laptop-25.11",
  ];
  for (const line of lines) {
    assert.ok(phaseAfter("building", line) !== "building" || systemPathIn(line) !== undefined, `a telling line: ${line}`);
    const b = Buffer.from(line);
    assert.equal(finder.inLine(b, 0, b.length), true, line);
  }
  const quiet = Buffer.from("[laptop] building output chunk ########");
  assert.equal(finder.inLine(quiet, 0, quiet.length), false);
});

// ---------------------------------------------------------------------------------------------
// ops/deploy-output.ts: OutputTail of bytes

/** An OutputTail fed `chunks` as a deploy does. */
function tailOf(tail: OutputTail, chunks: Buffer[]): OutputTail {
  feed({ line: (b, s, e) => tail.pushBytes(b, s, e), chunkDone: () => tail.chunkDone() }, chunks);
  return tail;
}

test("OutputTail keeps the last lines given as bytes or text, in order, cut and without blanks", () => {
  const chunk = Buffer.from("one\n0123456789abc\n\ntwo ✅\n");
  const tail = tailOf(new OutputTail(3, 10), [chunk]);
  tail.push("clanbot: text");
  assert.deepEqual(tail.get(), ["two ✅", "clanbot: t…"]);
  assert.deepEqual(tail.get(), ["two ✅", "clanbot: t…"], "asking again gives the same");
  assert.deepEqual(tailOf(new OutputTail(5, 10), [chunk]).get(), ["one", "0123456789…", "two ✅"]);
});

test("OutputTail copies what it keeps before a chunk is reused, over many chunks", () => {
  const chunks = Array.from({ length: 40 }, (_, i) => `line ${i}\n${i % 3 === 0 ? "" : `more ${i}\n`}`);
  const tail = tailOf(new OutputTail(4, 100), chunksOf(...chunks, "last wor", "ds"));
  assert.deepEqual(tail.get(), ["line 38", "more 38", "line 39", "last words"]);
});

test("OutputTail cuts long multi-byte lines at maxChars like text lines", () => {
  const line = "✅".repeat(50);
  const tail = tailOf(new OutputTail(2, 10), chunksOf(`${line}\n`));
  tail.push(line);
  assert.deepEqual(tail.get(), [`${"✅".repeat(10)}…`, `${"✅".repeat(10)}…`]);
  const wide = "🚀".repeat(30);
  assert.deepEqual(tailOf(new OutputTail(1, 11), chunksOf(`${wide}\n`)).get(), [`${wide.slice(0, 11)}…`]);
});

// ---------------------------------------------------------------------------------------------
// ops/log-file.ts and ops/machine-output.ts: a machine's output in the log

/** Logs `chunks` as the deploy does, through a MachineOutput; returns what it found telling. */
function logChunks(log: LogFile, prefix: string, chunks: Buffer[], tail = new OutputTail(), secrets: string[] = []): string[] {
  const telling: string[] = [];
  const output = new MachineOutput(log, tail, prefix, secrets, (line) => telling.push(line));
  feed({ line: (b, s, e) => output.line(b, s, e, "stderr"), chunkDone: () => output.chunkDone() }, chunks);
  return telling;
}

test("the log gets every line with the prefix unless it is there, CRLF as LF, cut lines each on a line", async () => {
  const path = join(await tempDir(), "deploy-20.log");
  const log = new LogFile(path, { flushMs: 60_000 });
  log.line("# clanbot deploy #20");
  const long = "x".repeat(MAX_LINE_BYTES + 5);
  logChunks(log, "[laptop] ", chunksOf("[laptop] one\nbare\r\n[laptop] tw", "o\n[laptop] three\n", `${long}\n`, "[lapt", "op] no end"));
  log.line("# ended");
  log.close();
  const want = [
    "# clanbot deploy #20",
    "[laptop] one",
    "[laptop] bare",
    "[laptop] two",
    "[laptop] three",
    `[laptop] ${"x".repeat(MAX_LINE_BYTES)}`,
    "[laptop] xxxxx",
    "[laptop] no end",
    "# ended",
  ];
  assert.equal(await readFile(path, "utf8"), `${want.join("\n")}\n`);
});

test("lines written from their chunk and copied lines keep their order, across flushes and machines", async () => {
  const path = join(await tempDir(), "deploy-21.log");
  const log = new LogFile(path, { chunkBytes: 64, flushMs: 60_000 });
  const lines: string[] = [];
  const a: Buffer[] = [];
  const b: Buffer[] = [];
  for (let c = 0; c < 20; c++) {
    let chunk = "";
    for (let i = 0; i < 7; i++) {
      const line = i % 3 === 0 ? `plain ${c}.${i}` : `[a] line ${c}.${i} ${"y".repeat((c * 7 + i) % 50)}`;
      chunk += `${line}\n`;
      lines.push(line.startsWith("[a] ") ? line : `[a] ${line}`);
    }
    a.push(Buffer.from(chunk));
    b.push(Buffer.from(`[b] from b ${c}\n`));
    lines.push(`[b] from b ${c}`);
  }
  // Two machines' output, a chunk of each in turn, as their 'data' events would come.
  for (let c = 0; c < 20; c++) {
    logChunks(log, "[a] ", [a[c] as Buffer]);
    logChunks(log, "[b] ", [b[c] as Buffer]);
  }
  const expected = `${lines.join("\n")}\n`;
  assert.equal(log.length, Buffer.byteLength(expected));
  log.close();
  assert.equal(await readFile(path, "utf8"), expected);
});

test("a machine's output hands on only the lines with telling words, decoded", async () => {
  const log = new LogFile(join(await tempDir(), "deploy-24.log"), { flushMs: 60_000 });
  const telling = logChunks(log, "[m] ", chunksOf("[m] building foo\n[m] copying path '/nix/store/x' to 'ssh-ng://m'\n[m] building bar\n", "[m] activating the configuration...\n"));
  log.close();
  assert.deepEqual(telling, ["[m] copying path '/nix/store/x' to 'ssh-ng://m'", "[m] activating the configuration..."]);
});

test("logged bytes reach the disk within flushMs, and nothing is written after close", async () => {
  const path = join(await tempDir(), "deploy-22.log");
  const log = new LogFile(path, { flushMs: 30 });
  logChunks(log, "[laptop] ", chunksOf("[laptop] building\n"));
  await delay(200);
  assert.equal(await readFile(path, "utf8"), "[laptop] building\n");
  log.close();
  const b = Buffer.from("late\n");
  log.lineBytes(b, 0, 4);
  log.line("later");
  assert.equal(await readFile(path, "utf8"), "[laptop] building\n");
});

test("a line larger than the log's buffer is written whole", async () => {
  const path = join(await tempDir(), "deploy-23.log");
  const log = new LogFile(path, { chunkBytes: 16, flushMs: 60_000 });
  log.line("short");
  log.line("a line much longer than sixteen bytes");
  const b = Buffer.from("another line longer than the buffer\n");
  log.lineBytes(b, 0, b.length - 1, Buffer.from("[m] "));
  log.lineBytes(b, 0, b.length - 1);
  log.chunkDone();
  log.close();
  assert.equal(
    await readFile(path, "utf8"),
    "short\na line much longer than sixteen bytes\n[m] another line longer than the buffer\nanother line longer than the buffer\n",
  );
});

test("an installer's password is masked in the log, the tail and telling lines, even when a pipe chunk splits it", async () => {
  const path = join(await tempDir(), "install-21.log");
  const log = new LogFile(path);
  const tail = new OutputTail();
  const telling = logChunks(
    log,
    "[newpc] ",
    [Buffer.from("reachable via Remote(address='10.0.0.2', password='scabbed-def"), Buffer.from("ender-headlock')\n[newpc] ### Done! ###\n")],
    tail,
    ["scabbed-defender-headlock"],
  );
  log.close();
  const text = await readFile(path, "utf8");
  assert.equal(text, "[newpc] reachable via Remote(address='10.0.0.2', password='********')\n[newpc] ### Done! ###\n");
  assert.deepEqual(tail.get(), ["reachable via Remote(address='10.0.0.2', password='********')", "[newpc] ### Done! ###"]);
  assert.deepEqual(telling, ["[newpc] ### Done! ###"]);
});
