# NixOS module: services.clanbot.
#
# The config file is generated from `settings`; its keys are those of bot/config.ts
# (config.example.yaml documents every one). Only the main keys are declared here,
# to give them NixOS defaults and checks; anything else in `settings` is passed
# through as is, and the bot itself refuses unknown or misspelled keys at start.
{
  config,
  lib,
  pkgs,
  ...
}:

let
  inherit (lib)
    literalExpression
    mkEnableOption
    mkIf
    mkOption
    mkPackageOption
    types
    ;

  cfg = config.services.clanbot;
  format = pkgs.formats.yaml { };

  stateDir = "/var/lib/clanbot";

  # systemd puts credentials under /run/credentials/<unit>/ (what %d expands to);
  # the YAML cannot expand %d, so the file names the resulting path itself.
  accessTokenCredential = "matrix-access-token";
  accessTokenPath = "/run/credentials/clanbot.service/${accessTokenCredential}";
  ageIdentityCredential = "age-identity";
  ageIdentityPath = "/run/credentials/clanbot.service/${ageIdentityCredential}";

  configFile = format.generate "clanbot.yaml" cfg.settings;

  # Local clan checkouts: the bot evaluates them now and will commit to them later
  # (`clan vars`), so they must stay writable under ProtectSystem=strict.
  # Anything not an absolute path (a flake reference) is left alone.
  flakeDirs = lib.filter (lib.hasPrefix "/") (map (c: c.flake) cfg.settings.clans);

  # A freeform submodule: the declared options plus any other key of the schema.
  section =
    options:
    types.submodule {
      freeformType = format.type;
      inherit options;
    };

  matrixSecrets = lib.filter (k: cfg.settings.matrix ? ${k}) [
    "accessToken"
    "accessTokenFile"
    "password"
  ];
