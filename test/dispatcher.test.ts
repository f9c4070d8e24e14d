import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { Announcer } from "../bot/announcer.ts";
import { CommandLimit } from "../bot/command-limit.ts";
import { Dispatcher, type ReplyChannel } from "../bot/dispatcher.ts";
import { InviteService } from "../bot/invite-service.ts";
import { BadInput, Refusal, ReportedFailure, UserError } from "../commands/errors.ts";
import { MAX_ANSWER_BYTES, answerBytes } from "../commands/answer-size.ts";
import { historyCommand } from "../commands/history.ts";
import { inviteCommand } from "../commands/invite.ts";
import type { Message } from "../commands/format.ts";
import { makeHelpCommand } from "../commands/help.ts";
import { DEFAULT_THRESHOLDS } from "../commands/levels.ts";
import type { CommandSpec, Log } from "../commands/types.ts";
import { DeployService } from "../ops/deploy-service.ts";
import { VmService } from "../ops/vm-service.ts";
import { recentCommands } from "../storage/audit.ts";
import { openDatabase } from "../storage/db.ts";
import { migrate } from "../storage/migrations.ts";
import { noBackups, noSchedules } from "./support/no-backups.ts";
import { noSsh } from "./support/no-ssh.ts";
import { tempDir } from "./support/temp-dir.ts";

/** What a person would see of one command: replies as plain text, reactions in order. */
function recordingChannel(confirmAll = false): ReplyChannel & { replies: string[]; html: string[]; reactions: string[] } {
  const replies: string[] = [];
  const html: string[] = [];
  const reactions: string[] = [];
  return {
    replies,
    html,
    reactions,
    async reply(m: Message) {
      replies.push(m.text);
      html.push(m.html);
      return { edit: async (e: Message) => void replies.push(`(edit) ${e.text}`) };
    },
    async replyFile(f) {
      replies.push(`[file ${f.name}]`);
    },
    async react(key: string) {
      reactions.push(key);
    },
    async ask(m: Message) {
      replies.push(`(question) ${m.text}`);
      return { confirmed: confirmAll, question: { edit: async (e: Message) => void replies.push(`(edit) ${e.text}`) } };
    },
    async askFor(m: Message) {
      replies.push(`(request) ${m.text}`);
      return undefined;
    },
  };
}

async function setup(table: CommandSpec[], limit?: CommandLimit) {
  const db = await openDatabase(join(await tempDir(), "db.sqlite3"));
  await migrate(db);
  const errors: Array<Record<string, unknown>> = [];
  const warnings: string[] = [];
  const log: Log = { info() {}, warn: (_fields, msg) => void warnings.push(msg), error: (fields) => void errors.push(fields) };
  let now = 1_000_000;
  const commands: CommandSpec[] = [makeHelpCommand(() => commands), ...table];
  const clock = { now: () => now };
  const dir = await tempDir();
  const dispatcher = new Dispatcher({
    table: commands,
    db,
    clans: new Map([
      [
        "fam",
        {
          view: { name: "fam", flake: "/x", machines: async () => [] },
          store: { recentCommands: (n) => recentCommands(db, "fam", n) },
          deploys: new DeployService({
            clan: "fam",
            flake: dir,
            db,
            clock,
            log,
            clanCommand: "clan",
            nixCommand: "nix",
            parallel: 1,
            confirmAbove: 3,
            timeoutMs: 60_000,
            installTimeoutMs: 60_000,
            killGraceMs: 1000,
            logDir: dir,
          }),
          ssh: noSsh,
          invites: new InviteService({ db, clock, log, announcer: new Announcer(log), clans: [], publicUrl: undefined }).forClan("fam"),
          vms: new VmService({
            db,
            clock,
            log,
            backend: { kind: "nix", why: "set in the test" },
            clanCommand: "clan",
            nixCommand: "nix",
            max: 2,
            publicHost: "host.test",
            stopTimeoutMs: 1000,
            startGraceMs: 100,
            buildTimeoutMs: 60_000,
            dir,
            onEnd: () => undefined,
          }).forClan("fam", dir),
          backups: noBackups,
          schedules: noSchedules,
          thresholds: DEFAULT_THRESHOLDS,
        },
      ],
    ]),
    clock,
    log,
    prefix: "!",
    maxCommandAgeMs: 15 * 60_000,
    confirmTimeoutMs: 60_000,
    installReplyTimeoutMs: 60_000,
    ...(limit ? { limit } : {}),
  });
  type Opts = { sender?: string; confirm?: boolean; powerLevelNow?: () => number };
  const start = (line: string, powerLevel = 100, sentAt = now, o: Opts = {}) => {
    const ch = recordingChannel(o.confirm);
    const powerLevelNow = o.powerLevelNow ? { powerLevelNow: o.powerLevelNow } : {};
    const sender = { id: o.sender ?? "@u:x", name: "U", powerLevel };
    const done = dispatcher.dispatch({ clan: "fam", room: "!r", eventId: "$e", sentAt, sender, line, ...powerLevelNow }, ch);
    return { ch, done };
  };
  const send = async (line: string, powerLevel = 100, sentAt = now, o: Opts = {}) => {
    const { ch, done } = start(line, powerLevel, sentAt, o);
    await done;
    return ch;
  };
  return { db, dispatcher, errors, warnings, start, send, drain: (graceMs: number) => dispatcher.drain(graceMs), advance: (ms: number) => (now += ms) };
}

