// Remote hosts as clan_lib.ssh.remote.Remote sees them: address parsing, the
// "$ <command>" line Remote.run logs, the ssh host key check, and the commands
// run on the host (emulated by child processes, see proc.mjs).

import { randomBytes } from "node:crypto";
import { appendFileSync, existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { isatty } from "node:tty";
import { ClanCmdError, ClanError, PythonCrash, err, log, shQuote } from "./errors.mjs";
import { readStdinLine, runChild } from "./proc.mjs";

/** _parse_ssh_uri(): "[ssh://][user@]host[:port][?opt=value&...]" */
export function parseAddress(address, machine) {
  const raw = address;
  const a = address.startsWith("ssh://") ? address.slice(6) : address;
  const q = a.indexOf("?");
  const endpoint = q >= 0 ? a.slice(0, q) : a;
  const optionText = q >= 0 ? a.slice(q + 1) : "";
  const at = endpoint.split("@");
  let user;
  let hostPort;
  if (at.length === 2) [user, hostPort] = at;
  else if (at.length === 1) [user, hostPort] = ["root", at[0]];
  else throw new ClanError(`Invalid host, got \`${raw}\` but expected something like \`[user@]hostname[:port]\``);
  if ((hostPort.match(/:/g) ?? []).length > 1 && !/.*\[.*]/.test(hostPort)) {
    throw new ClanError(`Invalid hostname: ${raw}. IPv6 addresses must be enclosed in brackets , e.g. [::1]`);
  }
  const options = {};
  for (const o of optionText.split("&")) {
    if (o.length === 0) continue;
    const eq = o.indexOf("=");
    if (eq < 0) {
      throw new ClanError(`Invalid option in host \`${raw}\`: option \`${o}\` does not have a value (i.e. expected something like \`name=value\`)`);
    }
    options[o.slice(0, eq)] = o.slice(eq + 1);
  }
  let host = hostPort;
  let port = null;
  const m = /^(\[[^\]]*]|[^:]*)(?::(.*))?$/.exec(hostPort);
  if (m) {
    host = m[1].replace(/^\[|]$/g, "");
    if (m[2] !== undefined && m[2] !== "") {
      if (!/^\d+$/.test(m[2])) {
        throw new PythonCrash("ValueError", `Port could not be cast to integer value as '${m[2]}'`);
      }
      port = Number(m[2]);
    }
  }
  if (!host) throw new ClanError(`Invalid host, got \`${raw}\` but expected something like \`[user@]hostname[:port]\``);
  return { user, host, port, options, machine };
}

export function target(remote) {
  return `${remote.user}@${remote.host}`;
}

export function sshUrl(remote, scheme = "ssh") {
  const h = remote.host.includes(":") ? `[${remote.host}]` : remote.host;
  return `${scheme}://${remote.user ? `${remote.user}@` : ""}${h}${remote.port ? `:${remote.port}` : ""}`;
}

function hostKeyOpts(mode) {
  if (mode === "strict") return ["-o", "StrictHostKeyChecking=yes"];
  if (mode === "accept-new" || mode === "tofu") return ["-o", "StrictHostKeyChecking=accept-new"];
  if (mode === "none") return ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"];
  return [];
}

export function sshOpts(remote, { controlMaster = false } = {}) {
  const opts = remote.forwardAgent ? ["-A"] : [];
  if (remote.port) opts.push("-p", String(remote.port));
  for (const [k, v] of Object.entries(remote.options)) opts.push("-o", `${k}=${v}`);
  opts.push(...hostKeyOpts(remote.hostKeyCheck ?? "ask"));
  if (controlMaster) {
    remote.controlDir ??= `/tmp/clan-ssh${randomBytes(4).toString("hex")}`;
    opts.push("-o", "ControlMaster=auto", "-o", "ControlPersist=1m", "-o", `ControlPath=${remote.controlDir}/socket`);
  }
  return opts;
}

