import { createInterface } from "node:readline";
import type { Message } from "../commands/format.ts";
import type { Attachment } from "../commands/types.ts";
import { commandLineOf } from "./addressing.ts";
import type { Dispatcher, ReplyChannel } from "./dispatcher.ts";

export interface ConsoleOptions {
  dispatcher: Dispatcher;
  clan: string;
  prefix: string;
  user: { id: string; powerLevel: number };
  input: NodeJS.ReadableStream;
  output: NodeJS.WritableStream;
  interactive: boolean;
  now(): number;
  /** Where files a command posts go, since a terminal cannot show them: returns the path written. */
  saveFile(file: Attachment): Promise<string>;
}

/** Reactions worth printing in a terminal: the outcome, not "taken". */
const SHOWN_REACTIONS = new Set(["✅", "❌", "⛔"]);

function channelFor(out: NodeJS.WritableStream, saveFile: ConsoleOptions["saveFile"]): ReplyChannel {
  const print = (m: Message, mark = ""): void => {
    out.write(`${mark}${m.text}\n`);
  };
  return {
    async reply(message) {
      print(message);
      return { edit: async (m) => print(m, "~ ") };
    },
    async replyFile(file) {
      const path = await saveFile(file);
      out.write(`[${file.image ? "image" : "file"} ${file.name}, ${file.data.byteLength} bytes: ${path}]\n`);
    },
    async react(key) {
      if (SHOWN_REACTIONS.has(key)) out.write(`[${key}]\n`);
    },
  };
}

/**
 * A front end with no homeserver: each line is a command, run through the same dispatcher as
 * Matrix messages, as a configurable user. Lines run one after another; end of input ends it.
 */
export async function runConsole(o: ConsoleOptions): Promise<void> {
  const rl = createInterface({ input: o.input, output: o.interactive ? o.output : undefined, terminal: o.interactive });
  const prompt = (): void => {
    if (o.interactive) rl.prompt();
  };
  rl.setPrompt(`${o.clan}> `);
  if (o.interactive) {
    o.output.write(`clanbot console on clan '${o.clan}' as ${o.user.id} (power level ${o.user.powerLevel}). Try ${o.prefix}help; Ctrl-D quits.\n`);
  }
  prompt();
  for await (const raw of rl) {
    const text = raw.trim();
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
        channelFor(o.output, o.saveFile),
      );
    }
    prompt();
  }
}
