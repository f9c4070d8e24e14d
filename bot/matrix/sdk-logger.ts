import type { Logger as SdkLogger } from "matrix-js-sdk/lib/logger.js";
import { logger as sdkGlobalLogger } from "matrix-js-sdk/lib/logger.js";
import type { Logger } from "../logger.ts";
import { format } from "node:util";

type Method = "trace" | "debug" | "info" | "warn" | "error";

// The SDK is chatty at info: its routine steps are our debug.
const LEVEL: Record<Method, "debug" | "warn" | "error"> = {
  trace: "debug",
  debug: "debug",
  info: "debug",
  warn: "warn",
  error: "error",
};

function write(log: Logger, method: string, args: unknown[]): void {
  const level = LEVEL[method as Method] ?? "debug";
  if (log.isLevelEnabled(level)) log[level](format(...args));
}

/** The SDK's logger interface over ours, so its lines land in our JSON log and never on stdout. */
export function sdkLogger(log: Logger): SdkLogger {
  const at = (m: Method) => (...args: unknown[]): void => write(log, m, args);
  return {
    trace: at("trace"),
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
    getChild: (namespace: string) => sdkLogger(log.child({ sdk: namespace })),
  };
}

/** Some SDK modules log through its global logger (which writes to console.*): route that too. */
export function routeSdkGlobalLogger(log: Logger): void {
  const target = log.child({ sdk: "global" });
  // At run time it is a loglevel logger; its typings hide the method factory.
  const g = sdkGlobalLogger as unknown as {
    methodFactory: (methodName: string) => (...args: unknown[]) => void;
    rebuild(): void;
  };
  g.methodFactory = (methodName) => (...args) => write(target, methodName, args);
  g.rebuild();
}