export function nixSshEnv(remote) {
  return { NIX_SSHOPTS: sshOpts(remote).map(shQuote).join(" ") };
}

/** The argv clan really runs for Remote.run(cmd): ssh ... -- bash -c 'exec "$@"' -- <cmd>. */
export function sshArgv(remote, cmd, env = {}) {
  const exports = Object.entries(env).map(([k, v]) => `${shQuote(k)}=${shQuote(v)}`);
  const bashCmd = `${exports.length ? `export ${exports.join(" ")}; ` : ""}exec "$@"`;
  return ["ssh", target(remote), ...sshOpts(remote, { controlMaster: true }), "--", "bash", "-c", shQuote(bashCmd), "--", cmd.map(shQuote).join(" ")];
}

// ---- host keys ------------------------------------------------------------------

const KNOWN_HOSTS = ".fake-clan-known-hosts";

function hostKeyName(remote) {
  return remote.port && remote.port !== 22 ? `[${remote.host}]:${remote.port}` : remote.host;
}

/** An ssh -o option of the remote, by name in any case, as ssh reads them. */
function sshOption(remote, name) {
  const key = Object.keys(remote.options ?? {}).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : remote.options[key];
}

/**
 * The known_hosts files ssh reads: UserKnownHostsFile from the address's options, else the
 * user's ~/.ssh/known_hosts. ssh finds that through the passwd entry, not $HOME; the fake
 * takes it from $FAKE_CLAN_SSH_KNOWN_HOSTS, else <flake>/.fake-clan-known-hosts.
 */
function knownHostsFiles(flake, remote) {
  const option = sshOption(remote, "UserKnownHostsFile");
  if (option !== undefined) return option.split(/\s+/).filter((f) => f !== "");
  return [process.env.FAKE_CLAN_SSH_KNOWN_HOSTS || path.join(flake.root, KNOWN_HOSTS)];
}

/**
 * What the known_hosts files say about a host: "match", "mismatch" (a key for that name that
 * is not the machine's fixture hostKey) or "unknown". Lines are "name[,name] type base64" or,
 * as the fake writes them itself, just the name.
 */
function lookup(files, key, hostKey) {
  let seen = false;
  for (const file of files) {
    if (!existsSync(file)) continue;
    for (const line of readFileSync(file, "utf8").split("\n")) {
      const [names = "", type, blob] = line.trim().split(/\s+/);
      if (!names.split(",").includes(key)) continue;
      if (type === undefined || hostKey === undefined || `${type} ${blob}` === hostKey) return "match";
      seen = true;
    }
  }
  return seen ? "mismatch" : "unknown";
}

function record(files, key, hostKey) {
  if (files[0] === "/dev/null") return;
  appendFileSync(files[0], `${hostKey === undefined ? key : `${key} ${hostKey}`}\n`);
}

function effectiveMode(remote) {
  const o = sshOption(remote, "StrictHostKeyChecking");
  if (o === "no" || o === "off") return "none";
  if (o === "accept-new") return "accept-new";
  if (o === "yes") return "strict";
  if (o === "ask") return "ask";
  return remote.hostKeyCheck ?? "ask";
}

/**
 * What ssh does about the host key when it first connects. Returns the lines ssh
 * writes to stderr and whether it went on. fixture.machines.<m>.hostKeyKnown (default
 * true) says whether the known_hosts files have the key regardless of what is in them;
 * fixture.machines.<m>.hostKey ("ssh-ed25519 AAAA...") is the key the machine shows, checked
 * against known_hosts lines that carry a key.
 */
