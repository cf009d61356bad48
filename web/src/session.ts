// Who is logged in, and their tokens.
//
// - The access token lives only in this object's memory: no script outside the app's bundle
//   runs on the page (the Content-Security-Policy allows none), and it dies with the page.
// - The refresh token lives in memory while the page is shown, and in sessionStorage only while
//   it is hidden or unloading, so a reload stays logged in (it is exchanged for a new pair at
//   start; the used one stops working). sessionStorage belongs to this one tab and is gone when
//   the tab closes, but browsers copy it into a tab duplicated from this one or opened by it:
//   had the token stayed there, both tabs would rotate it, and presenting a used token revokes
//   the whole session family, logging both out. Taken out of storage while shown, it is not
//   copied: the new tab asks for a log-in. A tab duplicated while the page is hidden does copy
//   it, so the stored token names the page that stored it, and a page finding one first asks
//   (BroadcastChannel) whether that page is still open: if so it leaves the token alone. The API offers no HttpOnly-cookie session, which
//   would keep the token out of scripts' reach altogether.
// - Logging out revokes the token family on the server and clears sessionStorage and memory.
import { ApiError, call, type CallOptions } from './http';
import { humanMessage } from './errors';
import { randomId } from './money';
import { Observable } from './observable';
import type { Tokens, User } from './types';

const REFRESH_TOKEN_KEY = 'sendinchat.refresh_token';
/** Refresh a little before expiry, so a request never leaves with a token about to lapse. */
const EARLY_REFRESH_MS = 30_000;

export type SessionState =
  | { status: 'starting' }
  | { status: 'signed_out'; notice: string | null }
  | { status: 'signed_in'; user: User };

/** Where pages of the app ask whether the page that stored a refresh token is still open. */
const SESSION_CHANNEL = 'sendinchat.session';
/** How long a page waits for the storing page to answer: a reload's old page is gone at once. */
const OWNER_ANSWER_MS = 150;

/** A refresh token as a page stores it: with the id of that page, its owner. */
interface StoredToken {
  token: string;
  owner: string;
}

/** The refresh token the previous page of this tab left in storage, taken out of it. */
function takeStoredRefreshToken(): StoredToken | null {
  const stored = sessionStorage.getItem(REFRESH_TOKEN_KEY);
  sessionStorage.removeItem(REFRESH_TOKEN_KEY);
  try {
    const parsed: unknown = stored === null ? null : JSON.parse(stored);
    const { token, owner } = (parsed ?? {}) as Partial<StoredToken>;
    return typeof token === 'string' && typeof owner === 'string' ? { token, owner } : null;
  } catch {
    return null;
  }
}

export class Session extends Observable {
  /** This page, as the owner of the token it stores. */
  private readonly pageId = randomId();
  private readonly channel = new BroadcastChannel(SESSION_CHANNEL);
  private refreshToken: string | null;
  /** The page that stored the token this page started with: while it is open, the token is its. */
  private readonly storedBy: string | null;
  state: SessionState;
  private access: { token: string; expiresAt: number } | null = null;
  private refreshing: Promise<string> | null = null;

  constructor() {
    super();
    const stored = takeStoredRefreshToken();
    this.refreshToken = stored?.token ?? null;
    this.storedBy = stored?.owner ?? null;
    // Without a refresh token there is nothing to resume: the log-in screen comes at once.
    this.state = this.refreshToken === null ? { status: 'signed_out', notice: null } : { status: 'starting' };
    // A tab duplicated while this page is hidden copies the token it stored; the copy asks
    // whether this page is still open before using it, and this page says so.
    this.channel.onmessage = (event: MessageEvent<{ alive?: string }>) => {
      if (event.data.alive === this.pageId) this.channel.postMessage({ here: this.pageId });
    };
    // Stored only while nobody is looking at the page: a reload, or a tab the browser discards
    // while it is hidden, finds it there; a tab duplicated from the page while shown does not.
    // Memory stays the truth while the page lives.
    const forget = () => sessionStorage.removeItem(REFRESH_TOKEN_KEY);
    addEventListener('pagehide', () => this.store());
    addEventListener('pageshow', forget);
    document.addEventListener('visibilitychange', () =>
      document.visibilityState === 'hidden' ? this.store() : forget(),
    );
    if (document.visibilityState === 'hidden') this.store();
  }

