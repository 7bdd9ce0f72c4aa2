// An expected failure of an admin API request: its HTTP status and a stable code with a message
// (answered as { "error": { "code", "message" } }). Shared by the admin server and its authenticator.

export class ApiProblem extends Error {
  override name = 'ApiProblem';
  readonly status: number;
  readonly code: string;
  /** Extra response headers (Retry-After on a 429). */
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers;
  }
}
