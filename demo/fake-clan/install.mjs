// clan machines install, as clan-core does it:
//   clan_cli/machines/install.py      install_command(): target, prompts, confirmation
//   clan_lib/network/qr_code.py       -j/-P installer data: read_qr_json(), QRCodeData.get_best_remote()
//   clan_lib/network/check.py         the reachability check of each address (nc -z)
//   clan_lib/machines/install.py      run_machine_install(): vars, then nixos-anywhere once per phase
//   clan_lib/machines/nixos_anywhere.py  the nixos-anywhere command line
// and nixos-anywhere's src/nixos-anywhere.sh for what each phase prints ("### step ###").
// Every line nixos-anywhere prints reaches clan's stderr as "[machine] line".

import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { isatty } from "node:tty";
import { machineTargetHost } from "./commands.mjs";
import { ClanCmdError, ClanError, ClanSelectError, PythonCrash, err, log, out } from "./errors.mjs";
import { FIXTURE_FILE, nixosVersion, pyPath, storePath, systemOf, toplevelPath } from "./flake.mjs";
import { applies, bytesStream, orphanGrace } from "./knobs.mjs";
import { emitBytes, readStdinLine, releaseStdin, runChild } from "./proc.mjs";
import { parseAddress } from "./remote.mjs";
import { PyJsonError, pyJsonLoads } from "./pyjson.mjs";
import { PROMPT_FRAMES, generatedVars, prompt } from "./update.mjs";

export const PHASES = ["kexec", "disko", "install", "reboot"];

const INSTALL_WARNING =
  "WARNING: This will PERMANENTLY ERASE ALL DATA on the target host. All disks will be wiped, repartitioned, and reformatted. If you want to update an existing installation, use 'clan machines update' instead.";

const NO_TARGET = (machine) =>
  `No target host for machine '${machine}'.\nProvide --target-host, --json, or --png, set\n'inventory.machines.<name>.deploy.targetHost',\nset 'clan.core.networking.targetHost' in your configuration,\nor configure the internet service for this machine.`;

const NO_REACHABLE = "No reachable remote found in QR code data: ";

const PY = "/nix/store/2q4ldjkv0d8y9r7xwpa0m9gqab4s1c6n-python3-3.13.0/lib/python3.13";

// ---- Python values as Python prints them ----------------------------------------------

function pyStr(s) {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let o = q;
  for (const ch of s) {
    if (ch === "\\") o += "\\\\";
    else if (ch === q) o += `\\${q}`;
    else if (ch === "\n") o += "\\n";
    else if (ch === "\r") o += "\\r";
    else if (ch === "\t") o += "\\t";
    else if (ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f) o += `\\x${ch.charCodeAt(0).toString(16).padStart(2, "0")}`;
    else o += ch;
  }
  return o + q;
}

