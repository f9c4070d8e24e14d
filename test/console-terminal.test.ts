// The console as a terminal front end: formatting from the HTML, edits, QR codes, end of input.

import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { test } from "node:test";
import { runConsole } from "../bot/console-front-end.ts";
import type { Dispatcher, Incoming, ReplyChannel } from "../bot/dispatcher.ts";
import { terminalText } from "../bot/terminal-text.ts";
import { bold, code, concat, paragraphs, table } from "../commands/format.ts";
import { terminalQr } from "../ops/qr-terminal.ts";

test("terminal text: bold and code in ANSI for a terminal, no Matrix markup either way, tables aligned", () => {
  const m = paragraphs(concat(bold("Deploy #5"), " of ", code("laptop")), table(["Machine", "Tags"], [[code("nas"), "servers"], ["laptop", "family"]]));
  const plain = terminalText(m.html, false);
  assert.equal(plain, "Deploy #5 of laptop\n\nMachine  Tags\nnas      servers\nlaptop   family");
  const color = terminalText(m.html, true);
  assert.match(color, /\x1b\[1mDeploy #5\x1b\[0m of \x1b\[36mlaptop\x1b\[0m/);
  assert.match(color, /\x1b\[36mnas\x1b\[0m      servers/);
  assert.equal(terminalText("<ul><li>a &amp; b</li><li><a href=\"https://x.org/?a&amp;b\">link</a></li></ul>", false), "• a & b\n• link (https://x.org/?a&b)");
});

/** A console over pipes, with a dispatcher that runs `work` for each line. */
function consoleWith(work: (msg: Incoming, channel: ReplyChannel) => Promise<void>, interactive: boolean) {
  const input = new PassThrough();
  const output = new PassThrough();
  let text = "";
  output.on("data", (d: Buffer) => (text += d.toString()));
  const dispatcher = { dispatch: work } as unknown as Dispatcher;
  const saved: string[] = [];
  const done = runConsole({
    dispatcher,
    clan: "home",
    prefix: "!",
    user: { id: "@me:home", powerLevel: 100 },
    input,
    output,
    interactive,
    now: () => 0,
    drawQr: terminalQr,
    saveFile: async (file) => {
      saved.push(file.name);
      return `/tmp/x/${file.name}`;
    },
  });
  return { input, done, text: () => text, saved };
}

test("Ctrl-D while a command runs: it ends first, then the console closes cleanly (no ERR_USE_AFTER_CLOSE)", async () => {
  let finish = (): void => undefined;
  const c = consoleWith(async (_msg, channel) => {
    await new Promise<void>((resolve) => (finish = resolve));
    await channel.reply(concat("deployed"));
    await channel.react("✅");
  }, true);
  c.input.write("deploy laptop\n");
  await new Promise((r) => setTimeout(r, 50));
  c.input.end();
  await new Promise((r) => setTimeout(r, 50));
  finish();
  await c.done;
  assert.match(c.text(), /deployed\n\[✅\]\n/);
});

test("a status message that moves prints only its new lines; a join code's QR code is drawn in the terminal", async () => {
  const c = consoleWith(async (_msg, channel) => {
    const status = await channel.reply(paragraphs(bold("Deploy #1"), "⏳ laptop: queued"));
    await status.edit(paragraphs(bold("Deploy #1"), "🔨 laptop: building"));
    await status.edit(paragraphs(bold("Deploy #1"), "✅ laptop: done"));
    await channel.replyFile({ name: "invite-1.png", mimetype: "image/png", data: new Uint8Array(3), image: { width: 1, height: 1 }, qr: "https://join.example/join/abc" });
  }, false);
  c.input.end("deploy laptop\n");
  await c.done;
  assert.equal(c.text().split("\n").slice(0, 5).join("\n"), "Deploy #1\n\n⏳ laptop: queued\n🔨 laptop: building\n✅ laptop: done");
  assert.doesNotMatch(c.text(), /~ /);
  assert.match(c.text(), /[▀▄█]/);
  assert.match(c.text(), /\[image invite-1\.png, 3 bytes: \/tmp\/x\/invite-1\.png\]/);
});
