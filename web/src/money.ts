// Amounts as people type them and as the API takes them. The client never computes with money:
// it checks the shape of what was typed and sends the text; the ledger does the arithmetic.
import { ApiError } from './http';

/** The API's AmountInput: plain decimal notation, at most 24 characters. */
const AMOUNT = /^[0-9]+(\.[0-9]+)?$/;
const AMOUNT_MAX_CHARS = 24;

/**
 * A separator and exactly three digits reads as thousands in many locales: "1,000" in English,
 * "1.000" in German. Taken as a decimal point they would mean one unit (the API accepts "1.000"
 * for 1.00), so they are refused rather than guessed. A three-decimal amount other than ".000"
 * (for the dinars) is typed with a dot, and a wrong guess there is refused by the API's precision
 * check instead of paying less.
 */
const THOUSANDS_LOOKALIKE = /^[0-9]+(,[0-9]{3}|\.000)$/;

/** The amount to send for what a person typed ("5", "5.00", "5,50"), or null if it is not one. */
export function parseAmount(typed: string): string | null {
  const trimmed = typed.trim();
  if (THOUSANDS_LOOKALIKE.test(trimmed)) return null;
  const text = trimmed.replace(',', '.');
  if (text.length > AMOUNT_MAX_CHARS || !AMOUNT.test(text) || !/[1-9]/.test(text)) return null;
  return text;
}

export function formatMoney(amount: string, currency: string): string {
  return `${amount} ${currency}`;
}

/** A note as the API takes it: blank means none. */
export function noteOrNull(typed: string): string | null {
  const note = typed.trim();
  return note === '' ? null : note;
}

/** 128 random bits as hex; unlike crypto.randomUUID, available outside secure contexts too. */
export function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

/**
 * The Idempotency-Key of one intended payment. Every retry of the same payment (same details)
 * reuses the key, so a double click, a timeout or a lost answer can never pay twice; a payment
 * with other details, or one after a definitive answer, gets a new key.
 */
export class PaymentIntent {
  private current: { details: string; key: string } | null = null;

  keyFor(details: unknown): string {
    const fingerprint = JSON.stringify(details);
    if (this.current === null || this.current.details !== fingerprint) {
      this.current = { details: fingerprint, key: randomId() };
    }
    return this.current.key;
  }

  /** After an answer: a success or a refusal ends the intent; a retryable failure keeps it. */
  settle(error: unknown): void {
    if (!(error instanceof ApiError && error.retryable)) this.current = null;
  }
}
