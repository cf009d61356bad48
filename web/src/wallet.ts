// The signed-in person's money: balances (shown in the header everywhere) and the history.
import type { Api, PaymentFields } from './api';
import { describe } from './http';
import { Observable } from './observable';
import type { Balance, Id, Transfer } from './types';

export class Wallet extends Observable {
  balances: Balance[] | null = null;
  balancesError: string | null = null;
  history: Transfer[] | null = null;
  historyError: string | null = null;
  /** The `before` cursor of the next (older) page; null when the history is complete. */
  nextBefore: Id | null = null;
  loadingMore = false;

  constructor(private readonly api: Api) {
    super();
  }

  /** Called whenever money may have moved (a payment sent, received, or seen in a chat). */
  async refresh(): Promise<void> {
    await Promise.all([this.refreshBalances(), this.history === null ? Promise.resolve() : this.refreshHistory()]);
  }

  async refreshBalances(): Promise<void> {
    try {
      this.balances = (await this.api.balances()).balances;
      this.balancesError = null;
    } catch (error) {
      this.balancesError = describe(error);
    }
    this.changed();
  }

  /** The newest page again; older pages already shown stay (the list is keyed by id). */
  async refreshHistory(): Promise<void> {
    try {
      const page = await this.api.transactions(null);
      const newest = page.items;
      const known = new Set(newest.map((transfer) => transfer.id));
      const older = (this.history ?? []).filter((transfer) => !known.has(transfer.id));
      this.history = [...newest, ...older];
      if (older.length === 0) this.nextBefore = page.next_before;
      this.historyError = null;
    } catch (error) {
      this.historyError = describe(error);
    }
    this.changed();
  }

  async loadMore(): Promise<void> {
    if (this.nextBefore === null || this.loadingMore) return;
    this.loadingMore = true;
    this.changed();
    try {
      const page = await this.api.transactions(this.nextBefore);
      this.history = [...(this.history ?? []), ...page.items];
      this.nextBefore = page.next_before;
      this.historyError = null;
    } catch (error) {
      this.historyError = describe(error);
    }
    this.loadingMore = false;
    this.changed();
  }

  async send(receiverUsername: string, payment: PaymentFields, idempotencyKey: string): Promise<Transfer> {
    const transfer = await this.api.transfer(receiverUsername, payment, idempotencyKey);
    void this.refresh();
    return transfer;
  }

  /** The default currency first, as the API lists them; USD before anything is loaded. */
  currencies(): string[] {
    return this.balances?.map((balance) => balance.currency) ?? ['USD'];
  }
}