/** repr() of a JSON-ish value. */
export function pyRepr(v) {
  if (v === null || v === undefined) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "number") return Number.isInteger(v) ? String(v) : String(v).replace(/e([+-])(\d)$/, "e$10$2");
  if (typeof v === "string") return pyStr(v);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(", ")}]`;
  return `{${Object.entries(v)
    .map(([k, x]) => `${pyStr(k)}: ${pyRepr(x)}`)
    .join(", ")}}`;
}

/** str(): repr() except for strings. */
function pyToStr(v) {
  return typeof v === "string" ? v : pyRepr(v);
}

function pyTypeName(v) {
  if (v === null) return "NoneType";
  if (Array.isArray(v)) return "list";
  if (typeof v === "string") return "str";
  if (typeof v === "boolean") return "bool";
  if (typeof v === "number") return Number.isInteger(v) ? "int" : "float";
  return "dict";
}

/** json.loads(text); a failure is clan's uncaught JSONDecodeError: a traceback, exit 1. */
function jsonLoads(text, frames) {
  try {
    return pyJsonLoads(text);
  } catch (e) {
    if (!(e instanceof PyJsonError)) throw e;
    const stdlib = [[`${PY}/json/__init__.py`, 346, "loads", "return _default_decoder.decode(s)"]];
    if (e.kind.startsWith("Unexpected UTF-8 BOM")) stdlib[0] = [`${PY}/json/__init__.py`, 335, "loads", 'raise JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)",'];
    else if (e.kind === "Extra data") stdlib.push([`${PY}/json/decoder.py`, 347, "decode", 'raise JSONDecodeError("Extra data", s, end)']);
    else {
      stdlib.push([`${PY}/json/decoder.py`, 344, "decode", "obj, end = self.raw_decode(s, idx=_w(s, 0).end())"]);
      // "Expecting value" at the top comes from raw_decode; the rest from the C scanner
      if (e.kind === "Expecting value" && e.pos === text.length - text.trimStart().length) {
        stdlib.push([`${PY}/json/decoder.py`, 362, "raw_decode", 'raise JSONDecodeError("Expecting value", s, err.value) from None']);
      } else stdlib.push([`${PY}/json/decoder.py`, 360, "raw_decode", "obj, end = self.scan_once(s, idx)"]);
    }
    throw new PythonCrash("json.decoder.JSONDecodeError", e.message, [...frames, ...stdlib]);
  }
}

// ---- where to install to ------------------------------------------------------------------

function fileInfo(p) {
  try {
    const st = statSync(p);
    return { path: p, absolutePath: path.resolve(p), mode: st.mode & 0o777, modeOctal: (st.mode & 0o777).toString(8).padStart(4, "0"), uid: st.uid, size: st.size };
  } catch {
    return { path: p, absolutePath: path.resolve(p), mode: null, modeOctal: null, uid: null, size: null };
  }
}

function isFile(p) {
  try {
    return statSync(p).isFile();
  } catch {
    return false;
  }
}

/** zbarimg --quiet --raw IMAGE: the QR code's text, decoded with zxing-wasm when it is installed. */
async function zbarimg(file) {
  const bytes = readFileSync(file);
  try {
    const { prepareZXingModule, readBarcodes } = await import("zxing-wasm/reader");
    const wasm = new URL(import.meta.resolve("zxing-wasm/reader/zxing_reader.wasm"));
    prepareZXingModule({ overrides: { wasmBinary: readFileSync(wasm) } });
    const found = await readBarcodes(new Uint8Array(bytes), { formats: ["QRCode"] });
    const texts = found.filter((r) => r.isValid).map((r) => r.text);
    if (texts.length > 0) return texts.join("\n");
  } catch {
    // no zxing-wasm, or not an image: see below
  }
  // A fake-only convenience: a file that holds the payload as text (the JSON itself).
  const text = bytes.toString("utf8");
  const start = text.indexOf("{");
  const end = text.lastIndexOf("}");
  if (start >= 0 && end > start) {
    try {
      JSON.parse(text.slice(start, end + 1));
      return text.slice(start, end + 1);
    } catch {
      // not JSON either
    }
  }
  return null;
}

/** clan_lib.network.qr_code.read_qr_image() */
async function readQrImage(p) {
  if (!existsSync(p)) throw new ClanError(`QR code image file not found: ${pyPath(p)}`);
  const data = await zbarimg(p);
  // zbarimg exits 4 when it finds no barcode; clan runs it with check=True
  if (data === null) throw new ClanCmdError({ command: ["zbarimg", "--quiet", "--raw", pyPath(p)], returnCode: 4 });
  const text = data.trim();
  if (!text) throw new ClanError(`No QR code found in image: ${pyPath(p)}`);
  return jsonLoads(text, [
    ["clan_cli/machines/install.py", 168, "install_command", "data = read_qr_image(Path(args.png))"],
    ["clan_lib/network/qr_code.py", 172, "read_qr_image", "return json.loads(data)"],
  ]);
}

/** Python iteration over a JSON value (a string yields its characters, a dict its keys). */
function pyIter(v, frames) {
  if (Array.isArray(v)) return v;
  if (typeof v === "string") return [...v];
  if (v !== null && typeof v === "object") return Object.keys(v);
  throw new PythonCrash("TypeError", `'${pyTypeName(v)}' object is not iterable`, frames);
}

function pyTruthy(v) {
  if (v === null || v === undefined || v === false || v === 0 || v === "") return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === "object") return Object.keys(v).length > 0;
  return true;
}

/** clan_lib.network.qr_code.read_qr_json(): the installer's addresses, direct ones first, then tor. */
function readQrJson(data, line) {
  const frames = [
    ["clan_cli/machines/install.py", line, "install_command", "qr_code = read_qr_json(data, args.flake)"],
    ["clan_lib/network/qr_code.py", 84, "read_qr_json", 'password = qr_data.get("pass")'],
  ];
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new PythonCrash("AttributeError", `'${pyTypeName(data)}' object has no attribute 'get'`, frames);
  }
  const password = data.pass ?? null;
  const addresses = [];
  const addrs = data.addrs ?? [];
  if (pyTruthy(addrs)) {
    const iterFrames = [frames[0], ["clan_lib/network/qr_code.py", 90, "read_qr_json", "for addr in clearnet_addrs:"]];
    for (const addr of pyIter(addrs, iterFrames)) {
      if (typeof addr !== "string") throw new ClanError(`Invalid address format: ${pyToStr(addr)}`);
      addresses.push({ kind: "direct", address: addr, remote: { ...parseAddress(addr, "installer"), password } });
    }
  }
  if (pyTruthy(data.tor)) {
    const tor = String(data.tor);
    addresses.push({ kind: "tor", address: tor, remote: { ...parseAddress(tor, "installer-tor"), password, socksPort: 9050 } });
  }
  return { password, addresses, addrs: data.addrs ?? null, tor: data.tor ?? null };
}

function flakeRepr(ctx) {
  return `Flake(identifier=${pyRepr(ctx.identifier)}, hash=None, store_path=None, nix_options=${pyRepr(ctx.ns.option)}, _flake_cache_path=None, _cache=None, _path=None, _is_local=None, _cache_miss_stack_traces=[])`;
}

function remoteRepr(r) {
  const wrapper = r.socksPort ? "SocksWrapper(cmd=['torify'], packages=['tor', 'torsocks'])" : "None";
  return `Remote(address=${pyRepr(r.host)}, command_prefix=${pyRepr(r.machine)}, user=${pyRepr(r.user)}, port=${pyRepr(r.port)}, private_key=None, password=${pyRepr(r.password)}, forward_agent=False, host_key_check='ask', verbose_ssh=False, ssh_options=${pyRepr(r.options)}, socks_port=${pyRepr(r.socksPort ?? null)}, socks_wrapper=${wrapper}, _control_path_dir=None, _askpass_path=None)`;
}

/** f"{address}" of a RemoteWithNetwork: the dataclass repr, password included, as clan logs it. */
function addressRepr(ctx, a) {
  const peer = a.kind === "tor" ? "installer-tor" : "installer";
  const module = a.kind === "tor" ? "clan_lib.network.tor" : "clan_lib.network.direct";
  const priority = a.kind === "tor" ? 500 : 1000;
  const network = `Network(peers={${pyRepr(peer)}: Peer(name=${pyRepr(peer)}, _host=[{'plain': ${pyRepr(a.address)}}], flake=${flakeRepr(ctx)}, port=22, _user=None)}, module_name=${pyRepr(module)}, instance_name=None, priority=${priority})`;
  return `RemoteWithNetwork(network=${network}, remote=${remoteRepr(a.remote)})`;
}

function reachable(k, a) {
  const list = Array.isArray(k.unreachable) ? k.unreachable : [];
  return !list.includes(a.address) && !list.includes(a.remote.host);
}

function torStarts() {
  const now = new Date();
  const month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][now.getMonth()];
  const stamp = `${month} ${String(now.getDate()).padStart(2, "0")} ${now.toTimeString().slice(0, 8)}`;
  out(`${stamp}.000 [notice] Tor 0.4.8.17 running on Linux with Libevent 2.1.12-stable, OpenSSL 3.5.1, Zlib 1.3.1, Liblzma 5.8.1, Libzstd 1.5.7 and Glibc 2.40 as libc.\n`);
  out(`${stamp}.000 [notice] Opening Socks listener on 127.0.0.1:9050\n`);
  out(`${stamp}.000 [notice] Bootstrapped 100% (done): Done\n`);
  log("Tor is now running");
}

function torStops() {
  log("Terminating Tor process...");
  log("Tor process terminated");
}

function ncSucceeded(a) {
  const port = a.remote.port ?? 22;
  err(`Connection to ${a.remote.host} ${port} port [tcp/${port === 22 ? "ssh" : "*"}] succeeded!\n`);
}

/**
 * QRCodeData.get_best_remote(), entering the context: each address in order (direct ones,
 * then tor) is checked with `nc -z`; the first that answers is used, its RemoteWithNetwork
 * logged (the installer's password included, as clan's log.info does). Returns the index.
 */
function bestRemote(ctx, qr, k) {
  for (let i = 0; i < qr.addresses.length; i++) {
    const a = qr.addresses[i];
    if (a.kind === "tor") torStarts();
    if (reachable(k, a)) {
      ncSucceeded(a);
      log(`reachable via ${addressRepr(ctx, a)} after connection`);
      return i;
    }
    if (a.kind === "tor") torStops();
  }
  throw new ClanError(NO_REACHABLE);
}

/**
 * Leaving the get_best_remote() context. clan's generator resumes after its `yield` and
 * goes on with the next addresses: with the qrCodeExitBug knob the fake does what that
 * really leads to (a ClanError from the install is swallowed: exit 0; a finished install
 * ends in "No reachable remote found in QR code data: ": exit 1). Without it, only the
 * tor process is stopped and the install's own outcome stands.
 */
function leaveBestRemote(qr, chosen, k, bodyError) {
  if (qr.addresses[chosen].kind === "tor") torStops();
  if (!k.qrCodeExitBug) {
    if (bodyError) throw bodyError;
    return;
  }
  if (bodyError && !(bodyError instanceof ClanError)) throw bodyError;
  for (const a of qr.addresses.slice(chosen + 1)) {
    // the installer has rebooted (or the install failed): nothing answers any more
    if (a.kind === "tor") {
      torStarts();
      torStops();
    }
  }
  if (bodyError) return;
  throw new ClanError(NO_REACHABLE);
}

// ---- the nixos-anywhere runs ----------------------------------------------------------------

function randomName(n, alphabet) {
  const bytes = randomBytes(n);
  return Array.from(bytes, (b) => alphabet[b % alphabet.length]).join("");
}

function configHome() {
  return process.env.XDG_CONFIG_HOME || path.join(os.homedir(), ".config");
}

function hardwareConfigPath(flake, machine, backend) {
  return path.join(flake.root, "machines", machine, backend === "nixos-facter" ? "facter.json" : "hardware-configuration.nix");
}

/** The nixos-anywhere command of clan_lib/machines/install.py, before "--phases <phase>". */
function nixosAnywhereCommand(ctx, remote, installDir, hardware) {
  const { ns } = ctx;
  const flake = ctx.flake();
  let cmd = ["nixos-anywhere", "--flake", `${ctx.identifier}#${ns.machine}`, "--extra-files", path.join(installDir, "activation_secrets")];
  if (ns.no_reboot) cmd.push("--no-reboot");
  if (ns.phases) cmd.push("--phases", ns.phases);
  if (hardware !== "none") cmd.push("--generate-hardware-config", hardware, hardwareConfigPath(flake, ns.machine, hardware));
  if (remote.password) cmd.push("--env-password", "--ssh-option", "IdentitiesOnly=yes");
  cmd.push("-i", path.join(configHome(), "clan", "nixos-anywhere", "keys", "id_ed25519"));
  if (ns.identity_file) cmd.push("--ssh-option", `IdentityFile=${pyPath(ns.identity_file)}`);
  if (ns.build_on) cmd.push("--build-on", ns.build_on);
  if (remote.port) cmd.push("--ssh-port", String(remote.port));
  if (ns.kexec) cmd.push("--kexec", ns.kexec);
  if (ns.debug) cmd.push("--debug");
  cmd.push(...ns.option);
  for (const [key, value] of Object.entries(remote.options)) cmd.push("--ssh-option", `${key}=${value}`);
  cmd.push(`${remote.user}@${remote.host}`);
  if (remote.socksPort) cmd = ["torify", ...cmd];
  return cmd;
}

