/**
 * A failure written for a person: the dispatcher shows its message with ❌ and logs nothing more.
 * Anything else that escapes a command is an internal error, logged in full and shown only by reference.
 */
export class UserError extends Error {
  override readonly name: string = "UserError";
}

/** A refusal written for a person (not allowed, or held by someone else): shown with ⛔, audited as refused. */
export class Refusal extends UserError {
  override readonly name = "Refusal";
}

/**
 * The command failed and has already shown how (a deploy's status message says it): the dispatcher
 * only marks it ❌ and audits `detail`, without another message.
 */
export class ReportedFailure extends Error {
  override readonly name = "ReportedFailure";
}
