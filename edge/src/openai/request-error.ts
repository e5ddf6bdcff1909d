/** The OpenAI dialect's own error: a request field at fault. Rendered, like every error, in edge/src/errors.ts. */
import { ApiError } from "@corral/protocol";

/** A client error that names the request field at fault (OpenAI's `param`); 400 unless said otherwise. */
export class OpenAIRequestError extends ApiError {
  constructor(
    message: string,
    readonly param: string | null = null,
    status = 400,
  ) {
    super(status, message);
    this.name = "OpenAIRequestError";
  }
}