/** The public key of `-i FILE` (FILE.pub, else ssh-keygen -y), as "type base64". */
function publicKeyOf(file) {
  try {
    const text = existsSync(`${file}.pub`) ? readFileSync(`${file}.pub`, "utf8") : execFileSync("ssh-keygen", ["-y", "-f", file], { encoding: "utf8" });
    return text.trim().split(/\s+/).slice(0, 2).join(" ");
  } catch {
    return null;
  }
}

/** Whether a key-only installer lets `-i FILE` in: any key when authorizedKeys is not given. */
function keyAccepted(identityFile, authorizedKeys) {
  if (!identityFile) return false;
  const key = publicKeyOf(identityFile);
  if (key === null) return false;
  return authorizedKeys === undefined || authorizedKeys.some((a) => a.trim().split(/\s+/).slice(0, 2).join(" ") === key);
}

/** Which phases nixos-anywhere accepts in `--phases LIST` (it aborts on the first unknown one). */
function unknownPhase(list) {
  const names = list.split(",");
  if (names.length > 1 && names[names.length - 1] === "") names.pop();
  return names.find((p) => !PHASES.includes(p)) ?? null;
}

/**
 * What one `nixos-anywhere ... --phases <phase>` prints (src/nixos-anywhere.sh: uploadSshKey,
 * importFacts, runKexec, generateHardwareConfig, runDisko, nixosInstall, nixosReboot), as a
 * spec for nix-child.mjs.
 */
