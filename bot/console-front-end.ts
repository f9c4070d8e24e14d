import { readFile } from "node:fs/promises";
import { extname } from "node:path";
import { createInterface } from "node:readline";
import type { Message } from "../commands/format.ts";
import type { Attachment } from "../commands/types.ts";
import { commandLineOf } from "./addressing.ts";
import type { Dispatcher, ReplyChannel } from "./dispatcher.ts";
import { terminalText } from "./terminal-text.ts";

export interface ConsoleOptions {
  dispatcher: Dispatcher;
  clan: string;
  prefix: string;
  user: { id: string; powerLevel: number };
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  interactive: boolean;
  /** Bold, colours (ANSI): for a terminal, not for a pipe. */
  color?: boolean;
  now(): number;
  /** Draws a QR code in the terminal (a join code), besides saving its image. */
  drawQr?: (text: string) => Promise<string>;
  /** Where files a command posts go, since a terminal cannot show them: returns the path written. */
  saveFile(file: Attachment): Promise<string>;
}

const IMAGE_TYPES: Record<string, string> = { ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png" };

/** Reactions worth printing in a terminal: the outcome, not "taken". */
const SHOWN_REACTIONS = new Set(["✅", "❌", "⛔"]);

/**
 * The console's lines, read one at a time by whoever needs the next: the command loop, or a
 * question waiting for its answer. A line read for a question that timed out is not lost.
 */
class LineSource {
  private readonly lines: AsyncIterator<string>;
  private pending: Promise<IteratorResult<string>> | undefined;
  constructor(lines: AsyncIterable<string>) {
    this.lines = lines[Symbol.asyncIterator]();
  }

  next(): Promise<IteratorResult<string>> {
    const p = this.pending ?? this.lines.next();
    this.pending = p;
    void p.then(() => {
      if (this.pending === p) this.pending = undefined;
    });
    return p;
  }

  /** The next line within `ms`, or undefined (the line, when it comes, stays for the next reader). */
  async within(ms: number): Promise<string | undefined> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), ms)));
    const r = await Promise.race([this.next(), late]);
    clearTimeout(timer);
    if (!r || r.done) return undefined;
    return r.value;
  }
}

function channelFor(o: ConsoleOptions, lines: LineSource): ReplyChannel {
  const { output: out, saveFile, interactive } = o;
  const render = (m: Message): string => terminalText(m.html, o.color === true);
  const print = (m: Message): void => {
    out.write(`${render(m)}\n`);
  };
  /** A message that moves (a deploy's status): each edit prints only the lines that changed. */
  const shown = (first: Message) => {
    let last = render(first).split("\n");
    return {
      edit: async (m: Message) => {
        const next = render(m).split("\n");
        const seen = new Set(last);
        const fresh = next.filter((l) => l.trim() && !seen.has(l));
        if (fresh.length) out.write(`${fresh.join("\n")}\n`);
        last = next;
      },
    };
  };
  return {
    async reply(message) {
      print(message);
      return shown(message);
    },
    async replyFile(file) {
      if (file.qr !== undefined && o.drawQr) out.write(`${await o.drawQr(file.qr)}\n`);
      const path = await saveFile(file);
      out.write(`[${file.image ? "image" : "file"} ${file.name}, ${file.data.byteLength} bytes: ${path}]\n`);
    },
    async react(key) {
      if (SHOWN_REACTIONS.has(key)) out.write(`[${key}]\n`);
    },
    async ask(message, _from, timeoutMs) {
      print(message);
      if (interactive) out.write("Confirm? [y/N] ");
      const answer = (await lines.within(timeoutMs))?.trim().toLowerCase() ?? "";
      return { confirmed: ["y", "yes", "✅"].includes(answer), question: shown(message) };
    },
    async askFor(message, _from, timeoutMs) {
      print(message);
      if (interactive) out.write("Paste the text, or the path of an image file: ");
      const answer = (await lines.within(timeoutMs))?.trim();
      if (!answer) return undefined;
      // What is typed here is shown to nobody else: there is nothing to take back.
      const remove = async (): Promise<boolean> => true;
      if (answer.startsWith("{") || !IMAGE_TYPES[extname(answer).toLowerCase()]) return { content: { kind: "text", text: answer }, remove };
      return { content: { kind: "image", data: await readFile(answer), mimetype: IMAGE_TYPES[extname(answer).toLowerCase()] as string }, remove };
    },
  };
}

/**
 * A front end with no homeserver: each line is a command, run through the same dispatcher as
 * Matrix messages, as a configurable user. Lines run one after another; end of input ends it.
 */
export async function runConsole(o: ConsoleOptions): Promise<void> {
  const rl = createInterface({ input: o.input, output: o.interactive ? o.output : undefined, terminal: o.interactive });
  // End of input (Ctrl-D) or Ctrl-C closes the lines; a running command still ends before the console does.
  let closed = false;
  rl.on("close", () => (closed = true));
  rl.on("SIGINT", () => {
    o.output.write("\nStopping: a running command ends first.\n");
    rl.close();
  });
  const prompt = (): void => {
    if (o.interactive && !closed) rl.prompt();
  };
  rl.setPrompt(`${o.clan}> `);
  if (o.interactive) {
    o.output.write(`clanbot console on clan '${o.clan}' as ${o.user.id} (power level ${o.user.powerLevel}). Try ${o.prefix}help; Ctrl-D quits.\n`);
  }
  prompt();
  const lines = new LineSource(rl);
  for (let r = await lines.next(); !r.done; r = await lines.next()) {
    const text = r.value.trim();
    if (text) {
      // The console talks to nobody else, so the prefix is optional.
      const line = commandLineOf(text, { prefix: o.prefix, names: [] }) ?? text;
      await o.dispatcher.dispatch(
        {
          clan: o.clan,
          room: "console",
          eventId: undefined,
          sentAt: o.now(),
          sender: { id: o.user.id, name: o.user.id, powerLevel: o.user.powerLevel },
          line,
        },
        channelFor(o, lines),
      );
    }
    prompt();
  }
}