const boom: CommandSpec = {
  name: "boom",
  summary: "fails",
  level: "viewer",
  args: [],
  flags: [],
  run: async () => {
    throw new TypeError("secret internals");
  },
};
const polite: CommandSpec = { ...boom, name: "polite", run: async () => { throw new UserError("Machine 'x' is unknown."); } };
const locked: CommandSpec = { ...boom, name: "locked", run: async () => { throw new Refusal("laptop is locked by @bob."); } };
const shown: CommandSpec = {
  ...boom,
  name: "shown",
  run: async (ctx) => {
    await ctx.reply({ text: "❌ deploy failed (details here)", html: "❌ deploy failed (details here)" });
    throw new ReportedFailure("deploy failed");
  },
};
const guarded: CommandSpec = { ...boom, name: "guarded", level: "admin", run: async () => ({ text: "ran", html: "ran" }) };

test("an internal error is logged in full and shown only by reference", async () => {
  const { send, errors, db } = await setup([boom]);
  const ch = await send("boom");
  assert.deepEqual(ch.reactions, ["👀", "❌"]);
  assert.match(ch.replies[0] ?? "", /^Internal error \(reference #1\)\. The details are in the bot's log\.$/);
  assert.doesNotMatch(ch.replies.join(), /secret internals/);
  assert.equal((errors[0]?.["err"] as Error).message, "secret internals");
  assert.equal((await recentCommands(db, "fam", 1))[0]?.result, "error");
});

test("a UserError is shown as it is, with ❌", async () => {
  const { send } = await setup([polite]);
  const ch = await send("polite");
  assert.deepEqual(ch.replies, ["Machine 'x' is unknown."]);
  assert.deepEqual(ch.reactions, ["👀", "❌"]);
});

test("a Refusal is shown with ⛔ and audited as refused", async () => {
  const { send, db } = await setup([locked]);
  const ch = await send("locked");
  assert.deepEqual(ch.replies, ["laptop is locked by @bob."]);
  assert.deepEqual(ch.reactions, ["👀", "⛔"]);
  assert.equal((await recentCommands(db, "fam", 1))[0]?.result, "refused");
});

test("a failure the command already showed gets ❌ and no second message", async () => {
  const { send, db } = await setup([shown]);
  const ch = await send("shown");
  assert.deepEqual(ch.replies, ["❌ deploy failed (details here)"]);
  assert.deepEqual(ch.reactions, ["👀", "❌"]);
  assert.equal((await recentCommands(db, "fam", 1))[0]?.result, "failed");
});

test("work a command leaves for later does not hold back its ✅ and audit row, but the run (and a shutdown) waits for it", async () => {
  let release = (): void => undefined;
  const lastEdit = new Promise<void>((resolve) => (release = resolve));
  const slow: CommandSpec = {
    ...boom,
    name: "slow",
    run: async (ctx) => {
      const status = await ctx.reply({ text: "running", html: "running" });
      ctx.later(lastEdit.then(() => status.edit({ text: "done", html: "done" })));
      ctx.later(Promise.reject(new Error("the upload failed")));
    },
  };
  const { start, drain, db, warnings } = await setup([slow]);
  const { ch, done } = start("slow");
  let finished = false;
  void done.then(() => (finished = true));
  let drained = false;
  const draining = drain(60_000).then(() => (drained = true));
  for (let i = 0; i < 50 && (await recentCommands(db, "fam", 1))[0]?.result !== "ok"; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepEqual(ch.reactions, ["👀", "✅"]);
  assert.equal((await recentCommands(db, "fam", 1))[0]?.result, "ok");
  assert.deepEqual(ch.replies, ["running"]);
  assert.equal(finished, false);
  assert.equal(drained, false);
  release();
  await done;
  await draining;
  assert.deepEqual(ch.replies, ["running", "(edit) done"]);
  assert.deepEqual(warnings, ["work after a command's outcome failed"]);
});

test("refusals say which level is needed and are audited, without running", async () => {
  const { send, db } = await setup([guarded]);
  const ch = await send("guarded", 50);
  assert.deepEqual(ch.reactions, ["⛔"]);
  assert.match(ch.replies[0] ?? "", /!guarded` needs the admin level \(power level 100 in this room\); you have power level 50/);
  const [entry] = await recentCommands(db, "fam", 1);
  assert.deepEqual([entry?.result, entry?.sender, entry?.line], ["refused", "@u:x", "!guarded"]);
});

test("unknown commands get a suggestion; old commands are answered but not run", async () => {
  const { send, advance } = await setup([guarded]);
  const typo = await send("hlep");
  assert.match(typo.replies[0] ?? "", /I don't know the command `!hlep`\. Did you mean `!help`\?/);
  assert.deepEqual(typo.reactions, ["❓"]);
  const sentAt = advance(0);
  advance(20 * 60_000);
  const old = await send("guarded", 100, sentAt);
  assert.deepEqual(old.reactions, ["⛔"]);
  assert.match(old.replies[0] ?? "", /I did not run `!guarded`: it was sent 20 min ago.*Send it again/);
});

test("help lists what the sender may use and what needs more", async () => {
  const { send } = await setup([guarded]);
  const viewer = await send("help", 0);
  assert.match(viewer.replies[0] ?? "", /!help \[command\]/);
  assert.doesNotMatch(viewer.replies[0] ?? "", /• `!guarded/);
  assert.match(viewer.replies[0] ?? "", /Needs admin \(power level 100\): !guarded/);
  assert.match(viewer.html[0] ?? "", /<ul><li><code>!help \[command\]<\/code>/);
  const admin = await send("help guarded", 100);
  assert.match(admin.replies[0] ?? "", /Needs admin \(power level 100\)/);
});

const family: CommandSpec = {
  name: "pet",
  summary: "Looks after pets.",
  level: "viewer",
  args: [],
  flags: [],
  subcommands: [
    {
      name: "pet feed",
      summary: "Feeds a pet.",
      level: "operator",
      args: [{ name: "pet", summary: "which pet", required: true }],
      flags: [{ name: "twice", type: "boolean", summary: "feed it twice" }],
      run: async (_ctx, input) => ({ text: `fed ${input.args.join(",")}${input.flags["twice"] === true ? " twice" : ""}`, html: "fed" }),
    },
    { name: "pet list", aliases: ["ls"], summary: "Lists pets.", level: "viewer", args: [], flags: [], run: async () => ({ text: "cat, dog", html: "" }) },
  ],
  run: async () => ({ text: "the pet family", html: "" }),
};

test("a command family: the first word picks the subcommand, with its own level, arguments and flags", async () => {
  const { send, db } = await setup([family]);
  assert.deepEqual((await send("pet feed cat --twice", 50)).replies, ["fed cat twice"]);
  assert.deepEqual((await send("pet ls", 0)).replies, ["cat, dog"]);
  assert.deepEqual((await send("pet", 0)).replies, ["the pet family"]);

  const refused = await send("pet feed cat", 0);
  assert.deepEqual(refused.reactions, ["⛔"]);
  assert.match(refused.replies[0] ?? "", /`!pet feed` needs the operator level \(power level 50 in this room\); you have power level 0/);

  const typo = await send("pet fed cat");
  assert.deepEqual(typo.reactions, ["❓"]);
  assert.equal(typo.replies[0], "!pet has no subcommand 'fed'; it has feed, list. Did you mean `!pet feed`?");

  const missing = await send("pet feed");
  assert.match(missing.replies[0] ?? "", /^!pet feed needs pet \(which pet\)\. Usage: `!pet feed <pet> \[--twice\]`$/);
  assert.match((await send("pet list extra")).replies[0] ?? "", /^!pet list does not take 'extra'/);
  assert.equal((await recentCommands(db, "fam", 1))[0]?.command, "pet");

  const help = (await send("help pet")).replies[0] ?? "";
  assert.match(help, /`!pet <feed\|list>`/);
  assert.match(help, /• `!pet feed <pet> \[--twice\]` Feeds a pet\. _\(operator \(power level 50\)\)_/);
  assert.match(help, /• `!pet list` Lists pets\. _\(viewer \(power level 0\)\)_/);
  assert.match(help, /`pet` which pet[\s\S]*`--twice` feed it twice/);
  assert.match((await send("help")).replies[0] ?? "", /• `!pet <feed\|list>` Looks after pets\./);
});

test("a viewer's flood: the burst runs, the first command over the limit is answered once with ⛔, the rest of the window is skipped silently, all audited", async () => {
  let ran = 0;
  const echo: CommandSpec = {
    ...boom,
    name: "echo",
    run: async () => {
      ran++;
      return { text: "echo", html: "echo" };
    },
  };
  const { start, send, advance, db } = await setup([echo, historyCommand], new CommandLimit({ requests: 3, windowMs: 60_000, exempt: "admin" }));
  const flood = Array.from({ length: 30 }, (_, i) => start(i % 5 === 4 ? "nonsense" : "echo", 0, undefined, { sender: "@flood:x" }));
  // Someone else in the room, and an admin, meanwhile: not held back by the flood.
  const other = start("echo", 0, undefined, { sender: "@other:x" });
  const admin = Array.from({ length: 10 }, () => start("echo", 100, undefined, { sender: "@admin:x" }));
  await Promise.all([...flood, other, ...admin].map((f) => f.done));

  const seen = flood.map((f) => [...f.ch.reactions, ...f.ch.replies].join(" "));
  assert.deepEqual(seen.slice(0, 3), ["👀 ✅ echo", "👀 ✅ echo", "👀 ✅ echo"]);
  assert.match(seen[3] ?? "", /^⛔ Slow down: at most 3 commands per person in 1 min here\. I did not run this one; try again in 20 s\./);
  assert.deepEqual(seen.slice(4), Array(26).fill(""), "one answer per window, not one per message");
  assert.deepEqual(other.ch.reactions, ["👀", "✅"]);
  for (const a of admin) assert.deepEqual(a.ch.reactions, ["👀", "✅"]);
  assert.equal(ran, 3 + 1 + 10);

  const audit = (await recentCommands(db, "fam", 100)).filter((e) => e.sender === "@flood:x");
  assert.equal(audit.length, 30);
  assert.equal(audit.filter((e) => e.result === "limited").length, 27);
  assert.equal(audit.filter((e) => e.result === "ok").length, 3);
  const shown = await send("history --limit 50", 100);
  assert.match(shown.replies[0] ?? "", /@flood:x\s+`!echo`\s+.*⛔ too many/);

  // A command's worth refills in 20 s: it runs; the one right after it is not answered (same window).
  advance(20_000);
  assert.deepEqual((await send("echo", 0, undefined, { sender: "@flood:x" })).reactions, ["👀", "✅"]);
  assert.deepEqual((await send("echo", 0, undefined, { sender: "@flood:x" })).reactions, []);
  // A window after the answer, the next refusal is answered again.
  advance(40_000);
  for (let i = 0; i < 2; i++) assert.deepEqual((await send("echo", 0, undefined, { sender: "@flood:x" })).reactions, ["👀", "✅"]);
  assert.deepEqual((await send("echo", 0, undefined, { sender: "@flood:x" })).reactions, ["⛔"]);
});

test("the three outcomes: ❓ bad input (nothing tried), ⛔ refused, ❌ failed; each audited as such", async () => {
  const typed: CommandSpec = { ...boom, name: "typed", run: async () => { throw new BadInput("unknown machine 'x'"); } };
  const { send, db } = await setup([typed, polite, locked]);
  const results = async () => (await recentCommands(db, "fam", 1))[0]?.result;
  assert.deepEqual((await send("typed")).reactions, ["👀", "❓"]);
  assert.equal(await results(), "invalid");
  assert.deepEqual((await send("nosuch")).reactions, ["❓"]);
  assert.equal(await results(), "invalid");
  assert.deepEqual((await send('typed "unclosed')).reactions, ["❓"]);
  assert.deepEqual((await send("typed --nope")).reactions, ["❓"]);
  assert.deepEqual((await send("locked")).reactions, ["👀", "⛔"]);
  assert.deepEqual((await send("polite")).reactions, ["👀", "❌"]);
  assert.equal(await results(), "failed");
});

test("!history --limit N shows N earlier commands: the running !history takes no place", async () => {
  const { send } = await setup([historyCommand, guarded]);
  await send("guarded");
  await send("guarded");
  const one = await send("history --limit 1");
  assert.match(one.replies[0] ?? "", /The last 1 command in this clan/);
  assert.match(one.replies[0] ?? "", /#2\s+@u:x\s+`!guarded`/);
  assert.match((await send("history --limit 2")).replies[0] ?? "", /The last 2 commands/);
});

test("a ✅ counts only while the asker still has the level: demoted meanwhile, nothing runs", async () => {
  let ran = 0;
  const confirmed: CommandSpec = {
    ...boom,
    name: "big",
    level: "operator",
    run: async (ctx) => {
      const { confirmed } = await ctx.confirm({ text: "Sure?", html: "Sure?" });
      if (confirmed) ran++;
      return { text: "done", html: "done" };
    },
  };
  const { send, db } = await setup([confirmed]);
  const demoted = await send("big", 50, undefined, { confirm: true, powerLevelNow: () => 0 });
  assert.equal(ran, 0);
  assert.deepEqual(demoted.reactions, ["👀", "⛔"]);
  assert.match(demoted.replies.join("\n"), /U now has power level 0, and !big needs the operator level \(power level 50\): the ✅ does not count/);
  assert.equal((await recentCommands(db, "fam", 1))[0]?.result, "refused");
  const still = await send("big", 50, undefined, { confirm: true, powerLevelNow: () => 50 });
  assert.equal(ran, 1);
  assert.deepEqual(still.reactions, ["👀", "✅"]);
});

test("answers never outgrow an event: user text is quoted cut short, long answers come as a file, the audit keeps a capped line", async () => {
  const echo: CommandSpec = {
    ...boom,
    name: "echo",
    args: [{ name: "words", summary: "anything", variadic: true }],
    run: async (_ctx, input) => ({ text: input.args.join("\n"), html: input.args.join("<br>") }),
  };
  const { send, db } = await setup([echo, historyCommand]);
  const huge = "x".repeat(60_000);
  for (const line of [`nosuch${huge}`, `echo "${huge}`, `echo --${huge}`, `help ${huge}`]) {
    const ch = await send(line);
    assert.ok(ch.replies.length >= 1, line.slice(0, 20));
    for (const [i, text] of ch.replies.entries()) assert.ok(answerBytes({ text, html: ch.html[i] ?? "" }) <= MAX_ANSWER_BYTES, `${line.slice(0, 20)}: ${text.length}`);
  }
  const long = await send(`echo ${"word ".repeat(10_000)}`);
  assert.match(long.replies[0] ?? "", /too long for a message: it follows as the file answer\.txt/);
  assert.equal(long.replies[1], "[file answer.txt]");
  assert.deepEqual(long.reactions, ["👀", "✅"]);
  const [row] = await recentCommands(db, "fam", 1);
  assert.ok((row?.line.length ?? 0) < 1_000);
  const history = await send("history");
  assert.deepEqual(history.reactions, ["👀", "✅"]);
  assert.ok(answerBytes({ text: history.replies[0] ?? "", html: history.html[0] ?? "" }) <= MAX_ANSWER_BYTES);
});

test("an answer the homeserver refuses still ends its audit row (not 'running' for ever)", async () => {
  const { db, dispatcher } = await setup([]);
  const ch = recordingChannel();
  ch.reply = async () => {
    throw new Error("M_TOO_LARGE");
  };
  await dispatcher.dispatch({ clan: "fam", room: "!r", eventId: "$e", sentAt: 1_000_000, sender: { id: "@u:x", name: "U", powerLevel: 0 }, line: "nosuch" }, ch);
  assert.equal((await recentCommands(db, "fam", 1))[0]?.result, "invalid");
});

test("!invite --expires 0s and other nonsense values are refused, not replaced", async () => {
  const { send } = await setup([inviteCommand]);
  for (const line of ["invite --expires 0s", "invite --expires 0m", "invite --uses 0", "invite --uses 99999999999999999999999"]) {
    const ch = await send(line, 100);
    assert.equal(ch.reactions.at(-1), "❓", line);
    assert.match(ch.replies[0] ?? "", /takes a duration|takes a whole number|must be between/, line);
  }
});