function phaseSpec(ctx, run) {
  const { ns } = ctx;
  const { phase, first, remote, installer, failing, hanging, connectFails, keyDenied, k, hardware } = run;
  const fixture = ctx.flake().fixture;
  const machine = ns.machine;
  const host = remote.host;
  const target = `${remote.user}@${host}`;
  const tmp = `/tmp/tmp.${randomName(10, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")}`;
  const copyId = `${storePath("openssh-10.0p2")}/bin/ssh-copy-id`;
  const added = `Warning: Permanently added '${remote.port && remote.port !== 22 ? `[${host}]:${remote.port}` : host}' (ED25519) to the list of known hosts.`;
  const o = (line) => ["stdout", line];
  const e = (line) => ["stderr", line];
  const step = (text) => o(`### ${text} ###`);

  const before = [];
  if (ns.no_reboot) before.push(o("WARNING: --no-reboot is deprecated, use --phases kexec,disko,install instead"));
  before.push(step("Uploading install SSH keys"));
  before.push(e(`${copyId}: INFO: Source of key(s) to be installed: "${tmp}/nixos-anywhere.pub"`));
  before.push(e(`${copyId}: INFO: attempting to log in with the new key(s), to filter out any that are already installed`));
  if (connectFails) {
    // `until ssh-copy-id ...; do sleep 3; done`: nixos-anywhere retries for ever
    const refused = keyDenied
      ? e(`${copyId}: ERROR: ${target}: Permission denied (publickey).`)
      : e(`${copyId}: ERROR: ssh: connect to host ${host} port ${remote.port ?? 22}: Connection refused`);
    return {
      title: "nixos-anywhere",
      tagged: true,
      before: [...before, refused],
      repeat: {
        lines: [
          e(`${copyId}: INFO: Source of key(s) to be installed: "${tmp}/nixos-anywhere.pub"`),
          e(`${copyId}: INFO: attempting to log in with the new key(s), to filter out any that are already installed`),
          refused,
        ],
        everyMs: 3000,
      },
      orphanGraceMs: orphanGrace(k),
    };
  }
  if (first) {
    before.push(
      e(`${copyId}: INFO: 1 key(s) remain to be installed -- if you are prompted now it is to install the new keys`),
      e(added),
      o(""),
      o("Number of key(s) added: 1"),
      o(""),
      o(
        `Now try logging into the machine, with: "ssh -i ${tmp}/nixos-anywhere -o 'ConnectTimeout=10' -o 'IdentitiesOnly=yes' -o 'UserKnownHostsFile=/dev/null' -o 'StrictHostKeyChecking=no' '${target}'"`,
      ),
      o("and check to make sure that only the key(s) you wanted were added."),
      o(""),
    );
  } else {
    before.push(
      e(added),
      e(`${copyId}: WARNING: All keys were skipped because they already exist on the remote system.`),
      e("\t\t(if you think this is a mistake, you may want to use -f option)"),
      o(""),
    );
  }
  before.push(step("Gathering machine facts"), e(added));

  const toplevel = toplevelPath(fixture, machine);
  const hostName = fixture.machines[machine]?.hostName ?? machine;
  const system = `nixos-system-${hostName}-${nixosVersion(fixture)}`;
  const drv = (n) => `${storePath(n, toplevel)}.drv`;
  const disko = storePath(`disko-${hostName}`, toplevel);
  const remoteBuild = ns.build_on === "remote";
  const store = `ssh://${target}`;
  const after = [];
  let template = null;
  let exitCode = 0;
  const failLine = (fallback) => e(k.failMessage ?? fallback);

  if (phase === "kexec" && (!installer || failing)) {
    before.push(step("Switching system into kexec"), o("Downloading kexec tarball, this may take a moment..."));
    template = "kexec/fake-kexec-file-{i}-of-{n}";
    if (failing) {
      const log = [
        "Downloading kexec tarball, this may take a moment...",
        k.failMessage ?? "wget: server returned error: HTTP/1.1 404 Not Found",
        "tar: This does not look like a tar archive",
        "tar: Exiting with failure status due to previous errors",
      ];
      after.push(...log.slice(1).map(o), o("Kexec may have failed - check output above"), e("Remote output log:"), ...log.map(e), e("Kexec failed"));
      exitCode = 1;
    } else {
      after.push(
        ...["kexec/", "kexec/initrd", "kexec/kexec", "kexec/bzImage", "kexec/run", "machine will boot into nixos in 6s..."].map(o),
        e(`Connection to ${host} closed by remote host.`),
        // after kexec nixos-anywhere connects as root@host on port 22 (postKexecSshPort)
        e(`Warning: Permanently added '${host}' (ED25519) to the list of known hosts.`),
        step("Gathering machine facts"),
        e(`Warning: Permanently added '${host}' (ED25519) to the list of known hosts.`),
      );
    }
  }
  if (hardware !== "none" && exitCode === 0) {
    after.push(
      step(hardware === "nixos-facter" ? "Generating facter.json using nixos-facter" : "Generating hardware-configuration.nix using nixos-generate-config"),
    );
  }
  if (phase === "disko" && exitCode === 0) {
    if (remoteBuild) after.push(step("Building disko script"));
    else {
      after.push(
        e("these 2 derivations will be built:"),
        e(`  ${drv(`disko-${hostName}-format`)}`),
        e(`  ${drv(`disko-${hostName}`)}`),
        e(`building '${drv(`disko-${hostName}`)}'...`),
        e(`copying path '${disko}' to '${store}'...`),
      );
    }
    after.push(step("Formatting hard drive with disko"), e("umount: /mnt: not mounted"), e("++ realpath /dev/vda"), e("+ disk=/dev/vda"));
    template = "+ fake disko step {i}/{n}";
    if (failing) {
      after.push(
        e("+ sgdisk --new=1:0:+1M --change-name=1:disk-main-boot --typecode=1:EF02 /dev/vda"),
        failLine("Problem opening /dev/vda for reading! Error is 2."),
        e("The specified file does not exist!"),
      );
      exitCode = 2;
    } else {
      after.push(
        e("+ sgdisk --new=1:0:+1M --change-name=1:disk-main-boot --typecode=1:EF02 /dev/vda"),
        o("Creating new GPT entries in memory."),
        o("The operation has completed successfully."),
        e("+ mkfs.vfat /dev/disk/by-partlabel/disk-main-ESP"),
        o("mkfs.fat 4.2 (2021-01-31)"),
        e("+ mkfs.ext4 /dev/disk/by-partlabel/disk-main-root"),
        o("Creating filesystem with 5240064 4k blocks and 1310720 inodes"),
        e("+ mount /dev/disk/by-partlabel/disk-main-root /mnt -t ext4 -o defaults"),
      );
    }
  }
  if (phase === "install" && exitCode === 0) {
    template = `${system}> fake build output {i}/{n}`;
    if (remoteBuild) after.push(step("Building the system closure"));
    else after.push(e("these 3 derivations will be built:"), ...[drv("etc"), drv("system-path"), drv(system)].sort().map((d) => e(`  ${d}`)), e(`building '${drv("system-path")}'...`));
    if (failing) {
      after.push(e(`building '${drv(system)}'...`), e(`${system}> fake-clan: injected build failure`), failLine(`error: builder for '${drv(system)}' failed with exit code 1`));
      exitCode = 1;
    } else {
      after.push(e(`building '${drv("etc")}'...`), e(`building '${drv(system)}'...`));
      if (!remoteBuild) after.push(step("Uploading the system closure"), e(`copying path '${toplevel}' to '${store}?remote-store=local%3Froot=%2Fmnt'...`));
      after.push(
        step("Copying extra files"),
        step("Installing NixOS"),
        e("installing the boot loader..."),
        e("setting up /etc..."),
        e('Created "/boot/EFI".'),
        e('Created "/boot/EFI/systemd".'),
        e("Copied \"/nix/store/fake-systemd/lib/systemd/boot/efi/systemd-bootx64.efi\" to \"/boot/EFI/systemd/systemd-bootx64.efi\"."),
        e("installation finished!"),
      );
    }
  }
  if (phase === "reboot" && exitCode === 0) {
    after.push(step("Rebooting"));
    if (failing) {
      after.push(failLine(`ssh: connect to host ${host} port ${remote.port ?? 22}: Connection refused`));
      exitCode = 255;
    } else after.push(step("Waiting for the machine to become unreachable due to reboot"));
  }
  if (exitCode === 0) after.push(step("Done!"));
  if (exitCode !== 0 && k.failMessage && !after.some(([, l]) => l === k.failMessage)) after.push(e(k.failMessage));

  return {
    title: "nixos-anywhere",
    tagged: true,
    before,
    progress: k.outputLines && template ? { count: k.outputLines, template, stream: "stderr" } : undefined,
    after,
    delayMs: k.delayMs ?? 0,
    hang: hanging,
    exitCode,
    orphanGraceMs: orphanGrace(k),
  };
}

