// clan's argument parser (clan_cli/cli.py and the register_*_parser functions), as far
// as the fake emulates it. The common flags --debug, --option, --flake exist only on
// the leaf parsers, as in clan: `clan --flake X machines list` is a usage error.

import { COMMON_FLAGS, addSubcommands, addSubparser, makeParser } from "./argparse.mjs";
import { addVmsParser, releaseAtLeast, vmsAvailable } from "./vms.mjs";

const link = (url) => `\x1b]8;;${url}\x1b\\${url}\x1b]8;;\x1b\\`;
const DOCS = "https://clan.lol/docs/unstable";

const HOST_KEY_CHECK = ["strict", "ask", "accept-new", "tofu", "none"];

const lenient = (parser) => {
  parser.lenient = true;
  return parser;
};

/** clan_cli/vars/cli.py: the subcommands the fake emulates; the others keep their arguments unparsed. */
function addVarsParser(vars) {
  addSubcommands(vars, { required: true, help: "the command to run" });
  const machine = (help) => ({ dest: "machine", nargs: 1, help });
  const varId = (help) => ({ dest: "var_id", nargs: 1, help });
  const machines = (help) => ({ dest: "machines", nargs: "*", metavar: "machines", default: [], help });
  lenient(addSubparser(vars, "keygen", { help: "initialize sops keys for vars" }));
  addSubparser(vars, "check", {
    help: "check if all vars are present and valid",
    positionals: [machines("machines to check vars for. if empty, check vars for all machines")],
    options: [{ flags: ["--generator", "-g"], dest: "generator", nargs: 1, kind: "store", help: "the generator to check" }, ...COMMON_FLAGS],
  });
  lenient(addSubparser(vars, "fix", { help: "fix inconsistencies in the vars store" }));
  addSubparser(vars, "list", {
    help: "list all vars",
    positionals: [machine("The machine to print vars for")],
    options: [...COMMON_FLAGS],
  });
  addSubparser(vars, "get", {
    help: "get a specific var",
    positionals: [machine("The machine to print vars for"), varId("The var id to get the value for. Example: ssh-keys/pubkey")],
    options: [...COMMON_FLAGS],
  });
  addSubparser(vars, "set", {
    help: "set a var",
    positionals: [machine("The machine to set a var for"), varId("The var id for which to set the value. Example: ssh-keys/pubkey")],
    options: [...COMMON_FLAGS],
  });
  addSubparser(vars, "generate", {
    help: "(re-)generate vars for specific or all machines",
    positionals: [machines("machine to generate vars for. if empty, generate vars for all machines")],
    options: [
      { flags: ["--generator", "-g"], dest: "generator", nargs: 1, kind: "store", help: "execute only the specified generator. If unset, execute all generators" },
      { flags: ["--regenerate", "-r"], dest: "regenerate", nargs: 0, kind: "true", help: "whether to regenerate vars for the specified machine" },
      { flags: ["--no-regenerate"], dest: "regenerate", nargs: 0, kind: "false", help: "whether to regenerate vars for the specified machine" },
      { flags: ["--no-sandbox"], dest: "no_sandbox", nargs: 0, kind: "true", help: "disable sandboxing when executing the generator." },
      { flags: ["--fake-prompts"], dest: "fake_prompts", nargs: 0, kind: "true", help: "automatically fill prompt responses for testing (unsafe)" },
      ...COMMON_FLAGS,
    ],
  });
  lenient(addSubparser(vars, "upload", { help: "upload secrets for machines" }));
  lenient(addSubparser(vars, "export", { help: "export vars" }));
  lenient(addSubparser(vars, "import", { help: "import vars" }));
  return vars;
}

