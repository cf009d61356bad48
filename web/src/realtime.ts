// One room's WebSocket through the realtime gateway (Pushpin), kept open: reconnects with
// backoff after any drop, with a fresh access token, and says when it is live again so the
// room can fetch what it missed (`?after=`). Close codes 4403/4404 are final (not a member).
import type { Id, ServerEvent } from './types';

export type LinkState = 'connecting' | 'live' | 'reconnecting' | 'refused';

export interface LinkHandlers {
  event(event: ServerEvent): void;
  /** Open and subscribed; `again` after a drop. */
  live(again: boolean): void;
  state(state: LinkState): void;
}

const RECONNECT_FIRST_MS = 250;
const RECONNECT_MAX_MS = 5_000;
/** Close codes after which reconnecting cannot help (see the README's WebSocket protocol). */
const FINAL_CLOSE_CODES = [4403, 4404];
const TOKEN_REFUSED_CLOSE_CODE = 4401;

/** Where the gateway is: the page's `sendinchat-web-socket-origin` meta tag, else the page's own origin. */
export function webSocketOrigin(): string {
  const configured = document.querySelector<HTMLMetaElement>('meta[name="sendinchat-web-socket-origin"]')?.content;
  if (configured) return configured;
  return `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}`;
}

export class RoomLink {
  private socket: WebSocket | null = null;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private failures = 0;
  private wasLive = false;
  private stopped = false;

  constructor(
    private readonly roomId: Id,
    private readonly accessToken: (forceRefresh: boolean) => Promise<string>,
    private readonly handlers: LinkHandlers,
  ) {}

  start(): void {
    void this.connect(false);
  }

  stop(): void {
    this.stopped = true;
    if (this.retry !== null) clearTimeout(this.retry);
    this.socket?.close(1000);
    this.socket = null;
  }

  /** Reconnect now rather than after the backoff (the network came back, the tab is shown). */
  nudge(): void {
    if (this.retry === null) return;
    clearTimeout(this.retry);
    this.retry = null;
    void this.connect(false);
  }

  /** Sends a client frame if the socket is open; typing notices are not worth queueing. */
  send(frame: object): void {
    if (this.socket?.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(frame));
  }

  private async connect(forceRefresh: boolean): Promise<void> {
    this.handlers.state(this.wasLive || this.failures > 0 ? 'reconnecting' : 'connecting');
    let token: string;
    try {
      token = await this.accessToken(forceRefresh);
    } catch {
      // Offline, or the session ended (then the whole chat is torn down and this link stopped).
      this.scheduleReconnect(false);
      return;
    }
    if (this.stopped) return;
    const socket = new WebSocket(`${webSocketOrigin()}/chat/ws/${this.roomId}`, ['sendinchat.v1', `bearer.${token}`]);
    this.socket = socket;
    socket.onopen = () => {
      const again = this.wasLive;
      this.failures = 0;
      this.wasLive = true;
      this.handlers.state('live');
      this.handlers.live(again);
    };
    socket.onmessage = (message: MessageEvent) => {
      const event = parseEvent(message.data);
      if (event !== null) this.handlers.event(event);
    };
    socket.onclose = (close: CloseEvent) => {
      if (this.socket !== socket || this.stopped) return;
      this.socket = null;
      if (FINAL_CLOSE_CODES.includes(close.code)) {
        this.handlers.state('refused');
        return;
      }
      this.scheduleReconnect(close.code === TOKEN_REFUSED_CLOSE_CODE);
    };
  }

  private scheduleReconnect(forceRefresh: boolean): void {
    if (this.stopped) return;
    this.handlers.state('reconnecting');
    const backoff = Math.min(RECONNECT_MAX_MS, RECONNECT_FIRST_MS * 2 ** this.failures);
    this.failures += 1;
    // Jitter, so clients dropped together do not all come back in the same instant.
    const delay = backoff / 2 + Math.random() * (backoff / 2);
    this.retry = setTimeout(() => {
      this.retry = null;
      void this.connect(forceRefresh);
    }, delay);
  }
}

function parseEvent(data: unknown): ServerEvent | null {
  if (typeof data !== 'string') return null;
  try {
    const event: unknown = JSON.parse(data);
    return typeof event === 'object' && event !== null && 'type' in event ? (event as ServerEvent) : null;
  } catch {
    return null;
  }
}
