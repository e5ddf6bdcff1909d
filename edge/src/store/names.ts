import { ApiError, OllamaError } from "@corral/protocol";
import { displayShortest, fullName, parseModelName } from "@corral/protocol/names";

/** A tenant-side model name: `key` is the storage identity, `display` what tags/show/ps report. */
export interface TenantModelName {
  key: string;
  display: string;
}

export function tenantModelName(input: string): TenantModelName | null {
  const parsed = parseModelName(input);
  if (!parsed) return null;
  return { key: fullName(parsed), display: displayShortest(parsed) };
}

export function requireModelName(input: string): TenantModelName {
  const name = tenantModelName(input);
  if (!name) throw new ApiError(400, OllamaError.invalidModelName);
  return name;
}

/** What a missing, invalid or other tenant's model is answered with: never a hint that it exists elsewhere. */
export function modelNotFound(input: string): ApiError {
  return new ApiError(404, `model ${JSON.stringify(input)} not found, try pulling it first`);
}
