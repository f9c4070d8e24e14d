import { confirmFirst } from "./confirm-first.ts";
import { SAFE_NAME } from "./deploy-types.ts";
import { resolveMachine } from "./deploy-targets.ts";
import { runDeploy } from "./deploy.ts";
import { BadInput, ReportedFailure, UserError } from "./errors.ts";
import { bold, code, concat, italic, paragraphs, table, type Message, type Piece } from "./format.ts";
import { nearest } from "./suggest.ts";
import type { CommandContext, CommandInput, CommandSpec, VarEntry } from "./types.ts";

/** Public values longer than this (keys, certificates) are not shown, only that they are set. */
export const SHORT_VALUE = 64;

const GENERATOR_FLAG = { name: "generator", type: "string", placeholder: "G", summary: "only this generator's vars" } as const;

async function machineVars(ctx: CommandContext, machine: string): Promise<VarEntry[]> {
  if (!ctx.clan.vars) throw new UserError("Listing vars needs the clan CLI, which this bot is not set up with.");
  return ctx.clan.vars(machine, ctx.signal);
}

/** The generator named by --generator, checked against the machine's vars. */
function generatorOf(input: CommandInput, machine: string, vars: readonly VarEntry[], prefix: string): string | undefined {
  const g = input.flags["generator"] as string | undefined;
  if (g === undefined) return undefined;
  const known = [...new Set(vars.map((v) => v.generator))];
  if (!SAFE_NAME.test(g) || !known.includes(g)) {
    const guess = nearest(g, known);
    throw new BadInput(
      `${machine} has no vars generator '${g.slice(0, 60)}'.${guess !== undefined ? ` Did you mean '${guess}'?` : ""} ` +
        (known.length ? `It has ${known.join(", ")}.` : `${prefix}vars ${machine} lists its vars.`),
    );
  }
  return g;
}

function shown(v: VarEntry): Piece {
  if (v.state === "missing") return "❔ not set";
  if (v.state === "secret") return "🔒 set (secret)";
  const value = v.value ?? "";
  if (value.length <= SHORT_VALUE && !value.includes("\n")) return concat("set: ", code(value));
  return `set (public, ${value.length} characters, not shown)`;
}
/** The vars table: generator/file and whether set; secret values never, public ones only when short. */
export function formatVars(machine: string, vars: readonly VarEntry[], generator: string | undefined, prefix: string): Message {
  const list = generator === undefined ? vars : vars.filter((v) => v.generator === generator);
  const scope = generator === undefined ? "" : ` of generator ${generator}`;
  if (!list.length) return concat(`${machine} has no vars${scope}.`);
  const missing = list.filter((v) => v.state === "missing").length;
  const counts = `${list.length - missing} of ${list.length} set`;
  return paragraphs(
    concat(bold(`${machine}: ${list.length} var${list.length === 1 ? "" : "s"}${scope}`), ` (${counts}).`),
    table(["Var", "Value"], list.map((v) => [code(v.id), shown(v)])),
    missing
      ? concat(
          "Generate what is missing with ",
          code(`${prefix}vars generate ${machine}${generator !== undefined ? ` --generator ${generator}` : ""}`),
          " (an admin), or set a value yourself with ",
          code(`${prefix}secret set ${machine} <generator/file>`),
          " in an encrypted chat with me.",
        )
      : italic("Secret values are never shown; set one with " + `${prefix}secret set ${machine} <generator/file>` + " in an encrypted chat with me."),
  );
}

const generateCommand: CommandSpec = {
  name: "vars generate",
  summary: "Runs the machine's vars generators (clan vars generate): what is missing, or everything anew with --regenerate. Asks first.",
  level: "admin",
  args: [{ name: "machine", summary: "the machine whose vars to generate", required: true }],
  flags: [
    GENERATOR_FLAG,
    { name: "regenerate", type: "boolean", summary: "generate the vars anew even when they are set (new passwords and keys: machines need a deploy)" },
  ],
  details: "Reported like a deploy: one status message and the log as a file; values never appear in the room or the log. clan commits the vars to the flake.",
  async run(ctx, input): Promise<void> {
    const machine = await resolveMachine(ctx, input.args[0] as string);
    const generator = generatorOf(input, machine, input.flags["generator"] === undefined ? [] : await machineVars(ctx, machine), ctx.prefix);
    const regenerate = input.flags["regenerate"] === true;
    const which = generator !== undefined ? `the ${generator} generator` : "every generator";
    await confirmFirst(ctx, {
      ask: concat(
        bold(`Generate ${machine}'s vars?`),
        regenerate
          ? ` This makes new values for ${which}, replacing the current ones (passwords and keys change; ${machine} needs a deploy after).`
          : ` This runs ${which} for what is missing; values that are set stay.`,
      ),
      subject: `Vars generation of ${machine}`,
      confirmedSubject: `Vars generation of ${machine}`,
      otherwise: "nothing was generated",
    });
    const final = await runDeploy(ctx, "vars", [machine], { vars: { ...(generator !== undefined ? { generator } : {}), regenerate } });
    if (final.result !== "ok") throw new ReportedFailure(`vars generation ${final.result}`);
  },
};

export const varsCommand: CommandSpec = {
  name: "vars",
  readOnly: true,
  summary: "A machine's clan vars (clan vars list): generator/file and whether each is set; secret values are never shown.",
  level: "operator",
  args: [{ name: "machine", summary: "the machine", required: true }],
  flags: [GENERATOR_FLAG],
  details: `Public values are shown when short (at most ${SHORT_VALUE} characters). Generate missing vars with !vars generate; set a secret with !secret set in an encrypted chat with the bot.`,
  subcommands: [generateCommand],
  async run(ctx, input): Promise<Message> {
    const machine = await resolveMachine(ctx, input.args[0] as string);
    const vars = await machineVars(ctx, machine);
    return formatVars(machine, vars, generatorOf(input, machine, vars, ctx.prefix), ctx.prefix);
  },
};
