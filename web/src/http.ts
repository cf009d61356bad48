// One function for every request to the API: JSON in and out, the bearer token, the
// Idempotency-Key, and every failure turned into an `ApiError` with a stable code.
import { humanMessage } from './errors';

export class ApiError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
  ) {
    super(humanMessage(code));
    this.name = 'ApiError';
  }

  /**
   * Whether repeating the same request (with the same Idempotency-Key) may succeed: every failure
   * but a definitive refusal (a 4xx other than 408 and 429). A 504 or a lost answer may come from a
   * request that went through, so its retry must carry the same key to be recognised.
   */
  get retryable(): boolean {
    if (this.code === 'network_error' || this.code === 'unexpected_response') return true;
    return this.status >= 500 || this.status === 408 || this.status === 429;
  }
}

export interface CallOptions {
  method?: 'GET' | 'POST' | 'DELETE';
  body?: unknown;
  token?: string;
  idempotencyKey?: string;
}

export async function call<T>(path: string, options: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.idempotencyKey !== undefined) headers['idempotency-key'] = options.idempotencyKey;
  let response: Response;
  try {
    response = await fetch(path, {
      method: options.method ?? 'GET',
      headers,
      body: options.body === undefined ? null : JSON.stringify(options.body),
      cache: 'no-store',
      credentials: 'omit',
    });
  } catch {
    throw new ApiError('network_error', 0);
  }
  if (response.status === 204) return undefined as T;
  let payload: unknown;
  try {
    payload = await response.json();
  } catch {
    throw new ApiError(response.status === 503 ? 'unavailable' : 'unexpected_response', response.status);
  }
  if (!response.ok) throw new ApiError(errorCode(payload), response.status);
  return payload as T;
}

/** The `code` of the API's error envelope `{"error": {"code", "message"}}`. */
function errorCode(payload: unknown): string {
  if (typeof payload === 'object' && payload !== null && 'error' in payload) {
    const error = (payload as { error: unknown }).error;
    if (typeof error === 'object' && error !== null && 'code' in error) {
      const code = (error as { code: unknown }).code;
      if (typeof code === 'string') return code;
    }
  }
  return 'unexpected_response';
}

/** The message to show for anything a request can throw. */
export function describe(error: unknown): string {
  return error instanceof ApiError ? error.message : humanMessage('unexpected_response');
}
