{
  description = "clanbot: a Matrix chat-ops bot for Clan";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      inherit (nixpkgs) lib;

      # Clan machines are Linux; these are the two platforms the bot is meant to run on.
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
    in
    {
      packages = forAllSystems (pkgs: rec {
        clanbot = pkgs.callPackage ./nix/package.nix { };
        default = clanbot;
      });

      # For building the bot with another nixpkgs: `pkgs.clanbot` after applying it.
      overlays.default = final: _prev: {
        clanbot = final.callPackage ./nix/package.nix { };
      };

      nixosModules = {
        clanbot =
          { lib, pkgs, ... }:
          {
            imports = [ ./nix/module.nix ];
            # The package this flake builds and checks, unless the system picks another
            # (for example pkgs.clanbot from the overlay, built with the system's nixpkgs).
            services.clanbot.package =
              lib.mkDefault
                self.packages.${pkgs.stdenv.hostPlatform.system}.default;
          };
        default = self.nixosModules.clanbot;
      };

      checks = forAllSystems (
        pkgs:
        let
          inherit (pkgs.stdenv.hostPlatform) system;
          # Evaluates the module in a small system and builds only the unit file: this
          # catches option and type errors without a VM (which CI machines may not run).
          moduleEval = lib.nixosSystem {
            modules = [
              self.nixosModules.default
              {
                nixpkgs.hostPlatform = system;
                boot.isContainer = true;
                system.stateVersion = "25.11";
                services.clanbot = {
                  enable = true;
                  accessTokenFile = "/run/secrets/clanbot-access-token";
                  extraGroups = [ "kvm" ];
                  settings = {
                    matrix = {
                      homeserver = "https://matrix.example.org";
                      userId = "@clanbot:example.org";
                    };
                    clans = [
                      {
                        name = "family";
                        room = "#family:example.org";
                        flake = "/srv/clans/family";
                      }
                    ];
                    # A key the module does not declare, passed through as is.
                    permissions.operator = 50;
                  };
                };
              }
            ];
          };
        in
        {
          package = self.packages.${system}.default;
          # Assertions are only enforced for a whole system build, so check them here.
          module =
            let
              failed = lib.filter (a: !a.assertion) moduleEval.config.assertions;
            in
            if failed == [ ] then
              moduleEval.config.systemd.units."clanbot.service".unit
            else
              throw (lib.concatMapStringsSep "\n" (a: a.message) failed);
        }
      );

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          # Nix itself is not added: the shell uses the system's, which talks to its daemon.
          packages = [
            pkgs.nodejs_24
            # sqlite3's native build: node-gyp needs Python; make and the C++ compiler come
            # with mkShell's stdenv.
            pkgs.python3
            pkgs.sqlite
            pkgs.git
            pkgs.openssh
          ]
          # For the join page's browser test; the shell works without it where it is not built.
          ++ lib.optional (lib.meta.availableOn pkgs.stdenv.hostPlatform pkgs.chromium) pkgs.chromium;

          # Build sqlite3 against this shell's SQLite, as the package does, instead of
          # trying to download a prebuilt binary.
          env = {
            npm_config_build_from_source = "true";
            npm_config_sqlite = "${lib.getDev pkgs.sqlite}";
          };

          shellHook = ''
            echo "clanbot dev shell: Node $(node --version), npm $(npm --version)."
            echo "  npm ci --ignore-scripts && npm rebuild sqlite3   # install; npm scripts then run on this Node 24"
            echo "  npm test                                          # whole suite;  nix build  # the package"
            echo "(A plain 'npm ci' also runs the 'node' dev dependency's download of a generic Node binary,"
            echo " which NixOS cannot run without nix-ld.)"
          '';
        };
      });

      formatter = forAllSystems (pkgs: pkgs.nixfmt-tree);
    };
}