async function checkHostKey(flake, remote) {
  if (remote.connected) return { ok: true, lines: [] };
  const key = hostKeyName(remote);
  const fixtureMachine = flake.fixture?.machines?.[remote.machine] ?? {};
  const files = knownHostsFiles(flake, remote);
  const found = lookup(files, key, fixtureMachine.hostKey);
  const known = found === "match" || (found === "unknown" && (remote.isBuildHost ? true : (fixtureMachine.hostKeyKnown ?? true)));
  const mode = effectiveMode(remote);
  const added = `Warning: Permanently added '${key}' (ED25519) to the list of known hosts.`;
  if (mode === "none") return { ok: true, lines: [added] };
  if (found === "mismatch") {
    return {
      ok: false,
      lines: [
        "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
        "@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @",
        "@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@",
        `Host key for ${key} has changed and you have requested strict checking.`,
        "Host key verification failed.",
      ],
    };
  }
  if (known) return { ok: true, lines: [] };
  if (mode === "accept-new" || mode === "tofu") {
    record(files, key, fixtureMachine.hostKey);
    return { ok: true, lines: [added] };
  }
  if (mode === "strict") {
    return {
      ok: false,
      lines: [`No ED25519 host key is known for ${key} and you have requested strict checking.`, "Host key verification failed."],
    };
  }
  // ask: ssh asks on the terminal. Without a terminal it gives up at once.
  if (isatty(0)) {
    err(
      `The authenticity of host '${key} (${remote.host})' can't be established.\nED25519 key fingerprint is SHA256:Jm0e3x0kmnqQ0qVZ5vY9dfuwY8nTzq3zB8e5bX1lJ1c.\nThis key is not known by any other names.\nAre you sure you want to continue connecting (yes/no/[fingerprint])? `,
    );
    const answer = await readStdinLine();
    if (answer !== null && answer.trim() === "yes") {
      record(files, key, fixtureMachine.hostKey);
      return { ok: true, lines: [added] };
    }
  }
  return { ok: false, lines: ["Host key verification failed."] };
}

/**
 * Remote.run(): logs "$ <cmd>" (unless quiet), connects (host key check), then runs
 * the command (a child process from `spec`; spec null: an instant silent success).
 * logStreams: which streams clan logs live.
 * check: raise ClanCmdError on a non-zero exit, as RunOpts(check=True) does.
 */
export async function remoteRun(ctx, remote, cmd, { spec = {}, logStreams = ["stderr"], check = true, quiet = false, env = {}, msg = null } = {}) {
  const prefix = remote.machine;
  if (!quiet) {
    const exports = Object.entries(env).map(([k, v]) => `${shQuote(k)}=${shQuote(v)}`);
    log(`$ ${exports.length ? `export ${exports.join(" ")}; ` : ""}${cmd.join(" ")}`, prefix);
  }
  const argv = sshArgv(remote, cmd, env);
  const hk = await checkHostKey(ctx.flake(), remote);
  const sshLines = hk.lines.map((l) => `${l}\n`).join("");
  if (logStreams.includes("stderr")) for (const l of hk.lines) log(l, prefix);
  let result;
  if (!hk.ok) result = { returnCode: 255, stdout: "", stderr: sshLines };
  else if (spec === null) {
    remote.connected = true;
    result = { returnCode: 0, stdout: "", stderr: sshLines };
  } else {
    remote.connected = true;
    const r = await runChild({ title: `ssh ${target(remote)} ${cmd.join(" ")}`.slice(0, 200), ...spec }, { prefix, logStreams });
    result = { ...r, stderr: sshLines + r.stderr };
  }
  if (check && result.returnCode !== 0) {
    throw new ClanCmdError({ command: argv, stdout: result.stdout, stderr: result.stderr, returnCode: result.returnCode, msg });
  }
  return result;
}

/** Connection failure injected with failPhase "connect". */
export function connectionRefused(remote, cmd) {
  const line = `ssh: connect to host ${remote.host} port ${remote.port ?? 22}: Connection refused`;
  log(line, remote.machine);
  return new ClanCmdError({ command: sshArgv(remote, cmd), stderr: `${line}\n`, returnCode: 255 });
}