// ---- prompts -----------------------------------------------------------------------------

/** input(prompt): the prompt on stdout; end of input raises EOFError (uncaught: a traceback). */
async function pyInput(text, frames) {
  out(text);
  const line = await readStdinLine();
  if (line === null) throw new PythonCrash("EOFError", "EOF when reading a line", frames);
  return line.trim().toLowerCase();
}

/** get_hardware_config(): asks only on a terminal, without --yes, when not given. */
async function hardwareConfig(ctx) {
  const { ns } = ctx;
  if (ns.update_hardware_config !== "none") return ns.update_hardware_config;
  if (ns.yes || !isatty(0)) return "none";
  const dir = path.join(ctx.flake().root, "machines", ns.machine);
  const facter = existsSync(path.join(dir, "facter.json"));
  const any = facter || existsSync(path.join(dir, "hardware-configuration.nix"));
  const frames = [["clan_cli/machines/install.py", 197, "install_command", "hardware_config = get_hardware_config(machine, args)"]];
  if (!any) {
    for (;;) {
      const r = await pyInput(`Hardware configuration not found for '${ns.machine}'. Generate it using nixos-facter? [Y/n] `, [
        ...frames,
        ["clan_cli/machines/install.py", 110, "get_hardware_config", "input("],
      ]);
      if (r === "" || r === "y" || r === "yes") {
        out("Will generate hardware configuration using nixos-facter\n");
        return "nixos-facter";
      }
      if (r === "n" || r === "no") {
        out("Skipping hardware configuration generation\n");
        return "none";
      }
      out(`Invalid input '${r}'. Please enter 'y' for yes or 'n' for no.\n`);
    }
  }
  if (facter) {
    for (;;) {
      const r = await pyInput(`Update existing hardware configuration (facter.json) for '${ns.machine}'? [y/N] `, [
        ...frames,
        ["clan_cli/machines/install.py", 133, "get_hardware_config", "input("],
      ]);
      if (r === "y" || r === "yes") {
        out("Will update hardware configuration using nixos-facter\n");
        return "nixos-facter";
      }
      if (r === "" || r === "n" || r === "no") {
        out("Skipping hardware configuration update\n");
        return "none";
      }
      out(`Invalid input '${r}'. Please enter 'y' for yes or 'n' for no.\n`);
    }
  }
  return "none";
}

