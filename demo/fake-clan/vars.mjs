// clan vars {list,get,set,generate,check} (clan_cli/vars/*.py, clan_lib/vars/*.py), on the
// fixture's generators (fixture.vars, see flake.mjs varGenerators). Values live where clan's
// stores put them in the flake: public ones in vars/<placement>/<gen>/<file>/value (in_repo),
// secret ones in vars/<placement>/<gen>/<file>/secret (sops; the fake "encrypts" with a fixed
// key, so a value never sits in the flake in clear). A change is committed when the flake is
// a git repository, as clan's commit_files() does.

import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { isatty } from "node:tty";
import { ClanError, log, out } from "./errors.mjs";
import { defaultVars, select, systemOf } from "./flake.mjs";
import { INVENTORY_SELECTOR, evalWork, injectedFailure } from "./commands.mjs";
import { applies } from "./knobs.mjs";

const SOPS_KEY = createHash("sha256").update("fake-clan sops key").digest();

function generatorsOf(flake, machine, k) {
  const sel = `clanInternals.machines.${systemOf(flake.fixture ?? {})}."${machine}".config.clan.core.vars.generators`;
  return select(flake, sel, injectedFailure(k, machine));
}

function varDir(flake, machine, gen, file) {
  const placement = gen.share ? ["shared"] : ["per-machine", machine];
  return path.join(flake.root, "vars", ...placement, gen.name, file);
}

function encrypt(value) {
  const iv = randomBytes(12);
  const c = createCipheriv("aes-256-gcm", SOPS_KEY, iv);
  const data = Buffer.concat([c.update(value), c.final()]);
  return `{\n\t"data": "ENC[AES256_GCM,data:${data.toString("base64")},iv:${iv.toString("base64")},tag:${c.getAuthTag().toString("base64")},type:str]",\n\t"sops": {"version": "3.10.2"}\n}\n`;
}

function decrypt(text) {
  const m = /data:([^,]*),iv:([^,]*),tag:([^,]*),/.exec(JSON.parse(text).data);
  const d = createDecipheriv("aes-256-gcm", SOPS_KEY, Buffer.from(m[2], "base64"));
  d.setAuthTag(Buffer.from(m[3], "base64"));
  return Buffer.concat([d.update(Buffer.from(m[1], "base64")), d.final()]);
}

/** Var objects of a machine, in the generators' order (get_machine_vars()). */
function machineVars(flake, machine, k) {
  const gens = generatorsOf(flake, machine, k);
  const fixed = flake.fixture?.vars?.[machine] ?? defaultVars(machine);
  const vars = [];
  for (const gen of Object.values(gens)) {
    for (const file of Object.values(gen.files)) {
      const dir = varDir(flake, machine, gen, file.name);
      const storeFile = path.join(dir, file.secret ? "secret" : "value");
      const initial = fixed[gen.name]?.files?.[file.name]?.value;
      vars.push({
        id: `${gen.name}/${file.name}`,
        gen,
        file,
        storeFile,
        value() {
          if (existsSync(storeFile)) return file.secret ? decrypt(readFileSync(storeFile, "utf8")) : readFileSync(storeFile);
          return typeof initial === "string" ? Buffer.from(initial) : null;
        },
      });
    }
  }
  return vars;
}

function printable(value) {
  const text = value.toString("utf8");
  return Buffer.from(text, "utf8").equals(value) ? text : "<binary blob>";
}

function varLine(v) {
  const value = v.value();
  if (value === null) return `${v.id}: <not set>`;
  return v.file.secret ? `${v.id}: ********` : `${v.id}: ${printable(value)}`;
}

/** get_machine_var(): an exact id, else a unique prefix ("Did you mean"), else an error. */
function machineVar(flake, machine, varId, k) {
  const all = machineVars(flake, machine, k);
  let results = [];
  for (const v of all) {
    if (v.id === varId) {
      results = [v];
      break;
    }
    if (v.id.startsWith(varId)) results.push(v);
  }
  if (results.length === 0) throw new ClanError(`Couldn't find var: ${varId} for machine: ${machine}`);
  if (results.length > 1) throw new ClanError(`Found multiple vars in ${machine} for ${varId}:\n  - ${results.map(varLine).join("\n  - ")}`);
  if (results[0].id !== varId) throw new ClanError(`Did you mean: ${results[0].id}`);
  return results[0];
}

/** Writes a var's value where its store keeps it; returns the changed files, logs as Store.set() does. */
function storeVar(v, value, machine) {
  const old = v.value();
  mkdirSync(path.dirname(v.storeFile), { recursive: true, mode: 0o700 });
  const machines = ` for machines: ${machine}`;
  if (v.file.secret) {
    writeFileSync(v.storeFile, encrypt(value), { mode: 0o600 });
    log(`Updated secret var ${v.id}${machines}\n`, machine);
  } else {
    writeFileSync(v.storeFile, value);
    if (old === null || !old.equals(value)) log(`Updated var ${v.id}${machines}\n  old: ${old === null ? "<not set>" : printable(old)}\n  new: ${printable(value)}`, machine);
    else log(`Var ${v.id}${machines} remains unchanged: ${printable(old)}`, machine);
  }
  return [v.storeFile];
}