in
{
  options.services.clanbot = {
    enable = mkEnableOption "clanbot, the Matrix chat-ops bot for Clan";

    package = mkPackageOption pkgs "clanbot" { };

    clanPackage = mkOption {
      type = types.nullOr types.package;
      default = null;
      example = literalExpression "inputs.clan-core.packages.\${pkgs.stdenv.hostPlatform.system}.clan-cli";
      description = ''
        The package providing the `clan` CLI (clan-cli from clan-core). When set, it is on
        the service's PATH and `settings.clan.command` defaults to its `clan`. When null,
        `clan` must be found some other way (for example an absolute `settings.clan.command`).
      '';
    };

    accessTokenFile = mkOption {
      # A string, not a Nix path: a path literal would be copied into the world-readable store.
      type = types.nullOr (
        types.pathWith {
          inStore = false;
          absolute = true;
        }
      );
      default = null;
      example = "/run/secrets/clanbot-access-token";
      description = ''
        File holding the Matrix access token of the bot's account (the token only).
        It is read by systemd as root and handed to the service as a credential
        (`LoadCredential=`), so it may stay readable by root only and never enters the
        Nix store; `settings.matrix.accessTokenFile` is set to the credential's path.

        Password logins are not supported by the module: the config has only an inline
        `matrix.password`, which would end up in the Nix store. Create an access token for
        the bot's account instead.
      '';
    };

    ageIdentityFile = mkOption {
      type = types.nullOr (
        types.pathWith {
          inStore = false;
          absolute = true;
        }
      );
      default = null;
      example = "/run/secrets/clanbot-age-identity";
      description = ''
        The bot's age identity (an `AGE-SECRET-KEY-1...` line, as `age-keygen` writes it),
        to which every secret it keeps in its state directory is encrypted. Handed to the
        service as a credential (`LoadCredential=`), so a copy of the state directory alone
        reveals no secret; `settings.secrets.identityFile` is set to the credential's path.
        When null, the bot makes its identity at first start in the state directory.
      '';
    };

    user = mkOption {
      type = types.str;
      default = "clanbot";
      description = ''
        User the bot runs as. The default user is created, with its home in
        ${stateDir} (where its SSH key for reaching clan machines belongs).
        The clan checkouts in `settings.clans` must be owned by this user: git refuses
        to work in repositories owned by someone else.
      '';
    };

    group = mkOption {
      type = types.str;
      default = "clanbot";
      description = "Group the bot runs as. The default group is created.";
    };

    extraGroups = mkOption {
      type = types.listOf types.str;
      default = [ ];
      example = [ "kvm" ];
      description = ''
        Supplementary groups of the service: for example `kvm` to run clan VMs with
        hardware acceleration, or a group that shares the clan checkouts.
      '';
    };

    protectHome = mkOption {
      type = types.either types.bool (
        types.enum [
          "read-only"
          "tmpfs"
        ]
      );
      default = "read-only";
      description = ''
        systemd's `ProtectHome=` for the service. The default lets the bot read clan
        checkouts under /home; those listed in `settings.clans` are made writable.
        Use `true` when no clan lives under /home.
      '';
    };

    settings = mkOption {
      default = { };
      description = ''
        The bot's configuration, written to a YAML file in the Nix store (so no secrets here:
        see `accessTokenFile`). Keys and their meaning are those of `config.example.yaml`;
        unknown keys make the bot refuse to start, naming the key.
      '';
      example = literalExpression ''
        {
          matrix = {
            homeserver = "https://matrix.example.org";
            userId = "@clanbot:example.org";
          };
          clans = [
            {
              name = "family";
              room = "#family:example.org";
              flake = "/var/lib/clanbot/clans/family";
            }
          ];
          permissions.operator = 50;
        }
      '';
      type = section {
        matrix = mkOption {
          description = "The bot's Matrix account (other keys: deviceName, maxCommandAge).";
          type = section {
            homeserver = mkOption {
              type = types.strMatching "https?://.+";
              example = "https://matrix.example.org";
              description = "Base URL of the homeserver of the bot's account.";
            };
            userId = mkOption {
              type = types.strMatching "@[^:]+:.+";
              example = "@clanbot:example.org";
              description = "The bot's own Matrix user id.";
            };
          };
        };

        storage = mkOption {
          default = { };
          description = "Where the bot keeps its state.";
          type = section {
            path = mkOption {
              type = types.str;
              default = "${stateDir}/clanbot.sqlite3";
              description = "The SQLite database with all of the bot's state.";
            };
          };
        };

        clan = mkOption {
          default = { };
          description = "How the clan CLI is run (other keys: timeout, inventoryCacheTtl).";
          type = section {
            command = mkOption {
              type = types.str;
              default = if cfg.clanPackage != null then lib.getExe' cfg.clanPackage "clan" else "clan";
              defaultText = literalExpression ''
                if config.services.clanbot.clanPackage != null
                then lib.getExe' config.services.clanbot.clanPackage "clan"
                else "clan"
              '';
              description = "The clan CLI: a name looked up on the service's PATH, or an absolute path.";
            };
          };
        };

        clans = mkOption {
          default = [ ];
          description = ''
            The clans the bot serves: each is a Matrix room bound to a clan checkout on this host.
            Entries may also set `permissions` (power level thresholds for this clan).
          '';
          type = types.listOf (section {
            name = mkOption {
              type = types.strMatching "[A-Za-z0-9][A-Za-z0-9_.-]*";
              example = "family";
              description = "Short name of the clan, used in the bot's answers and state.";
            };
            room = mkOption {
              type = types.strMatching "[!#][^:]+:.+";
              example = "#family:example.org";
              description = "Room id (!id:server) or alias (#alias:server) of the clan's room.";
            };
            flake = mkOption {
              type = types.str;
              example = "/var/lib/clanbot/clans/family";
              description = ''
                The clan's flake: a checkout of its git repository, owned by the bot's user.
                Checkouts outside ${stateDir} are made writable for the service.
              '';
            };
          });
        };
      };
    };
  };

  config = mkIf cfg.enable {
    services.clanbot.settings.matrix.accessTokenFile = mkIf (cfg.accessTokenFile != null) accessTokenPath;
    services.clanbot.settings.secrets.identityFile = mkIf (cfg.ageIdentityFile != null) ageIdentityPath;

    assertions = [
      {
        # The bot checks this too, but only when it starts: fail at evaluation instead.
        assertion = lib.length matrixSecrets == 1;
        message =
          if matrixSecrets == [ ] then
            "services.clanbot: set services.clanbot.accessTokenFile (the file with the bot's Matrix access token)."
          else
            "services.clanbot: the bot logs in with exactly one of services.clanbot.accessTokenFile, "
            + "settings.matrix.accessToken, settings.matrix.accessTokenFile or settings.matrix.password; "
            + "found: ${lib.concatStringsSep ", " matrixSecrets}.";
      }
    ];

    warnings =
      lib.optional (cfg.settings.matrix ? accessToken || cfg.settings.matrix ? password)
        "services.clanbot: settings.matrix.accessToken and settings.matrix.password are written to the world-readable Nix store; use services.clanbot.accessTokenFile.";

    users.users = mkIf (cfg.user == "clanbot") {
      clanbot = {
        isSystemUser = true;
        inherit (cfg) group;
        description = "clanbot service user";
        home = stateDir;
        # Exists before the first start, so an SSH key can be put in ~/.ssh beforehand.
        createHome = true;
      };
    };
    users.groups = mkIf (cfg.group == "clanbot") { clanbot = { }; };

    systemd.services.clanbot = {
      description = "clanbot, Matrix chat-ops bot for Clan";
      wantedBy = [ "multi-user.target" ];
      wants = [ "network-online.target" ];
      after = [ "network-online.target" ];

      # What clan needs to evaluate, build and deploy: Nix (talking to the daemon), git for
      # the flakes, ssh to reach the machines. The system's own Nix and ssh, so their
      # configuration (substituters, ssh_config) applies.
      path = [
        config.nix.package
        pkgs.git
        config.programs.ssh.package
      ]
      ++ lib.optional (cfg.clanPackage != null) cfg.clanPackage;

      serviceConfig = {
        ExecStart = "${lib.getExe cfg.package} --config ${configFile}";
        Restart = "on-failure";
        RestartSec = "10s";
        # Status 2 is a bad config or command line: restarting cannot fix it.
        RestartPreventExitStatus = 2;
        # Stopping or restarting the bot stops only the bot. VMs started with `!vm run` must outlive a
        # restart (the bot finds them again by pid and start time); clan processes of a deploy or
        # backup that a dead bot left behind are stopped by the bot itself at its next start. With the
        # default control-group kill mode, systemd would kill them all on every restart.
        KillMode = "process";

        # A fixed user rather than DynamicUser: the clan checkouts must be owned by a stable
        # uid (git's safe.directory check), the SSH key that reaches clan machines lives in
        # its home, and it can be given groups (kvm) or Nix trust like any user.
        User = cfg.user;
        Group = cfg.group;
        SupplementaryGroups = cfg.extraGroups;

        StateDirectory = "clanbot";
        StateDirectoryMode = "0700";
        WorkingDirectory = stateDir;
        UMask = "0077";

        LoadCredential =
          lib.optional (cfg.accessTokenFile != null) "${accessTokenCredential}:${cfg.accessTokenFile}"
          ++ lib.optional (cfg.ageIdentityFile != null) "${ageIdentityCredential}:${cfg.ageIdentityFile}";
        # A tmpfs for what must be a clear file while the bot runs (its SSH key, for ssh and clan).
        RuntimeDirectory = "clanbot";
        RuntimeDirectoryMode = "0700";

        # Hardening that still lets clan work: builds go through the nix-daemon socket
        # (connecting to a socket works on a read-only mount), ssh and git write only in
        # the home (the state directory), and VMs need /dev/kvm, so no PrivateDevices.
        # No MemoryDenyWriteExecute: V8's JIT needs it. No RestrictNamespaces or system
        # call filter: clan runs vars generators in bubblewrap and VMs in QEMU.
        NoNewPrivileges = true;
        ProtectSystem = "strict";
        ProtectHome = cfg.protectHome;
        # "-": a checkout that does not exist yet must not keep the service from starting.
        ReadWritePaths = map (dir: "-${dir}") flakeDirs;
        PrivateTmp = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectClock = true;
        ProtectHostname = true;
        RestrictSUIDSGID = true;
        RestrictRealtime = true;
        LockPersonality = true;
        RestrictAddressFamilies = [
          "AF_UNIX"
          "AF_INET"
          "AF_INET6"
          "AF_NETLINK"
        ];
        SystemCallArchitectures = "native";
        CapabilityBoundingSet = "";
      };
    };
  };
}
