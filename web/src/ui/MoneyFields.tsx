// Amount, currency and note: the fields every payment form shares.
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
