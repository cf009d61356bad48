// Paying someone in the room, or asking them for money. In a direct chat that is the other
// person; in a group room, a member named by username.
import { useRef, useState } from 'preact/hooks';
import { describe } from '../http';
import { noteOrNull, parseAmount, PaymentIntent } from '../money';
import type { RoomSummary } from '../types';
import type { Services } from './App';
import { ErrorText } from './common';
import { MoneyFields, type MoneyInput } from './MoneyFields';

export function PaymentPanel({
  services,
  room,
  kind,
  onDone,
}: {
  services: Services;
  room: RoomSummary;
  kind: 'pay' | 'request';
  onDone: () => void;
}) {
  const [username, setUsername] = useState('');
  const [money, setMoney] = useState<MoneyInput>({ amount: '', currency: services.wallet.currencies()[0] ?? 'USD', note: '' });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const intent = useRef(new PaymentIntent());
  const verb = kind === 'pay' ? 'Pay' : 'Request';
  const peer = room.kind === 'direct' ? room.peer_id : null;

  const submit = async (event: Event) => {
    event.preventDefault();
    if (busy) return;
    const amount = parseAmount(money.amount);
    if (amount === null) {
      setError('Enter an amount like 5 or 12.50.');
      return;
    }
    setBusy(true);
    setError(null);
    const payment = { amount, currency: money.currency, note: noteOrNull(money.note) };
    try {
      const counterpart = peer ?? (await services.users.find(username)).id;
      const key = intent.current.keyFor({ room: room.id, kind, counterpart, ...payment });
      try {
        if (kind === 'pay') await services.chat.pay(room.id, counterpart, payment, key);
        else await services.chat.requestPayment(room.id, counterpart, payment, key);
        intent.current.settle(null);
      } catch (failure) {
        intent.current.settle(failure);
        throw failure;
      }
      onDone();
    } catch (failure) {
      setError(describe(failure));
      setBusy(false);
    }
  };

  const heading = kind === 'pay' ? 'Send money' : 'Ask for money';
  return (
    <form class="payment-panel stack" onSubmit={submit} aria-label={heading}>
      <h3>{heading}</h3>
      {peer === null ? (
        <label>
          {kind === 'pay' ? 'To (username)' : 'From (username)'}
          <input
            autocapitalize="none"
            spellcheck={false}
            required
            maxLength={32}
            value={username}
            onInput={(event) => setUsername(event.currentTarget.value)}
          />
        </label>
      ) : (
        <p class="hint">
          {kind === 'pay' ? 'To' : 'From'} {services.users.name(peer)}
        </p>
      )}
      <MoneyFields value={money} currencies={services.wallet.currencies()} onChange={setMoney} />
      <ErrorText error={error} />
      <div class="row">
        <button type="submit" class="primary" disabled={busy}>
          {verb}
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
