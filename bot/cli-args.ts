import { parseArgs } from "node:util";

export const USAGE = `Usage: clanbot [--config FILE] [--console] [--flake DIR] [--as USER] [--power-level N]

Runs the clanbot Matrix bot for the clans in its config file.

  --config FILE       the YAML config (default ./config.yaml; see config.example.yaml)
  --console           no homeserver: type commands in this terminal (also what happens
                      when there is no config file)
  --flake DIR         the clan flake for the console (default: the current directory)
  --as USER           the Matrix user the console acts as (default console.user)
  --power-level N     that user's power level (default console.powerLevel, 100)
  --help              this text

Exit status: 0 when stopped, 1 on a runtime failure, 2 on a bad config or command line.`;

export interface CliArgs {
  config: string | undefined;
  console: boolean;
  flake: string | undefined;
  as: string | undefined;
  powerLevel: number | undefined;
  help: boolean;
}

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export function parseCliArgs(argv: readonly string[]): CliArgs {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        config: { type: "string" },
        console: { type: "boolean", default: false },
        flake: { type: "string" },
        as: { type: "string" },
        "power-level": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const pl = values["power-level"];
  if (pl !== undefined && !/^-?\d+$/.test(pl)) throw new UsageError(`--power-level takes a whole number, not '${pl}'`);
  return {
    config: values.config,
    console: values.console,
    flake: values.flake,
    as: values.as,
    powerLevel: pl === undefined ? undefined : Number(pl),
    help: values.help,
  };
}
