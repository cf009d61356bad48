// Paying someone in the room, or asking them for money. In a direct chat that is the other
// person; in a group room, a member named by username.
import { useState } from 'preact/hooks';
import type { RoomSummary } from '../types';
import type { Services } from './App';
import { ErrorText, UsernameField } from './common';
import { MoneyFields, usePaymentForm } from './MoneyFields';

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
  const form = usePaymentForm(services.wallet.currencies()[0] ?? 'USD', services.pendingPayments);
  const verb = kind === 'pay' ? 'Pay' : 'Request';
  const peer = room.kind === 'direct' ? room.peer_id : null;

  const submit = (event: Event) => {
    event.preventDefault();
    void form.pay({ room: room.id, kind, counterpart: peer ?? username.trim() }, async (payment, key) => {
      const counterpart = peer ?? (await services.users.find(username)).id;
      if (kind === 'pay') await services.chat.pay(room.id, counterpart, payment, key);
      else await services.chat.requestPayment(room.id, counterpart, payment, key);
      onDone();
    });
  };

  const heading = kind === 'pay' ? 'Send money' : 'Ask for money';
  return (
    <form class="payment-panel stack" onSubmit={submit} aria-label={heading}>
      <h3>{heading}</h3>
      {peer === null ? (
        <UsernameField label={kind === 'pay' ? 'To (username)' : 'From (username)'} value={username} onInput={setUsername} />
      ) : (
        <p class="hint">
          {kind === 'pay' ? 'To' : 'From'} {services.users.name(peer)}
        </p>
      )}
      <MoneyFields value={form.money} currencies={services.wallet.currencies()} onChange={form.setMoney} />
      <ErrorText error={form.error} />
      <div class="row">
        <button type="submit" class="primary" disabled={form.busy}>
          {verb}
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
