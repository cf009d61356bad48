// Amounts as people type them and as the API takes them. The client never computes with money:
// it checks the shape of what was typed and sends the text; the ledger does the arithmetic.
import { ApiError } from './http';

/** The API's AmountInput: plain decimal notation, at most 24 characters. */
const AMOUNT = /^[0-9]+(\.[0-9]+)?$/;
const AMOUNT_MAX_CHARS = 24;

/**
 * A comma and exactly three digits reads as thousands in English ("1,000"), as a dot and three
 * digits does in German ("1.000", "1.500"). Taken as a decimal point either would pay a
 * thousandth of what was meant, and the API accepts trailing zeros ("1.500" USD is 1.50), so the
 * client refuses rather than guesses: a comma before three digits always, and any fraction
 * longer than the currency has (`minorUnits`).
 */
const COMMA_THOUSANDS = /^[0-9]+,[0-9]{3}$/;

/** Decimal places of the currencies that do not have two (ISO 4217). */
const MINOR_UNITS: Record<string, number> = { JPY: 0, KRW: 0, KWD: 3, BHD: 3 };

function minorUnits(currency: string): number {
  return MINOR_UNITS[currency] ?? 2;
}

/** The amount to send for what a person typed ("5", "5.00", "5,50"), or null if it is not one. */
export function parseAmount(typed: string, currency: string): string | null {
  const trimmed = typed.trim();
  if (COMMA_THOUSANDS.test(trimmed)) return null;
  const text = trimmed.replace(',', '.');
  if (text.length > AMOUNT_MAX_CHARS || !AMOUNT.test(text) || !/[1-9]/.test(text)) return null;
  const decimals = text.split('.')[1]?.length ?? 0;
  return decimals > minorUnits(currency) ? null : text;
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
