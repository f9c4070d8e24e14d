/**
 * A failure written for a person: the dispatcher shows its message with ❌ and logs nothing more.
 * Anything else that escapes a command is an internal error, logged in full and shown only by reference.
 */
export class UserError extends Error {
  override readonly name = "UserError";
}
