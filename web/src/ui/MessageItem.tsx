// One message: text, a payment, a payment request (with accept / decline for the payer), a
// declined request, or a split (who owes what, with accept / decline of the viewer's own share). Every user-supplied text is a JSX text child: rendered as text, never HTML.
import { useState } from 'preact/hooks';
import { formatMoney } from '../money';
import { requestState } from '../timeline';
import type { Id, Message, PaymentRequest, SplitRequest } from '../types';
import type { Services } from './App';
import { ErrorText, Time, timeUntil, useNow, useSubmission } from './common';

export function MessageItem({ services, message, seenBy }: { services: Services; message: Message; seenBy: Id[] }) {
  const mine = message.sender_id === services.me.id;
  const sender = mine ? 'You' : services.users.name(message.sender_id);
  return (
    <li class={`message kind-${message.kind}${mine ? ' mine' : ''}`} data-seq={message.seq}>
      <span class="meta">
        <span class="sender">{sender}</span> <Time at={message.created_at} />
      </span>
      <MessageBody services={services} message={message} />
      {seenBy.length > 0 ? (
        <span class="seen">Seen by {seenBy.map((user) => services.users.name(user)).join(', ')}</span>
      ) : null}
    </li>
  );
}

function MessageBody({ services, message }: { services: Services; message: Message }) {
  // Sentences about you say "You paid bob", "bob paid you"; other names stay as written.
  const name = (id: Id | null, subject: boolean) =>
    id === services.me.id ? (subject ? 'You' : 'you') : services.users.name(id ?? 0);
  if (message.deleted_at !== null) return <p class="text deleted">Message deleted</p>;
  switch (message.kind) {
    case 'text':
      return (
        <p class="text">
          {/* Isolated, so the text's direction never reorders the marker after it. */}
          <bdi>{message.content}</bdi>
          {message.edited_at === null ? null : <span class="edited"> (edited)</span>}
        </p>
      );
    case 'payment': {
      const transfer = message.transfer;
      if (transfer === null) return <p class="card">Payment</p>;
      return (
        <div class="card payment">
          <p>
            <strong>
              {name(transfer.sender_id, true)} paid {name(transfer.receiver_id, false)}{' '}
              {formatMoney(transfer.amount, transfer.currency)}
            </strong>
          </p>
          {message.content === null ? null : <p class="note">{message.content}</p>}
        </div>
      );
    }
    case 'refund': {
      const transfer = message.transfer;
      if (transfer === null) return <p class="card">Refund</p>;
      return (
        <div class="card payment">
          <p>
            <strong>
              {name(transfer.sender_id, true)} refunded {name(transfer.receiver_id, false)}{' '}
              {formatMoney(transfer.amount, transfer.currency)}
            </strong>
          </p>
          {message.content === null ? null : <p class="note">{message.content}</p>}
        </div>
      );
    }
    case 'payment_request':
      return message.payment_request === null ? null : (
        <RequestCard services={services} request={message.payment_request} note={message.content} />
      );
    case 'split_request':
      return message.split_request === null ? null : (
        <SplitCard services={services} split={message.split_request} note={message.content} />
      );
    case 'payment_declined': {
      const request = message.payment_request;
      return (
        <p class="card declined">
          {name(message.sender_id, true)} declined the request
          {request === null ? '' : ` for ${formatMoney(request.amount, request.currency)}`}
        </p>
      );
    }
  }
}

const STATE_LABELS = { pending: 'Waiting', accepted: 'Paid', declined: 'Declined', expired: 'Expired' } as const;

function SplitCard({ services, split, note }: { services: Services; split: SplitRequest; note: string | null }) {
  const now = useNow(30_000);
  const name = (id: Id) => (id === services.me.id ? 'You' : services.users.name(id));
  const mine = split.shares.find((share) => share.payer_id === services.me.id);
  return (
    <div class="card split">
      <p>
        <strong>
          {name(split.requester_id)} split {formatMoney(split.amount, split.currency)} among {split.shares.length}
        </strong>
      </p>
      {note === null ? null : <p class="note">{note}</p>}
      <ul class="shares">
        {split.shares.map((share) => (
          <li key={share.id}>
            {name(share.payer_id)}: {formatMoney(share.amount, share.currency)} ·{' '}
            <span class="state-label">{STATE_LABELS[requestState(share, now)]}</span>
          </li>
        ))}
      </ul>
      {mine === undefined ? null : <RequestCard services={services} request={mine} note={null} />}
    </div>
  );
}

function RequestCard({ services, request, note }: { services: Services; request: PaymentRequest; note: string | null }) {
  const now = useNow(30_000);
  const { busy, error, submit } = useSubmission();
  // Paying takes a second click on a button that appears in place of the first: anyone in a room
  // can post a request, and a new message moving the list must not turn one click into a payment.
  const [confirmingPayment, setConfirmingPayment] = useState(false);
  const state = requestState(request, now);
  const amount = formatMoney(request.amount, request.currency);
  const requester = request.requester_id === services.me.id ? 'You' : services.users.name(request.requester_id);
  const payer = request.payer_id === services.me.id ? 'you' : services.users.name(request.payer_id);

  const answer = (choice: 'accept' | 'decline') =>
    submit(async () => {
      const key = services.pendingPayments.keyFor({ request: request.id, choice });
      try {
        await services.chat.resolve(request.room_id, request.id, choice, key);
        services.pendingPayments.settle(key, null);
      } catch (failure) {
        services.pendingPayments.settle(key, failure);
        throw failure;
      }
    });

  return (
    <div class={`card request state-${state}`}>
      <p>
        <strong>
          {requester} asked {payer} for {amount}
        </strong>
      </p>
      {note === null ? null : <p class="note">{note}</p>}
      <p class="request-state">
        <span class="state-label">{STATE_LABELS[state]}</span>
        {state === 'pending' ? <span class="hint"> · expires {timeUntil(request.expires_at, now)}</span> : null}
      </p>
      {state === 'pending' && request.payer_id === services.me.id ? (
        confirmingPayment ? (
          <div class="request-actions confirm" role="group" aria-label={`Pay ${amount} to ${requester}?`}>
            Pay {amount} to {requester}?
            <button type="button" class="primary" disabled={busy} onClick={() => void answer('accept')}>
              Confirm payment
            </button>
            <button type="button" disabled={busy} onClick={() => setConfirmingPayment(false)}>
              Cancel
            </button>
          </div>
        ) : (
          <div class="request-actions">
            <button type="button" class="primary" disabled={busy} onClick={() => setConfirmingPayment(true)}>
              Pay {amount}
            </button>
            <button type="button" disabled={busy} onClick={() => void answer('decline')}>
              Decline
            </button>
          </div>
        )
      ) : null}
      <ErrorText error={error} />
    </div>
  );
}
