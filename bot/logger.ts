import { pino, type Logger } from "pino";

export type { Logger };

/**
 * JSON lines on stderr (stdout belongs to the console front end). Secrets are redacted by key,
 * wherever they appear in logged objects, as a second line of defence: code never logs them on purpose.
 */
export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { name: "clanbot" },
      redact: {
        paths: [
          "accessToken",
          "access_token",
          "password",
          "*.accessToken",
          "*.access_token",
          "*.password",
          "headers.authorization",
          "*.headers.authorization",
        ],
        censor: "[redacted]",
      },
    },
    pino.destination({ fd: 2, sync: false }),
  );
}