/** The confirmation: only "y" (any case) goes on; "n" or an empty line end clan quietly (exit 0). */
async function confirm(ctx, target) {
  const frames = [["clan_cli/machines/install.py", 210, "install_command", 'input(f"Install {args.machine} to {remote.target}? [y/N] ")']];
  for (;;) {
    const ask = await pyInput(`Install ${ctx.ns.machine} to ${target}? [y/N] `, frames);
    if (ask === "y") return true;
    if (ask === "n" || ask === "") return false;
    out(`Invalid input '${ask}'. Please enter 'y' for yes or 'n' for no.\n`);
  }
}

// ---- the command --------------------------------------------------------------------------

function persistInstalledAt(flake, machine) {
  const file = path.join(flake.root, FIXTURE_FILE);
  const fixture = JSON.parse(readFileSync(file, "utf8"));
  fixture.machines ??= {};
  fixture.machines[machine] ??= {};
  fixture.machines[machine].installedAt = Math.floor(Date.now() / 1000);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(fixture, null, 2)}\n`);
  renameSync(tmp, file);
}

function writeHardwareConfig(flake, machine, backend, fixture) {
  const file = hardwareConfigPath(flake, machine, backend);
  mkdirSync(path.dirname(file), { recursive: true });
  const system = fixture.machines[machine]?.system ?? systemOf(fixture);
  const content =
    backend === "nixos-facter"
      ? `${JSON.stringify({ version: 1, system, virtualisation: "kvm", hardware: { cpu: [{ vendor_name: "fake-clan" }] } }, null, 2)}\n`
      : `# Do not modify this file!  It was generated by 'nixos-generate-config' (fake-clan).\n{ lib, ... }:\n{\n  nixpkgs.hostPlatform = lib.mkDefault "${system}";\n}\n`;
  writeFileSync(file, content);
}

