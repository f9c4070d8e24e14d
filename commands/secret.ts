import { resolveMachine } from "./deploy-targets.ts";
import { BadInput, Refusal, UserError } from "./errors.ts";
import { bold, code, concat, formatDuration, type Message } from "./format.ts";
import { describeCommand } from "./help.ts";
import { nearest } from "./suggest.ts";
import type { CommandContext, CommandSpec } from "./types.ts";

/** `generator/file` as clan names vars; anything else never reaches a command line. */
const VAR_ID = /^[A-Za-z0-9_][A-Za-z0-9_.@+-]*\/[A-Za-z0-9_][A-Za-z0-9_.@+-]*$/;

/** Why this is not a place for a secret, and how to get to one; undefined in an encrypted direct chat. */
export function placeProblem(ctx: Pick<CommandContext, "place" | "prefix">, line: string): string | undefined {
  const p = ctx.place;
  if (!p) return "Secrets are set only on Matrix, in an encrypted direct chat with me: not here.";
  const how =
    `Open a direct chat with me (in Element: start a chat with me; direct chats are encrypted from the start), ` +
    `and send ${line} there. I accept direct chats from people of this clan's room.`;
  if (!p.direct) return `This room is shared: a value sent here would be seen by everyone in it and stay in their history. ${how}`;
  if (!p.encrypted) return `This chat is not encrypted: the homeserver would keep the value in clear. ${how.replace("Open a direct chat", "Open a new direct chat")}`;
  return undefined;
}

const setCommand: CommandSpec = {
  name: "secret set",
  summary: "Sets a clan var (clan vars set) to a value you send as your next message; only in an encrypted direct chat with me.",
  level: "admin",
  args: [
    { name: "machine", summary: "the machine", required: true },
    { name: "generator/file", summary: "the var, as !vars <machine> lists it", required: true },
  ],
  flags: [],
  details:
    "I ask for the value; your next message in the chat goes to clan vars set on its standard input (never on a command line, never in a file), " +
    "then I remove it. The answer names the var and clan's commit, never the value. Never type the value on the command line itself.",
  async run(ctx, input): Promise<Message> {
    const [word, varId] = input.args as [string, string];
    const line = `${ctx.prefix}secret set ${word} ${varId}`;
    if (ctx.extraWords > 0) {
      // A value typed on the command line: out of the room at once, never used.
      const removed = await ctx.removeCommand("it held a secret");
      throw new Refusal(
        `Never type the value on the command line. ${removed ? "I removed your message" : "I could not remove your message: delete it yourself"}, and did not use what it held. ` +
          `Send ${line} alone; I then ask for the value.`,
      );
    }
    const problem = placeProblem(ctx, line);
    if (problem) throw new Refusal(problem);
    const machine = await resolveMachine(ctx, word);
    if (!VAR_ID.test(varId)) throw new BadInput(`'${varId.slice(0, 60)}' is not a var: it is generator/file, as ${ctx.prefix}vars ${machine} lists them.`);
    if (!ctx.clan.vars || !ctx.clan.setVar) throw new UserError("Setting vars needs the clan CLI, which this bot is not set up with.");
    const vars = await ctx.clan.vars(machine, ctx.signal);
    if (!vars.some((v) => v.id === varId)) {
      const guess = nearest(varId, vars.map((v) => v.id));
      throw new BadInput(`${machine} has no var ${varId}.${guess !== undefined ? ` Did you mean ${guess}?` : ""} ${ctx.prefix}vars ${machine} lists them.`);
    }
    const wait = ctx.installReplyTimeoutMs;
    const reply = await ctx.askFor(
      concat(
        bold(`Send me the value of ${varId} for ${machine}`),
        ` as your next message here, within ${formatDuration(wait)}. I pass it to `,
        code(`clan vars set ${machine} ${varId}`),
        " on its standard input and remove your message right after; I never show, log or keep it.",
      ),
      wait,
      { anyText: true },
    );
    if (!reply) throw new UserError(`No value came within ${formatDuration(wait)}: nothing was set. Send ${line} again when you have it.`);
    if (reply.content.kind !== "text") {
      await reply.remove("not a value for clan vars set");
      throw new BadInput("That was not a text message: nothing was set. Send the value as text.");
    }
    const value = Buffer.from(reply.content.text, "utf8");
    let removed = false;
    let commit: string | undefined;
    try {
      ({ commit } = await ctx.clan.setVar(machine, varId, value, ctx.signal));
    } finally {
      value.fill(0);
      removed = await reply.remove("a secret for clan vars set");
    }
    return concat(
      `✅ Set ${varId} of ${machine}`,
      commit ? concat("; clan committed it: ", code(commit)) : " (the flake is not a git checkout: nothing was committed)",
      ". ",
      removed ? "Your message with the value is removed." : "I could not remove your message with the value: delete it yourself.",
      " Deploy the machine to put it in place.",
    );
  },
};

export const secretCommand: CommandSpec = {
  name: "secret",
  summary: "Sets clan vars from an encrypted direct chat with me: secret set.",
  level: "admin",
  args: [],
  flags: [],
  keepWords: 4,
  subcommands: [setCommand],
  async run(ctx) {
    return describeCommand(secretCommand, ctx.prefix, ctx.thresholds);
  },
};