/** clan_lib.git.commit_files(): only in a git repository, only when something changed. */
function commitFiles(flake, files, message) {
  if (files.length === 0 || !existsSync(path.join(flake.root, ".git"))) return;
  const git = (args, opts = {}) => execFileSync("git", ["-C", flake.root, ...args], { stdio: ["ignore", "pipe", "pipe"], ...opts });
  for (const f of files) git(["add", "--", f]);
  try {
    git(["diff", "--cached", "--exit-code", "--", ...files]);
    return;
  } catch {
    // a difference: commit it
  }
  git(["commit", "-m", message, "--no-verify", ...files]);
  const rel = files.map((f) => path.relative(flake.root, f));
  log(rel.length === 1 ? `Committed ${rel[0]} to git` : `Committed ${rel.length} files to git: ${rel.join(", ")}`);
}

export async function varsList(ctx) {
  const flake = ctx.flake();
  const k = ctx.knobs(ctx.ns.machine);
  const vars = machineVars(flake, ctx.ns.machine, k);
  await evalWork(k);
  out(`${vars.map(varLine).sort().join("\n")}\n`);
}

export async function varsGet(ctx) {
  const { machine, var_id: varId } = ctx.ns;
  const v = machineVar(ctx.flake(), machine, varId, ctx.knobs(machine));
  const value = v.value();
  if (value === null) throw new ClanError(`Var ${v.id} has not been generated yet`);
  if (isatty(1)) out(`${printable(value)}\n`);
  else process.stdout.write(value);
}

function readAllStdin() {
  return new Promise((resolve) => {
    const chunks = [];
    process.stdin.on("data", (d) => chunks.push(d));
    process.stdin.on("end", () => resolve(Buffer.concat(chunks)));
    process.stdin.on("error", () => resolve(Buffer.concat(chunks)));
  });
}

export async function varsSet(ctx) {
  const { machine, var_id: varId } = ctx.ns;
  const flake = ctx.flake();
  const k = ctx.knobs(machine);
  const v = machineVar(flake, machine, varId, k);
  if (isatty(0)) throw new ClanError("fake-clan: the hidden multi-line prompt of `vars set` on a terminal is not emulated");
  const value = await readAllStdin();
  await evalWork(k);
  if (applies(k.fail, machine)) throw new ClanError(k.failMessage ?? `Failed to set ${v.id}: injected failure`);
  commitFiles(flake, storeVar(v, value, machine), `vars: update ${v.id} for machine ${machine}`);
}

function generatedValue(machine, v) {
  if (v.file.name.endsWith(".pub")) return Buffer.from(defaultVars(machine).openssh.files["ssh.id_ed25519.pub"].value);
  return Buffer.from(randomBytes(16).toString("hex"));
}

export async function varsGenerate(ctx) {
  const { ns } = ctx;
  const flake = ctx.flake();
  const inventory = select(flake, INVENTORY_SELECTOR, injectedFailure(ctx.knobs()));
  let machines = Object.keys(inventory.machines ?? {}).sort();
  if (ns.machines.length > 0) machines = machines.filter((m) => ns.machines.includes(m));
  if (machines.length === 0) throw new ClanError("At least one machine must be provided");
  const plans = machines.map((m) => ({ machine: m, k: ctx.knobs(m), vars: machineVars(flake, m, ctx.knobs(m)) }));
  if (ns.generator !== null && !plans.some((p) => p.vars.some((v) => v.gen.name === ns.generator))) {
    throw new ClanError(`Generator(s) '${ns.generator}' not found in machines [${machines.map((m) => `'${m}'`).join(", ")}]`);
  }
  for (const { machine, k, vars } of plans) {
    await evalWork(k, machine);
    if (applies(k.fail, machine)) throw new ClanError(k.failMessage ?? `generator failed for machine ${machine}: injected failure`);
    const byGen = new Map();
    for (const v of vars) {
      if (ns.generator !== null && v.gen.name !== ns.generator) continue;
      if (!byGen.has(v.gen.name)) byGen.set(v.gen.name, []);
      byGen.get(v.gen.name).push(v);
    }
    for (const [name, gvars] of byGen) {
      const missing = gvars.some((v) => v.value() === null);
      if (!missing && ns.regenerate !== true) continue;
      log(`Generating vars for generator ${name}`, machine);
      const files = gvars.flatMap((v) => storeVar(v, generatedValue(machine, v), machine));
      const placement = gvars[0].gen.share ? "shared" : `machine: ${machine}`;
      commitFiles(flake, files, `vars: update via generator ${name} (${placement})`);
    }
  }
}

export async function varsCheck(ctx) {
  const { ns } = ctx;
  const flake = ctx.flake();
  const inventory = select(flake, INVENTORY_SELECTOR, injectedFailure(ctx.knobs()));
  let machines = Object.keys(inventory.machines ?? {}).sort();
  if (ns.machines.length > 0) machines = machines.filter((m) => ns.machines.includes(m));
  let allOk = true;
  for (const m of machines) {
    const vars = machineVars(flake, m, ctx.knobs(m)).filter((v) => ns.generator === null || v.gen.name === ns.generator);
    const missingSecret = vars.filter((v) => v.file.secret && v.value() === null);
    const missingPublic = vars.filter((v) => !v.file.secret && v.value() === null);
    let text = "";
    if (missingSecret.length > 0) text += `Missing secret vars:\n${missingSecret.map((v) => `  - ${v.id}\n`).join("")}`;
    if (missingPublic.length > 0) text += `Missing public vars:\n${missingPublic.map((v) => `  - ${v.id}\n`).join("")}`;
    log(`Check results for machine '${m}': \n${text || "All vars are present and valid."}`);
    if (text !== "") allOk = false;
  }
  if (!allOk) return 1;
  return 0;
}