/**
 * The fields of the invocation log entry (`install`): where the target came from and
 * which one was chosen. Never the password: only whether there is one and where from.
 */
function describe(ctx, rec, remote, qr) {
  const { ns } = ctx;
  const jsonPassword = qr ? pyTruthy(qr.password) : false;
  const passwordSource = ns.password ? "argv" : jsonPassword ? (rec.targetSource === "png" ? "png" : `json-${rec.jsonSource}`) : null;
  Object.assign(rec, {
    target: remote ? `${remote.user}@${remote.host}` : null,
    host: remote?.host ?? null,
    user: remote?.user ?? null,
    port: remote?.port ?? null,
    hasPassword: Boolean(ns.password) || jsonPassword,
    passwordSource,
    passwordOnCommandLine: ns.password !== null,
  });
}

export async function machinesInstall(ctx) {
  const { ns } = ctx;
  const machine = ns.machine;
  const rec = ctx.installRecord;
  Object.assign(rec, {
    machine,
    targetSource: ns.target_host ? "target-host" : ns.png ? "png" : ns.json ? "json" : "inventory",
    jsonSource: null,
    jsonFile: null,
    png: null,
    addrs: null,
    tor: null,
    via: null,
    target: null,
    host: null,
    user: null,
    port: null,
    hasPassword: Boolean(ns.password),
    passwordSource: ns.password ? "argv" : null,
    passwordOnCommandLine: ns.password !== null,
    identityFile: ns.identity_file,
    yes: ns.yes,
    phases: ns.phases,
    buildOn: ns.build_on,
    updateHardwareConfig: ns.update_hardware_config,
    hostKeyCheck: ns.host_key_check,
  });

  // 1. the target (install_command(), before anything else is evaluated)
  let remote;
  let qr = null;
  let chosen = null;
  try {
    if (ns.target_host) {
      remote = { ...parseAddress(ns.target_host, machine), password: null };
    } else if (ns.png) {
      rec.png = fileInfo(ns.png);
      qr = readQrJson(await readQrImage(ns.png), 169);
    } else if (ns.json) {
      let text;
      let frames;
      if (isFile(ns.json)) {
        rec.jsonSource = "file";
        rec.jsonFile = fileInfo(ns.json);
        text = readFileSync(ns.json, "utf8");
        frames = [["clan_cli/machines/install.py", 174, "install_command", "data = json.loads(json_file.read_text())"]];
      } else {
        rec.jsonSource = "inline";
        text = ns.json;
        frames = [["clan_cli/machines/install.py", 176, "install_command", "data = json.loads(args.json)"]];
      }
      qr = readQrJson(jsonLoads(text, frames), 178);
    } else {
      try {
        remote = { ...machineTargetHost(ctx.flake(), machine), password: null };
      } catch (e) {
        if (e instanceof ClanError && e.pyType === "clan_lib.network.network.NoRemoteError") throw new ClanError(NO_TARGET(machine));
        throw e;
      }
    }
    if (qr) {
      rec.addrs = qr.addrs;
      rec.tor = qr.tor;
      describe(ctx, rec, null, qr);
      chosen = bestRemote(ctx, qr, ctx.knobs(machine));
      remote = qr.addresses[chosen].remote;
      rec.via = qr.addresses[chosen].kind;
    }
    describe(ctx, rec, remote, qr);
  } finally {
    ctx.recordInvocation();
  }

  if (qr === null) return installBody(ctx, remote, qr);
  let bodyError = null;
  try {
    await installBody(ctx, remote, qr);
  } catch (e) {
    bodyError = e;
  }
  leaveBestRemote(qr, chosen, ctx.knobs(machine), bodyError);
}