export function buildParser() {
  const root = makeParser({
    prog: "clan",
    usage: "%(prog)s [-h] [SUBCOMMAND]",
    description: "The clan cli tool",
    epilog: `Online reference for the clan cli tool: ${link(`${DOCS}/reference/cli`)}\nFor more detailed information, visit: ${link(DOCS)}\n        `,
  });
  addSubcommands(root, {});
  const top = (name, help, aliases = []) => addSubparser(root, name, { help, aliases, description: help, leaf: false });

  lenient(top("show", "Show meta information about the clan"));
  lenient(top("init", "Initialize a new clan"));

  const backups = top("backups", "Manage backups of clan machines", ["b"]);
  addSubcommands(backups, { required: true, help: "the command to run" });
  const machineArg = (help) => ({ dest: "machine", nargs: 1, help });
  addSubparser(backups, "list", {
    help: "list backups",
    positionals: [machineArg("machine in the flake to show backups of")],
    options: [{ flags: ["--provider"], dest: "provider", nargs: 1, kind: "store", help: "backup provider to filter by" }, ...COMMON_FLAGS],
  });
  addSubparser(backups, "create", {
    help: "create backups",
    positionals: [machineArg("machine in the flake to create backups of")],
    options: [{ flags: ["--provider"], dest: "provider", nargs: 1, kind: "store", help: "backup provider to use" }, ...COMMON_FLAGS],
  });
  addSubparser(backups, "restore", {
    help: "restore backups",
    positionals: [
      machineArg("machine in the flake to create backups of"),
      { dest: "provider", nargs: 1, help: "backup provider to use" },
      { dest: "name", nargs: 1, help: "Name of the backup to restore" },
    ],
    options: [{ flags: ["--service"], dest: "service", nargs: 1, kind: "store", help: "name of the service to restore" }, ...COMMON_FLAGS],
  });

  lenient(top("templates", "Interact with templates"));
  lenient(top("flash", "Flashes your machine to an USB drive"));
  lenient(top("ssh", "Ssh to a remote machine"));
  lenient(top("secrets", "Manage secrets"));
  addVarsParser(top("vars", "Manage vars", ["va"]));

  const machines = top("machines", "Manage machines and their configuration", ["m"]);
  addSubcommands(machines, {
    required: true,
    help: "the command to run",
    metavar: "{build,update,create,delete,list,init-hardware-config,update-hardware-config,install,generations}",
  });
  const tags = {
    flags: ["--tags"],
    dest: "tags",
    nargs: "+",
    kind: "store",
    default: [],
    help: "Tags that machines should be queried for. Multiple tags will intersect.",
  };
  const machineNames = (help) => ({ dest: "machines", nargs: "*", metavar: "MACHINE", default: [], help });
  // `machines build` came in 2025-11 (release 25.11): older releases have no such subcommand.
  if (releaseAtLeast(25, 11)) addSubparser(machines, "build", {
    help: "Build machine configurations",
    aliases: ["b"],
    positionals: [machineNames("Machine(s) to build. If no machines are specified, all machines will be built.")],
    options: [
      tags,
      { flags: ["--format"], dest: "format", nargs: 1, kind: "store", default: "toplevel", help: "Build format: 'toplevel' for special builds, or any format name for config.system.build.images.{format} (e.g., 'iso', 'sd-card'). Default: toplevel." },
      { flags: ["--dry-run"], dest: "dry_run", nargs: 0, kind: "true", help: "Perform a dry run to validate the configuration without actually building." },
      { flags: ["--no-link"], dest: "no_link", nargs: 0, kind: "true", help: "Do not create result symlinks." },
      { flags: ["--no-secrets"], dest: "no_secrets", nargs: 0, kind: "true", help: "Do not embed secrets into the built image." },
      { flags: ["--no-sandbox"], dest: "no_sandbox", nargs: 0, kind: "true", help: "Disable sandboxing when executing generators and image scripts." },
      { flags: ["--system"], dest: "system", nargs: 1, kind: "store", help: "Target system to build for (e.g. 'x86_64-linux', 'aarch64-linux')." },
      ...COMMON_FLAGS,
    ],
  });
  addSubparser(machines, "update", {
    help: "Update one or more machines",
    aliases: ["u"],
    positionals: [
      {
        dest: "machines",
        nargs: "*",
        metavar: "MACHINE",
        default: [],
        help: "Machine to update. If no machines are specified, all machines that don't require explicit updates will be updated.",
      },
    ],
    options: [
      tags,
      { flags: ["--host-key-check"], dest: "host_key_check", nargs: 1, kind: "store", choices: HOST_KEY_CHECK, default: "ask", help: "Host key (.ssh/known_hosts) check mode." },
      { flags: ["--target-host"], dest: "target_host", nargs: 1, kind: "store", help: "Address of the machine to update, in the format of user@host:1234." },
      {
        flags: ["--build-host"],
        dest: "build_host",
        nargs: 1,
        kind: "store",
        help: "The machine on which to build the machine configuration.\nPass 'localhost' to build on the local machine, or an ssh address like user@host:1234\n",
      },
      {
        flags: ["--upload-inputs"],
        dest: "upload_inputs",
        nargs: 0,
        kind: "true",
        help: "Upload all flake inputs from the local machine instead of the build host/target host.\nThis is useful if downloading the inputs requires authentication which is only available to the local machine",
      },
      {
        flags: ["--specialisation"],
        dest: "specialisation",
        nargs: 1,
        kind: "store",
        help: `Activate a NixOS specialisation on the target machine. Specialisations are named, pre-built alternative system configurations that can be switched to without rebuilding. See ${link(`${DOCS}/guides/specialisations`)}`,
      },
      {
        flags: ["--no-check"],
        dest: "no_check",
        nargs: 0,
        kind: "true",
        help: "Skip NixOS pre-switch safety checks (switch inhibitors). Use when you know the live switch is safe despite critical component changes. Equivalent to setting NIXOS_NO_CHECK=1.",
      },
      ...COMMON_FLAGS,
    ],
  });
  lenient(addSubparser(machines, "create", { help: "Create a machine" }));
  lenient(addSubparser(machines, "delete", { help: "Delete a machine" }));
  addSubparser(machines, "list", { help: "List machines", options: [tags, ...COMMON_FLAGS] });
  lenient(addSubparser(machines, "init-hardware-config", { help: "Generate hardware specifics for a machine" }));
  lenient(addSubparser(machines, "update-hardware-config", { help: "Generate hardware specifics for a machine" }));
  addSubparser(machines, "install", {
    help: "Install a machine",
    description:
      "Install a configured machine over the network.\nThe target must be a Linux based system reachable via SSH.\nInstalling a machine means overwriting the target's disk.\n        ",
    epilog: `This subcommand provides an interface to install machines managed by Clan.

Examples:

  $ clan machines install [MACHINE] --target-host [TARGET_HOST]
  Will install the specified machine [MACHINE] to the specified [TARGET_HOST].
  If the \`--target-host\` flag is omitted will try to find host information by
  checking the deployment configuration inside the specified machine.

  $ clan machines install [MACHINE] --json [JSON]
  Will install the specified machine [MACHINE] to the host exposed by
  the deployment information of the [JSON] deployment string.

Further references:

- ${DOCS}/getting-started/getting-started-physical
- ${DOCS}/getting-started/getting-started-virtualbox
        `,
    // clan_cli/machines/install.py register_install_parser(), in its order
    positionals: [{ dest: "machine", nargs: 1, help: "machine to install" }],
    options: [
      { flags: ["--kexec"], dest: "kexec", nargs: 1, kind: "store", help: "use another kexec tarball to bootstrap NixOS" },
      { flags: ["--no-reboot"], dest: "no_reboot", nargs: 0, kind: "true", help: "do not reboot after installation (deprecated)" },
      { flags: ["--host-key-check"], dest: "host_key_check", nargs: 1, kind: "store", choices: HOST_KEY_CHECK, default: "ask", help: "Host key (.ssh/known_hosts) check mode." },
      { flags: ["--build-on"], dest: "build_on", nargs: 1, kind: "store", choices: ["auto", "local", "remote"], help: "where to build the NixOS configuration" },
      { flags: ["--yes"], dest: "yes", nargs: 0, kind: "true", help: "do not ask for confirmation" },
      {
        flags: ["--update-hardware-config"],
        dest: "update_hardware_config",
        nargs: 1,
        kind: "store",
        choices: ["nixos-facter", "nixos-generate-config", "none"],
        default: "none",
        help: "Update the hardware configuration (auto-prompted if missing in interactive mode)",
      },
      {
        flags: ["--no-persist-state"],
        dest: "no_persist_state",
        nargs: 0,
        kind: "true",
        help: "Disable persisting the result of the installation after it is done",
      },
      { flags: ["--phases"], dest: "phases", nargs: 1, kind: "store", help: "comma separated list of phases to run. Default is: kexec,disko,install,reboot" },
      {
        flags: ["-j", "--json"],
        dest: "json",
        nargs: 1,
        kind: "store",
        group: "target",
        help: "specify the json file for ssh data (generated by starting the clan installer)",
      },
      { flags: ["--target-host"], dest: "target_host", nargs: 1, kind: "store", group: "target", help: "ssh address to install to in the form of user@host:2222" },
      {
        flags: ["--password"],
        dest: "password",
        nargs: 1,
        kind: "store",
        group: "authentication",
        help: "specify the password for the ssh connection (generated by starting the clan installer)",
      },
      { flags: ["-i"], dest: "identity_file", nargs: 1, kind: "store", group: "authentication", help: "specify which SSH private key file to use" },
      {
        flags: ["-P", "--png"],
        dest: "png",
        nargs: 1,
        kind: "store",
        group: "target",
        help: "specify the json file for ssh data as the qrcode image (generated by starting the clan installer)",
      },
      ...COMMON_FLAGS,
    ],
  });
  addSubparser(machines, "generations", {
    help: "List NixOS generations of a machine",
    positionals: [machineNames("Machine to update. If no machines are specified, all machines that don't require explicit updates will be updated.")],
    options: [
      tags,
      { flags: ["--host-key-check"], dest: "host_key_check", nargs: 1, kind: "store", choices: HOST_KEY_CHECK, default: "ask", help: "Host key (.ssh/known_hosts) check mode." },
      { flags: ["--target-host"], dest: "target_host", nargs: 1, kind: "store", help: "Address of the machine to update, in the format of user@host:1234." },
      ...COMMON_FLAGS,
    ],
  });

  addSubparser(root, "select", {
    help: "Select nixos values from the flake",
    description: "Select nixos values from the flake",
    aliases: ["se"],
    positionals: [{ dest: "selector", nargs: 1, help: "select from a flake" }],
    options: [{ flags: ["--impure"], dest: "impure", nargs: 0, kind: "true" }, ...COMMON_FLAGS],
  });

  lenient(top("network", "Manage networks", ["net"]));
  if (vmsAvailable()) addVmsParser(root, top);
  return root;
}
