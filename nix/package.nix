{
  lib,
  stdenv,
  buildNpmPackage,
  importNpmLock,
  nodejs_24,
  sqlite,
  srcOnly,
}:

let
  packageJSON = lib.importJSON ../package.json;

  # Only what the build reads: edits to tests, docs or CI then do not rebuild the package.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../package.json
      ../package-lock.json
      ../tsconfig.json
      ../tsconfig.build.json
      ../bot
      ../commands
      ../ops
      ../storage
      ../config.example.yaml
      ../README.md
      (lib.fileset.maybeMissing ../LICENSE)
    ];
  };

  # See npm-lock.nix for why the lock needs this before importNpmLock can use it.
  npmInputs = import ./npm-lock.nix {
    package = packageJSON;
    packageLock = lib.importJSON ../package-lock.json;
    platform = stdenv.hostPlatform.node.platform or null;
    arch = stdenv.hostPlatform.node.arch or null;
  };
in
buildNpmPackage {
  pname = packageJSON.name;
  inherit (packageJSON) version;
  inherit src;

  # nixpkgs' Node 24 builds and runs the bot; the `node` npm package is not used (see npm-lock.nix).
  nodejs = nodejs_24;

  # importNpmLock fetches each package by the integrity hash already in package-lock.json,
  # so there is no npmDepsHash to keep in step with the lock by hand.
  npmDeps = importNpmLock {
    npmRoot = src;
    inherit (npmInputs) package packageLock;
  };
  # The hook's node-gyp and Node headers come from its own `nodejs` (nixpkgs' default
  # version); sqlite3 is compiled by that node-gyp, so build it against the Node that runs it.
  npmConfigHook = importNpmLock.hooks.npmConfigHook.override { nodejs = nodejs_24; };

  # Install scripts: the config hook installs with --ignore-scripts and then runs
  # `npm rebuild`, which runs the install scripts that are left. With `node` dropped
  # from the lock, that is only sqlite3's `prebuild-install || node-gyp rebuild`:
  # - build_from_source makes prebuild-install give up at once instead of trying to
  #   download a prebuilt binary (no network in the sandbox), so node-gyp compiles it;
  # - `sqlite` is node-sqlite3's gyp variable for an external SQLite (node-gyp turns
  #   npm_config_* variables into gyp variables): headers from sqlite.dev, and the
  #   library from sqlite's lib output through the compiler wrapper, so the addon links
  #   nixpkgs' libsqlite3 (security updates come with nixpkgs) instead of the copy of
  #   SQLite bundled in the npm package.
  buildInputs = [ sqlite ];
  env = {
    npm_config_build_from_source = "true";
    npm_config_sqlite = "${lib.getDev sqlite}";
  };

  # `npm run build` (tsc -p tsconfig.build.json) writes dist/. npmInstallHook then copies
  # what `npm pack` would publish to $out/lib/node_modules/clanbot, prunes dev
  # dependencies (TypeScript, @types/node) and, from package.json's "bin", writes
  # $out/bin/clanbot with makeWrapper: nodejs_24's node running dist/bot/main.js.

  # Build leftovers that would otherwise sit in the runtime closure (hundreds of MB):
  # - node-gyp's build tree beside the addon (Makefiles, object files, dependency
  #   lists) names the Node source tree and sqlite.dev; `bindings` only loads
  #   build/Release/node_sqlite3.node;
  # - node-gyp itself (an optional dependency of sqlite3, so not pruned as a dev
  #   dependency) has Python scripts whose patched shebangs name python3; nothing
  #   uses it once the addon is built.
  #
  # The wrapper npmInstallHook wrote runs node without the V8 heap flags the bot is meant to run
  # with (package.json's config.nodeFlags, which `npm start` passes too); it is written again
  # with them, so the NixOS module's service and a plain `clanbot` both get them.
  postInstall = ''
    makeWrapper ${lib.getExe nodejs_24} $out/bin/clanbot \
      --add-flags ${lib.escapeShellArg packageJSON.config.nodeFlags} \
      --add-flags $out/lib/node_modules/clanbot/dist/bot/main.js
    modules=$out/lib/node_modules/clanbot/node_modules
    find "$modules/sqlite3/build" -mindepth 1 -maxdepth 1 ! -name Release -exec rm -rf {} +
    find "$modules/sqlite3/build/Release" -mindepth 1 -maxdepth 1 ! -name node_sqlite3.node -exec rm -rf {} +
    rm -r "$modules/node-gyp"
    find "$modules/.bin" -xtype l -delete
  '';
  # Fails the build, instead of silently growing the closure, if any of that comes back.
  disallowedReferences = [
    (srcOnly nodejs_24)
    (lib.getDev sqlite)
    nodejs_24.python
  ];

  # The check runs the installed program, not the build tree: it fails if dist/ did not
  # make it into the package, if a runtime dependency was pruned, or if the sqlite3
  # addon does not load against the linked library.
  doInstallCheck = true;
  installCheckPhase = ''
    runHook preInstallCheck
    $out/bin/clanbot --help > /dev/null
    (
      cd $out/lib/node_modules/clanbot
      ${lib.getExe nodejs_24} --input-type=module -e '
        import sqlite3 from "sqlite3";
        const db = new sqlite3.Database(":memory:");
        db.get("select sqlite_version() as v", (err, row) => {
          if (err) throw err;
          console.log("sqlite3 addon works, SQLite " + row.v);
        });
      '
    )
    runHook postInstallCheck
  '';

  meta = {
    inherit (packageJSON) description;
    license = lib.licenses.mit;
    mainProgram = "clanbot";
  };
}
