// Balances, sending money to a username, the history ("load more"), and one transfer's details.
import { useEffect, useRef, useState } from 'preact/hooks';
import { describe } from '../http';
import { formatMoney } from '../money';
import { useObserved } from '../observable';
import { href } from '../router';
import type { Id, Transfer } from '../types';
import type { Services } from './App';
import { ErrorText, Time, UsernameField } from './common';
import { MoneyFields, usePaymentForm } from './MoneyFields';

export function WalletScreen({ services }: { services: Services }) {
  const wallet = useObserved(services.wallet);
  useObserved(services.users);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    heading.current?.focus();
    void wallet.refresh();
    if (wallet.history === null) void wallet.refreshHistory();
  }, [wallet]);

  return (
    <main class="wallet" id="main">
      <h2 ref={heading} tabIndex={-1}>
        Wallet
      </h2>
      <section aria-labelledby="balances-heading">
        <h3 id="balances-heading">Balances</h3>
        <ErrorText error={wallet.balancesError} />
        <ul class="balances">
          {(wallet.balances ?? []).map((balance) => (
            <li key={balance.currency}>
              <span class="amount">{balance.balance}</span> <span class="currency">{balance.currency}</span>
            </li>
          ))}
        </ul>
      </section>
      <SendMoney services={services} />
      <section aria-labelledby="history-heading">
        <h3 id="history-heading">History</h3>
        <ErrorText error={wallet.historyError} />
        {wallet.history?.length === 0 ? <p class="hint">No transfers yet.</p> : null}
        <ul class="history">
          {(wallet.history ?? []).map((transfer) => (
            <li key={transfer.id}>
              <a href={href({ screen: 'transaction', transferId: transfer.id })}>
                <TransferLine services={services} transfer={transfer} />
              </a>
            </li>
          ))}
        </ul>
        {wallet.nextBefore !== null ? (
          <button type="button" disabled={wallet.loadingMore} onClick={() => void wallet.loadMore()}>
            {wallet.loadingMore ? 'Loading…' : 'Load more'}
          </button>
        ) : null}
      </section>
    </main>
  );
}

/** "From alice", "+5.00 USD", the note and the time: one line of the history. */
function TransferLine({ services, transfer }: { services: Services; transfer: Transfer }) {
  const incoming = transfer.receiver_id === services.me.id;
  const counterpart = incoming ? transfer.sender_id : transfer.receiver_id;
  const who =
    transfer.kind === 'deposit' ? 'Deposit' : `${incoming ? 'From' : 'To'} ${services.users.name(counterpart ?? 0)}`;
  return (
    <>
      <span class="who">{who}</span>
      <span class={incoming ? 'amount in' : 'amount out'}>
        {incoming ? '+' : '−'}
        {formatMoney(transfer.amount, transfer.currency)}
      </span>
      {transfer.note === null ? null : <span class="note">{transfer.note}</span>}
      <Time at={transfer.created_at} withDate />
    </>
  );
}

function SendMoney({ services }: { services: Services }) {
  const wallet = services.wallet;
  const [receiver, setReceiver] = useState('');
  const [done, setDone] = useState<string | null>(null);
  const form = usePaymentForm(wallet.currencies()[0] ?? 'USD', services.pendingPayments);

  const submit = (event: Event) => {
    event.preventDefault();
    setDone(null);
    const username = receiver.trim();
    void form.pay(username, async (payment, key) => {
      await wallet.send(username, payment, key);
      setDone(`Sent ${formatMoney(payment.amount, payment.currency)} to ${username}.`);
      setReceiver('');
      form.setMoney({ ...form.money, amount: '', note: '' });
    });
  };

  return (
    <section aria-labelledby="send-heading">
      <h3 id="send-heading">Send money</h3>
      <form class="stack send-money" onSubmit={submit} aria-labelledby="send-heading">
        <UsernameField label="To (username)" value={receiver} onInput={setReceiver} />
        <MoneyFields value={form.money} currencies={wallet.currencies()} onChange={form.setMoney} />
        <ErrorText error={form.error} />
        {done === null ? null : (
          <p class="success" role="status">
            {done}
          </p>
        )}
        <button type="submit" class="primary" disabled={form.busy}>
          {form.busy ? 'Sending…' : 'Send'}
        </button>
      </form>
    </section>
  );
}

export function TransactionScreen({ services, transferId }: { services: Services; transferId: Id }) {
  useObserved(services.users);
  const [transfer, setTransfer] = useState<Transfer | null>(null);
  const [error, setError] = useState<string | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    heading.current?.focus();
    services.api.transaction(transferId).then(setTransfer, (failure) => setError(describe(failure)));
  }, [services, transferId]);
  const name = (id: Id | null) => (id === null ? 'Deposit' : services.users.name(id));

  return (
    <main class="wallet" id="main">
      <a class="back" href={href({ screen: 'wallet' })}>
        ← Wallet
      </a>
      <h2 ref={heading} tabIndex={-1}>
        Transfer {transferId}
      </h2>
      <ErrorText error={error} />
      {transfer === null ? null : (
        <dl class="details">
          <dt>Amount</dt>
          <dd>{formatMoney(transfer.amount, transfer.currency)}</dd>
          <dt>From</dt>
          <dd>{name(transfer.sender_id)}</dd>
          <dt>To</dt>
          <dd>{name(transfer.receiver_id)}</dd>
          <dt>Kind</dt>
          <dd>{transfer.kind === 'deposit' ? 'Deposit' : transfer.kind === 'refund' ? 'Refund' : 'Payment'}</dd>
          <dt>Status</dt>
          <dd>{transfer.status === 'completed' ? 'Completed' : transfer.status}</dd>
          <dt>Note</dt>
          <dd>{transfer.note ?? '—'}</dd>
          <dt>When</dt>
          <dd>
            <Time at={transfer.created_at} withDate />
          </dd>
        </dl>
      )}
    </main>
  );
}