  private store(): void {
    if (this.refreshToken === null) return;
    const stored: StoredToken = { token: this.refreshToken, owner: this.pageId };
    sessionStorage.setItem(REFRESH_TOKEN_KEY, JSON.stringify(stored));
  }

  /** Whether the page that stored the token is still open (this tab is a copy of its tab). */
  private ownerIsOpen(owner: string): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), OWNER_ANSWER_MS);
      const listener = (event: MessageEvent<{ here?: string }>) => {
        if (event.data.here !== owner) return;
        clearTimeout(timer);
        this.channel.removeEventListener('message', listener);
        resolve(true);
      };
      this.channel.addEventListener('message', listener);
      this.channel.postMessage({ alive: owner });
    });
  }

  /** At page load: resume the tab's session if it has one. */
  async restore(): Promise<void> {
    if (this.state.status !== 'starting') return;
    if (this.storedBy !== null && (await this.ownerIsOpen(this.storedBy))) {
      // The token is the open page's: rotating it here would revoke its session.
      this.refreshToken = null;
      this.set({ status: 'signed_out', notice: null });
      return;
    }
    try {
      await this.refresh();
      await this.enter();
    } catch (error) {
      // The token stays when the server could not be reached, so a later reload can resume.
      this.set({ status: 'signed_out', notice: error instanceof ApiError ? error.message : null });
    }
  }

  async login(username: string, password: string): Promise<void> {
    const tokens = await call<Tokens>('/users/token', { method: 'POST', body: { username, password } });
    this.keep(tokens);
    await this.enter();
  }

  async register(username: string, password: string): Promise<void> {
    await call<User>('/users/register', { method: 'POST', body: { username, password } });
    await this.login(username, password);
  }

  /** Ends the session here at once; the server is told in the background. */
  logout(): void {
    const refreshToken = this.refreshToken;
    this.end(null);
    if (refreshToken !== null) {
      call<void>('/users/logout', { method: 'POST', body: { refresh_token: refreshToken } }).catch(() => {});
    }
  }

  /** A request to the API as the logged-in user, refreshing the access token when needed. */
  async request<T>(path: string, options: CallOptions = {}): Promise<T> {
    const token = await this.accessToken(false);
    try {
      return await call<T>(path, { ...options, token });
    } catch (error) {
      // Expired in flight (or revoked): one refresh, one retry. A 401 is answered before any
      // work is done, so retrying a payment here cannot pay twice.
      if (!(error instanceof ApiError) || error.code !== 'unauthorized') throw error;
      return call<T>(path, { ...options, token: await this.accessToken(true) });
    }
  }

  /** A valid access token, e.g. for opening a WebSocket. */
  async accessToken(forceRefresh: boolean): Promise<string> {
    if (!forceRefresh && this.access !== null && this.access.expiresAt - Date.now() > EARLY_REFRESH_MS) {
      return this.access.token;
    }
    return this.refresh();
  }

  private async enter(): Promise<void> {
    const user = await this.request<User>('/users/me');
    this.set({ status: 'signed_in', user });
  }

  /** One refresh at a time: concurrent callers share it (a second would present a used token). */
  private refresh(): Promise<string> {
    this.refreshing ??= this.rotate().finally(() => {
      this.refreshing = null;
    });
    return this.refreshing;
  }

  private async rotate(): Promise<string> {
    const refreshToken = this.refreshToken;
    if (refreshToken === null) throw new ApiError('unauthorized', 401);
    try {
      const tokens = await call<Tokens>('/users/refresh', { method: 'POST', body: { refresh_token: refreshToken } });
      return this.keep(tokens);
    } catch (error) {
      if (error instanceof ApiError && (error.code === 'invalid_refresh_token' || error.code === 'unauthorized')) {
        this.end(humanMessage('invalid_refresh_token'));
      }
      throw error;
    }
  }

  private keep(tokens: Tokens): string {
    this.refreshToken = tokens.refresh_token;
    // Rotated while hidden (a timer's refresh): the stored token is the used one now.
    if (document.visibilityState === 'hidden') this.store();
    this.access = { token: tokens.access_token, expiresAt: Date.now() + tokens.expires_in * 1000 };
    return tokens.access_token;
  }

  private end(notice: string | null): void {
    this.refreshToken = null;
    sessionStorage.clear();
    this.access = null;
    this.set({ status: 'signed_out', notice });
  }

  private set(state: SessionState): void {
    this.state = state;
    this.changed();
  }
}
