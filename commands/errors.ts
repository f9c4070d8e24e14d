/**
 * A failure written for a person: it was tried and did not work. The dispatcher shows its message
 * with ❌ and logs nothing more. See BadInput (❓) and Refusal (⛔) for the other two outcomes.
 * Anything else that escapes a command is an internal error, logged in full and shown only by reference.
 */
export class UserError extends Error {
  override readonly name: string = "UserError";
}

/**
 * A refusal written for a person: the input is fine, but the bot will not do it (not allowed, held by
 * someone else, beyond a limit the bot keeps, or not set up here): shown with ⛔, audited as refused.
 */
export class Refusal extends UserError {
  override readonly name = "Refusal";
}

/**
 * What was typed does not make a command the bot can run (an unknown command, machine or flag, a
 * value out of range): shown with ❓ and audited as invalid. Nothing was tried.
 */
export class BadInput extends UserError {
  override readonly name = "BadInput";
}

/**
 * The command failed and has already shown how (a deploy's status message says it): the dispatcher
 * only marks it ❌ and audits `detail`, without another message.
 */
export class ReportedFailure extends Error {
  override readonly name = "ReportedFailure";
}
