// The whole app: the log-in screen, or the signed-in screens with their header.
import { useEffect, useMemo } from 'preact/hooks';
import { Api } from '../api';
import { Chat } from '../chat';
import { formatMoney, PendingPayments } from '../money';
import { useObserved } from '../observable';
import { href, useRoute } from '../router';
import type { Session } from '../session';
import type { User } from '../types';
import { Users } from '../users';
import { Wallet } from '../wallet';
import { AccountScreen } from './AccountScreen';
import { AuthScreen } from './AuthScreen';
import { ChatsScreen } from './ChatsScreen';
import { TransactionScreen, WalletScreen } from './WalletScreen';

export function App({ session }: { session: Session }) {
  useObserved(session);
  const state = session.state;
  useEffect(() => {
    // The User Timing mark the end-to-end test reads as "first render".
    if (state.status !== 'starting' && performance.getEntriesByName('sendinchat:first-render').length === 0) {
      requestAnimationFrame(() => performance.mark('sendinchat:first-render'));
    }
  }, [state.status]);
  switch (state.status) {
    case 'starting':
      return (
        <main class="starting" id="main" aria-busy="true">
          <p>Loading…</p>
        </main>
      );
    case 'signed_out':
      return <AuthScreen session={session} notice={state.notice} />;
    case 'signed_in':
      // Keyed by user: a new login starts from nothing left by the previous one.
      return <SignedIn key={state.user.id} session={session} me={state.user} />;
  }
}

export interface Services {
  api: Api;
  users: Users;
  wallet: Wallet;
  chat: Chat;
  pendingPayments: PendingPayments;
  me: User;
}

function SignedIn({ session, me }: { session: Session; me: User }) {
  const services = useMemo<Services>(() => {
    const api = new Api(session);
    const users = new Users(api, me);
    const wallet = new Wallet(api);
    const chat = new Chat(api, session, me, users, () => void wallet.refresh());
    return { api, users, wallet, chat, pendingPayments: new PendingPayments(sessionStorage, me.id), me };
  }, [session, me]);
  useEffect(() => {
    services.chat.start();
    void services.wallet.refreshBalances();
    return () => {
      services.chat.stop();
      services.pendingPayments.stop();
    };
  }, [services]);
  const route = useRoute();

  return (
    <div class="shell">
      <a class="skip-link" href="#main" onClick={skipToContent}>
        Skip to content
      </a>
      <header class="top">
        <span class="brand">SendInChat</span>
        <nav aria-label="Main">
          <a href={href({ screen: 'chats' })} aria-current={route.screen === 'chats' || route.screen === 'room' ? 'page' : undefined}>
            Chats
          </a>
          <a href={href({ screen: 'wallet' })} aria-current={route.screen === 'wallet' || route.screen === 'transaction' ? 'page' : undefined}>
            Wallet
          </a>
          <a href={href({ screen: 'account' })} aria-current={route.screen === 'account' ? 'page' : undefined}>
            Account
          </a>
        </nav>
        <BalanceSummary wallet={services.wallet} />
        <span class="whoami" aria-label={`Logged in as ${me.username}`}>
          {me.username}
        </span>
        <button type="button" class="quiet" onClick={() => session.logout()}>
          Log out
        </button>
      </header>
      {route.screen === 'account' ? (
        <AccountScreen services={services} />
      ) : route.screen === 'wallet' ? (
        <WalletScreen services={services} />
      ) : route.screen === 'transaction' ? (
        <TransactionScreen services={services} transferId={route.transferId} />
      ) : (
        <ChatsScreen services={services} roomId={route.screen === 'room' ? route.roomId : null} />
      )}
    </div>
  );
}

function BalanceSummary({ wallet }: { wallet: Wallet }) {
  useObserved(wallet);
  const main = wallet.balances?.[0];
  return (
    <span class="balance" role="status">
      {main === undefined ? '' : <>Balance: {formatMoney(main.balance, main.currency)}</>}
    </span>
  );
}

/** Moves focus to the main content without changing the address: the fragment is the route. */
function skipToContent(event: Event): void {
  const main = document.getElementById('main');
  if (main === null) return;
  event.preventDefault();
  main.tabIndex = -1;
  main.focus();
}

