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

/** Where a tab keeps the keys of a person's payments it has no answer for (see PendingPayments). */
const PENDING_PAYMENTS_STORAGE_PREFIX = 'sendinchat.pending_payments.';
/** A tab has a few payments in doubt at most; past this many, the oldest is forgotten. */
const PENDING_PAYMENTS_MAX = 20;
/**
 * How long a payment in doubt keeps its key. A retry comes within minutes of a lost answer; after
 * that, the same details are taken as a new payment (the first one, if it went through, is in the
 * chat and the wallet's history by then).
 */
const PENDING_PAYMENT_KEPT_MS = 60 * 60 * 1000;

interface PendingPayment {
  details: string;
  key: string;
  since: number;
}

/**
 * The Idempotency-Keys of intended payments. Every retry of the same payment (same details)
 * reuses its key, so a double click, a timeout or a lost answer can never pay twice, not even
 * after the form was closed or the page reloaded: a payment's key is stored in the tab's
 * sessionStorage until a definitive answer (gone with the tab, and cleared at log-out). A payment
 * with other details, or one after a definitive answer, gets a new key.
 */
export class PendingPayments {
  /** The truth while the page lives; storage is its copy for the next page of this tab. */
  private pending: PendingPayment[];
  private readonly storageKey: string;
  /** Once the person logs out, nothing more is written: a late answer must not put back what logging out cleared. */
  private stopped = false;

  constructor(
    private readonly storage: Pick<Storage, 'getItem' | 'setItem'>,
    userId: number,
    private readonly now: () => number = Date.now,
  ) {
    this.storageKey = `${PENDING_PAYMENTS_STORAGE_PREFIX}${userId}`;
    this.pending = this.load();
  }

  stop(): void {
    this.stopped = true;
  }

  /** The key for a payment with these details: the pending one's, or a new one, kept first. */
  keyFor(details: unknown): string {
    const fingerprint = JSON.stringify(details);
    const keptSince = this.now() - PENDING_PAYMENT_KEPT_MS;
    this.pending = this.pending.filter((payment) => payment.since >= keptSince);
    const known = this.pending.find((payment) => payment.details === fingerprint);
    if (known !== undefined) return known.key;
    const key = randomId();
    this.pending = [...this.pending, { details: fingerprint, key, since: this.now() }].slice(-PENDING_PAYMENTS_MAX);
    this.save();
    return key;
  }

  /** After an answer: a success or a refusal ends the payment; a retryable failure keeps its key. */
  settle(key: string, error: unknown): void {
    if (error instanceof ApiError && error.retryable) return;
    this.pending = this.pending.filter((payment) => payment.key !== key);
    this.save();
  }

  /** What the previous page of this tab left; anything unreadable counts as nothing. */
  private load(): PendingPayment[] {
    try {
      const parsed: unknown = JSON.parse(this.storage.getItem(this.storageKey) ?? '[]');
      if (!Array.isArray(parsed)) return [];
      return parsed.filter(
        (payment: Partial<PendingPayment> | null): payment is PendingPayment =>
          typeof payment?.details === 'string' && typeof payment.key === 'string' && typeof payment.since === 'number',
      );
    } catch {
      return [];
    }
  }

  /** A full or refused storage only costs the next page these keys: memory still has them. */
  private save(): void {
    if (this.stopped) return;
    try {
      this.storage.setItem(this.storageKey, JSON.stringify(this.pending));
    } catch {
      // Nothing better to do: the page itself keeps every key it gave out.
    }
  }
}
