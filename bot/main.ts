#!/usr/bin/env node
// The entry point. The Node version is checked before anything else is loaded: on an older Node the
// dependencies fail as they load, with errors that say nothing about the version
// (`TEXT_ENCODINGS.union is not a function` on Node 20).

const NEEDED_MAJOR = 22;
const major = Number(process.versions.node.split(".")[0]);

if (major < NEEDED_MAJOR) {
  process.stderr.write(
    `clanbot: needs Node.js ${NEEDED_MAJOR} or newer (it is tested on Node 24 LTS); this is Node ${process.versions.node}.\n` +
      "  From the repository, `npm start` runs it on the Node 24 that `npm ci` installs (the `node` dev dependency).\n",
  );
  process.exit(1);
}

const { runMain } = await import("./run-main.ts");
await runMain(process.argv.slice(2));