async function installBody(ctx, remoteIn, qr) {
  const { ns } = ctx;
  const machine = ns.machine;
  const flake = ctx.flake();
  const fixture = flake.fixture ?? { machines: {} };
  const known = Object.hasOwn(fixture.machines ?? {}, machine);
  const k = ctx.knobs(machine);

  // 2. Machine._class_ (a failing evaluation counts as "nixos")
  if (known && typeof fixture.broken !== "string" && fixture.machines[machine].machineClass === "darwin") {
    throw new ClanError("Installing macOS machines is not yet supported");
  }

  // 3. hardware config, the warning (always red: clan colours it unconditionally), confirmation
  const hardware = await hardwareConfig(ctx);
  out(`\x1b[31m${INSTALL_WARNING}\x1b[0m\n`);
  const target = `${remoteIn.user}@${remoteIn.host}`;
  if (!ns.yes && !(await confirm(ctx, target))) {
    releaseStdin();
    return;
  }
  let remote = remoteIn;
  if (ns.password) remote = { ...remote, password: ns.password };

  // 4. run_machine_install(): precache the vars selectors (an unknown machine fails here)
  const system = systemOf(fixture);
  const selectors = [
    `clanInternals.machines.${system}.{${machine}}.config.clan.core.vars.generators.*.{share,dependencies,prompts,validationHash}`,
    `clanInternals.machines.${system}.{${machine}}.config.clan.core.vars.generators.*.files.*.{secret,deploy,owner,group,mode,neededFor}`,
    `clanInternals.machines.${system}.{${machine}}.config.clan.core.vars.settings.secretModule`,
    `clanInternals.machines.${system}.{${machine}}.config.clan.core.vars.settings.publicModule`,
  ];
  if (flake.fixture === null) {
    throw new ClanSelectError(
      flake.identifier,
      selectors,
      null,
      "This flake does not export the 'clan' attribute. \nPlease write 'clan = clan.config;' into the outputs of your flake.nix.",
    );
  }
  if (typeof fixture.broken === "string") throw new ClanSelectError(flake.identifier, selectors, `${fixture.broken}\n`);
  if (!known) {
    throw new ClanSelectError(
      flake.identifier,
      selectors,
      `error:\n       … while evaluating the selector\n\n       (stack trace truncated; use '--show-trace' to show the full, detailed trace)\n\n       error: attribute '${machine}' missing\n`,
    );
  }

  // 5. vars generators of this machine
  if (applies(k.hangOnStdin, machine)) {
    await prompt(machine, [
      ["clan_cli/machines/install.py", 228, "install_command", "return run_machine_install("],
      ["clan_lib/machines/install.py", 94, "run_machine_install", "run_generators([machine], generators=None, full_closure=False)"],
      ...PROMPT_FRAMES.slice(1),
    ]);
  }
  releaseStdin();
  if (applies(k.generateVars ?? true, machine)) generatedVars(machine);

  // 6. nixos-anywhere, once per phase
  const installDir = path.join(os.tmpdir(), `nixos-install-${randomName(8, "abcdefghijklmnopqrstuvwxyz0123456789_")}`);
  const cmd = nixosAnywhereCommand(ctx, remote, installDir, hardware);
  const phases = ns.phases ? ns.phases.split(",").map((p) => p.trim()) : PHASES;
  const bad = ns.phases ? unknownPhase(ns.phases) : null;
  const failing = applies(k.fail, machine);
  const failPhase = k.failPhase ?? "install";
  const installer = k.installer ?? qr !== null;
  const connectFails = (failing && failPhase === "connect") || (qr === null && Array.isArray(k.unreachable) && (k.unreachable.includes(remote.host) || k.unreachable.includes(ns.target_host)));
  // The current installer's sshd: PermitRootLogin prohibit-password. Only a key it holds gets in;
  // nixos-anywhere's ssh-copy-id loop then retries for ever, as with a refused connection.
  const keyDenied = k.keyOnly === true && !keyAccepted(ns.identity_file, k.authorizedKeys);
  const bytesPhase = phases.includes("install") ? "install" : phases[phases.length - 1];
  for (let i = 0; i < phases.length; i++) {
    const phase = phases[i];
    const full = [...cmd, "--phases", phase];
    let spec;
    if (bad !== null) {
      spec = { title: "nixos-anywhere", before: [["stderr", `aborted: Unknown phase: ${bad}`]], exitCode: 1 };
    } else {
      if (hardware !== "none") writeHardwareConfig(flake, machine, hardware, fixture);
      spec = phaseSpec(ctx, {
        phase,
        first: i === 0,
        remote,
        installer,
        failing: failing && failPhase === phase,
        hanging: applies(k.hang, machine) && failPhase === phase,
        connectFails: (connectFails || keyDenied) && i === 0,
        keyDenied,
        k,
        hardware,
      });
    }
    const running = runChild(spec, { prefix: machine, logStreams: ["stdout", "stderr"] });
    const [r] = await Promise.all([running, phase === bytesPhase ? emitBytes(k.bytes, { prefix: machine, stream: bytesStream(k) }) : null]);
    if (r.returnCode !== 0) throw new ClanCmdError({ command: full, stdout: r.stdout, stderr: r.stderr, returnCode: r.returnCode });
  }

  // 7. after the phases: the installation time goes into the inventory
  if (!ns.no_persist_state) persistInstalledAt(flake, machine);
}

