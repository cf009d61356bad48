// Amount, currency and note: the fields every payment form shares, and sending what they say.
import { useState } from 'preact/hooks';
import type { PaymentFields } from '../api';
import { ApiError } from '../http';
import { noteOrNull, parseAmount, type PendingPayments } from '../money';
import { useSubmission } from './common';
export interface MoneyInput {
  amount: string;
  currency: string;
  note: string;
}

/** The API's limit on notes. */
const NOTE_MAX_CHARS = 280;

export function MoneyFields({
  value,
  currencies,
  onChange,
}: {
  value: MoneyInput;
  currencies: string[];
  onChange: (value: MoneyInput) => void;
}) {
  return (
    <>
      <div class="row">
        <label class="grow">
          Amount
          <input
            name="amount"
            inputMode="decimal"
            autocomplete="off"
            required
            maxLength={24}
            placeholder="0.00"
            value={value.amount}
            onInput={(event) => onChange({ ...value, amount: event.currentTarget.value })}
          />
        </label>
        <label>
          Currency
          <select
            name="currency"
            value={value.currency}
            onChange={(event) => onChange({ ...value, currency: event.currentTarget.value })}
          >
            {currencies.map((currency) => (
              <option key={currency} value={currency}>
                {currency}
              </option>
            ))}
          </select>
        </label>
      </div>
      <label>
        Note (optional)
        <input
          name="note"
          maxLength={NOTE_MAX_CHARS}
          value={value.note}
          onInput={(event) => onChange({ ...value, note: event.currentTarget.value })}
        />
      </label>
    </>
  );
}

/**
 * A payment form's state and its submission. `pay` checks the amount, then runs `send` with the
 * payment and its Idempotency-Key: the same key for every retry of the same payment to
 * `counterpart` (a double click, a lost answer, also after the form was closed or the page
 * reloaded), a new one for any other (see PendingPayments).
 */
export function usePaymentForm(currency: string, pendingPayments: PendingPayments) {
  const [money, setMoney] = useState<MoneyInput>({ amount: '', currency, note: '' });
  const { busy, error, submit } = useSubmission();
  const pay = (counterpart: unknown, send: (payment: PaymentFields, idempotencyKey: string) => Promise<void>) =>
    submit(async () => {
      const amount = parseAmount(money.amount, money.currency);
      if (amount === null) throw new ApiError('invalid_amount', 0);
      const payment = { amount, currency: money.currency, note: noteOrNull(money.note) };
      const key = pendingPayments.keyFor({ counterpart, ...payment });
      try {
        await send(payment, key);
        pendingPayments.settle(key, null);
      } catch (failure) {
        pendingPayments.settle(key, failure);
        throw failure;
      }
    });
  return { money, setMoney, busy, error, pay };
}
