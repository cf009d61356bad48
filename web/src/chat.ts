// The signed-in person's chats: the room list, a live link per recent room, and the messages of
// every room opened so far.
//
// The API has no per-user event stream, so the list learns of rooms it does not know yet (a
// direct chat someone else opened) by asking again every few seconds while the tab is visible;
// rooms it knows update at once through their WebSockets.
import type { Api, PaymentFields } from './api';
import { ApiError, describe } from './http';
import { randomId } from './money';
import { Observable } from './observable';
import { type LinkState, RoomLink } from './realtime';
import type { Session } from './session';
import { leavesGap, mergeMessages } from './timeline';
import type { Id, Message, RoomSummary, ServerEvent, User } from './types';
import type { Users } from './users';

/** Rooms with a live link: the most recently active ones (and the one open). */
const LIVE_ROOMS_MAX = 20;
const ROOM_LIST_POLL_MS = 4_000;
/** How long "typing…" shows after a notice (clients send one at most every TYPING_NOTICE_MS). */
const TYPING_SHOWN_MS = 5_000;
const TYPING_NOTICE_MS = 3_000;

export interface Timeline {
  messages: Message[];
  /** The latest page has arrived. */
  loaded: boolean;
  /** Older messages exist before the first one held. */
  hasOlder: boolean;
  loadingOlder: boolean;
  error: string | null;
  /** Our messages on their way: shown until the stored copy arrives. */
  outbox: OutgoingMessage[];
  /** Other members' read markers, as announced while the room was open here. */
  readBy: Map<Id, Id>;
  /** Who is typing, until when (ms since the epoch). */
  typing: Map<Id, number>;
  /** Set when the room is gone for us (we left, or were never a member). */
  closedNotice: string | null;
  /** Every change of the room up to this `change_seq` is reflected in `messages` (null until loaded). */
  changesSeen: number | null;
}

export interface OutgoingMessage {
  clientMsgId: string;
  content: string;
  error: string | null;
}

export class Chat extends Observable {
  rooms: RoomSummary[] = [];
  roomsLoaded = false;
  roomsError: string | null = null;
  /** Rooms exist past the pages shown. */
  moreRooms = false;
  /** How many pages of the room list are shown ("Show more chats" adds one). */
  private roomPagesShown = 1;
  readonly links = new Map<Id, LinkState>();
  readonly timelines = new Map<Id, Timeline>();
  openRoomId: Id | null = null;
  private readonly roomLinks = new Map<Id, RoomLink>();
  private readonly lastTypingSent = new Map<Id, number>();
  private readonly readSent = new Map<Id, Id>();
  private poll: ReturnType<typeof setInterval> | null = null;
  private readonly onWake = () => this.wake();

  constructor(
    private readonly api: Api,
    private readonly session: Session,
    private readonly me: User,
    private readonly users: Users,
    private readonly moneyMoved: () => void,
  ) {
    super();
  }

  start(): void {
    void this.refreshRooms();
    this.poll = setInterval(() => {
      if (document.visibilityState === 'visible') void this.refreshRooms();
    }, ROOM_LIST_POLL_MS);
    window.addEventListener('online', this.onWake);
    document.addEventListener('visibilitychange', this.onWake);
  }

  /** Logging out: every socket closed, every timer stopped. */
  stop(): void {
    if (this.poll !== null) clearInterval(this.poll);
    window.removeEventListener('online', this.onWake);
    document.removeEventListener('visibilitychange', this.onWake);
    for (const link of this.roomLinks.values()) link.stop();
    this.roomLinks.clear();
  }

  room(id: Id): RoomSummary | undefined {
    return this.rooms.find((room) => room.id === id);
  }

  /** What to call a room: its name, or the other person's username for a direct chat. */
  title(room: RoomSummary): string {
    if (room.kind === 'group') return room.name ?? 'Room';
    return room.peer_id === null ? 'Direct chat' : this.users.name(room.peer_id);
  }

  async refreshRooms(): Promise<void> {
    try {
      const rooms = await this.roomPages();
      this.rooms = rooms.map((room) => (room.id === this.openRoomId ? { ...room, unread_count: 0 } : room));
      this.roomsLoaded = true;
      this.roomsError = null;
      this.connectLinks();
      const open = rooms.find((room) => room.id === this.openRoomId);
      if (open !== undefined && open.unread_count > 0) this.markRead(open.id);
    } catch (error) {
      this.roomsError = describe(error);
    }
    this.changed();
  }

  showMoreRooms(): void {
    this.roomPagesShown += 1;
    void this.refreshRooms();
  }

  /** The pages of the room list shown, newest activity first, each room once. */
  private async roomPages(): Promise<RoomSummary[]> {
    const rooms = new Map<Id, RoomSummary>();
    let before: string | null = null;
    for (let page = 0; page < this.roomPagesShown; page += 1) {
      const list = await this.api.rooms(before);
      // A room active while the pages load moves up and can come twice: the first copy is newer.
      for (const room of list.items) if (!rooms.has(room.id)) rooms.set(room.id, room);
      before = list.next_before;
      if (before === null) break;
    }
    this.moreRooms = before !== null;
    return [...rooms.values()];
  }

  /** The room shown on screen: its history loaded, its link live, its messages marked read. */
  open(roomId: Id): void {
    this.openRoomId = roomId;
    if (!this.timelines.has(roomId)) {
      this.timelines.set(roomId, emptyTimeline());
      void this.loadLatest(roomId);
    }
    this.connectLinks();
    this.rooms = this.rooms.map((room) => (room.id === roomId ? { ...room, unread_count: 0 } : room));
    this.changed();
  }

  close(): void {
    this.openRoomId = null;
    this.changed();
  }

  async loadOlder(roomId: Id): Promise<void> {
    const timeline = this.timelines.get(roomId);
    const first = timeline?.messages[0];
    if (timeline === undefined || first === undefined || !timeline.hasOlder || timeline.loadingOlder) return;
    this.update(roomId, { loadingOlder: true });
    try {
      const page = await this.api.messages(roomId, { before: first.id });
      this.receive(roomId, page.items);
      this.update(roomId, { hasOlder: page.has_more, loadingOlder: false, error: null });
    } catch (error) {
      this.update(roomId, { loadingOlder: false, error: describe(error) });
    }
  }

  /** Sends a text message; the same `client_msg_id` on retry, so it is stored once. */
  async send(roomId: Id, content: string, clientMsgId: string = randomId()): Promise<void> {
    const outbox = (this.timelines.get(roomId)?.outbox ?? []).filter((item) => item.clientMsgId !== clientMsgId);
    this.update(roomId, { outbox: [...outbox, { clientMsgId, content, error: null }] });
    try {
      this.receive(roomId, [await this.api.sendMessage(roomId, content, clientMsgId)]);
    } catch (error) {
      const failed = (item: OutgoingMessage) =>
        item.clientMsgId === clientMsgId ? { ...item, error: describe(error) } : item;
      this.update(roomId, { outbox: (this.timelines.get(roomId)?.outbox ?? []).map(failed) });
    }
  }

  discard(roomId: Id, clientMsgId: string): void {
    const outbox = this.timelines.get(roomId)?.outbox ?? [];
    this.update(roomId, { outbox: outbox.filter((item) => item.clientMsgId !== clientMsgId) });
  }

  /** Tells the room we are typing, at most once every few seconds. */
  typing(roomId: Id): void {
    const now = Date.now();
    if (now - (this.lastTypingSent.get(roomId) ?? 0) < TYPING_NOTICE_MS) return;
    this.lastTypingSent.set(roomId, now);
    this.roomLinks.get(roomId)?.send({ type: 'typing' });
  }

  async pay(roomId: Id, receiverId: Id, payment: PaymentFields, idempotencyKey: string): Promise<void> {
    this.receive(roomId, [await this.api.pay(roomId, receiverId, payment, idempotencyKey)]);
    this.moneyMoved();
  }

  async requestPayment(roomId: Id, payerId: Id, payment: PaymentFields, idempotencyKey: string): Promise<void> {
    this.receive(roomId, [await this.api.requestPayment(roomId, payerId, payment, idempotencyKey)]);
  }

  async resolve(roomId: Id, requestId: Id, answer: 'accept' | 'decline', idempotencyKey: string): Promise<void> {
    try {
      this.receive(roomId, [await this.api.resolveRequest(roomId, requestId, answer, idempotencyKey)]);
      if (answer === 'accept') this.moneyMoved();
    } catch (error) {
      // Someone (or another tab) got there first: show the request as it now stands.
      if (error instanceof ApiError && (error.code === 'already_resolved' || error.code === 'request_expired')) {
        void this.loadLatest(roomId);
      }
      throw error;
    }
  }

  async createRoom(name: string, usernames: string[]): Promise<Id> {
    const members = await Promise.all(usernames.map((username) => this.users.find(username)));
    const room = await this.api.createRoom(name, members.map((member) => member.id));
    await this.refreshRooms();
    return room.id;
  }

  async directRoom(username: string): Promise<Id> {
    const peer = await this.users.find(username);
    const room = await this.api.directRoom(peer.id);
    await this.refreshRooms();
    return room.id;
  }

  async addMember(roomId: Id, username: string): Promise<void> {
    const user = await this.users.find(username);
    await this.api.addMember(roomId, user.id);
    await this.refreshRooms();
  }

  async leave(roomId: Id): Promise<void> {
    await this.api.leave(roomId);
    this.forget(roomId);
  }

  /** Moves our read marker to the newest message shown (never backwards, never twice). */
  markRead(roomId: Id): void {
    const newest = this.timelines.get(roomId)?.messages.at(-1);
    if (newest === undefined || (this.readSent.get(roomId) ?? 0) >= newest.id) return;
    this.readSent.set(roomId, newest.id);
    this.api.markRead(roomId, newest.id).catch(() => this.readSent.delete(roomId));
  }

  private async loadLatest(roomId: Id): Promise<void> {
    try {
      const page = await this.api.messages(roomId, null);
      const first = this.timelines.get(roomId)?.loaded === false;
      this.receive(roomId, page.items);
      // One snapshot: every change up to its newest is in it, for the messages it holds.
      const changesSeen = page.items.reduce((highest, message) => Math.max(highest, message.change_seq), 0);
      this.update(roomId, first ? { loaded: true, hasOlder: page.has_more, error: null, changesSeen } : { error: null });
    } catch (error) {
      if (error instanceof ApiError && error.code === 'room_not_found') this.forget(roomId);
      else this.update(roomId, { error: describe(error) });
    }
  }

  /** Everything after the newest message held, page by page (after a reconnect or a `seq` jump). */
  private async fillGap(roomId: Id): Promise<void> {
    let after = this.timelines.get(roomId)?.messages.at(-1)?.id;
    if (after === undefined) {
      await this.loadLatest(roomId);
      return;
    }
    try {
      for (;;) {
        const page = await this.api.messages(roomId, { after });
        this.receive(roomId, page.items);
        const last = page.items.at(-1);
        if (!page.has_more || last === undefined) break;
        after = last.id;
      }
    } catch (error) {
      this.update(roomId, { error: describe(error) });
    }
  }

  /** Every message, edit and deletion of a room takes its next `change_seq`: a jump means missed events. */
  private followChanges(roomId: Id, message: Message): void {
    const seen = this.timelines.get(roomId)?.changesSeen;
    if (seen === null || seen === undefined) return;
    if (message.change_seq === seen + 1) this.update(roomId, { changesSeen: message.change_seq });
    else if (message.change_seq > seen + 1) void this.catchUpChanges(roomId);
  }

  /** Everything changed after the last change seen (new, edited, deleted), page by page. */
  private async catchUpChanges(roomId: Id): Promise<void> {
    let after = this.timelines.get(roomId)?.changesSeen;
    if (after === null || after === undefined) return;
    try {
      for (;;) {
        const page = await this.api.changes(roomId, after);
        // Messages older than those held are shown as they are when "load more" fetches them.
        const first = this.timelines.get(roomId)?.messages[0];
        this.receive(roomId, page.items.filter((message) => first === undefined || message.seq >= first.seq));
        after = page.items.at(-1)?.change_seq ?? after;
        if (!page.has_more) break;
      }
      const seen = Math.max(after, this.timelines.get(roomId)?.changesSeen ?? 0);
      this.update(roomId, { changesSeen: seen });
    } catch (error) {
      this.update(roomId, { error: describe(error) });
    }
  }

  /** Stored messages, however they arrived: into the timeline (if loaded) and the room list. */
  private receive(roomId: Id, messages: Message[]): void {
    const timeline = this.timelines.get(roomId);
    if (timeline !== undefined) {
      const merged = mergeMessages(timeline.messages, messages);
      const stored = new Set(merged.map((message) => message.client_msg_id));
      const outbox = timeline.outbox.filter((item) => !stored.has(item.clientMsgId));
      this.update(roomId, { messages: merged, outbox });
    }
    const newest = messages.at(-1);
    if (newest !== undefined) this.showInList(roomId, newest);
    if (roomId === this.openRoomId && document.visibilityState === 'visible') this.markRead(roomId);
  }

  private onEvent(roomId: Id, event: ServerEvent): void {
    switch (event.type) {
      case 'message':
      case 'ack':
        this.followChanges(roomId, event.message);
        return this.onMessage(roomId, event.message);
      case 'message_edited':
      case 'message_deleted':
        this.followChanges(roomId, event.message);
        return this.receive(roomId, [event.message]);
      case 'typing':
        if (event.user_id !== this.me.id) this.showTyping(roomId, event.user_id);
        return;
      case 'read':
        return this.onRead(roomId, event.user_id, event.up_to_id);
      case 'error':
        return;
    }
  }

  private onMessage(roomId: Id, message: Message): void {
    const timeline = this.timelines.get(roomId);
    if (timeline !== undefined && leavesGap(timeline.messages, message)) void this.fillGap(roomId);
    this.receive(roomId, [message]);
    const typing = timeline?.typing;
    if (typing?.delete(message.sender_id)) this.changed();
    const counterparties = [message.transfer?.sender_id, message.transfer?.receiver_id];
    if (counterparties.includes(this.me.id)) this.moneyMoved();
  }

  private onRead(roomId: Id, userId: Id, upToId: Id): void {
    if (userId === this.me.id) {
      this.rooms = this.rooms.map((room) => (room.id === roomId ? { ...room, unread_count: 0 } : room));
      this.changed();
      return;
    }
    const timeline = this.timelines.get(roomId);
    if (timeline === undefined) return;
    timeline.readBy.set(userId, Math.max(upToId, timeline.readBy.get(userId) ?? 0));
    this.changed();
  }

  private showTyping(roomId: Id, userId: Id): void {
    const timeline = this.timelines.get(roomId);
    if (timeline === undefined) return;
    const until = Date.now() + TYPING_SHOWN_MS;
    timeline.typing.set(userId, until);
    this.changed();
    setTimeout(() => {
      if (timeline.typing.get(userId) === until) {
        timeline.typing.delete(userId);
        this.changed();
      }
    }, TYPING_SHOWN_MS);
  }

  /** The room list shows the newest message first, with the unread count for rooms not open. */
  private showInList(roomId: Id, message: Message): void {
    const room = this.room(roomId);
    if (room === undefined) {
      void this.refreshRooms();
      return;
    }
    const last = room.last_message;
    if (last !== null && last.seq === message.seq && last.change_seq < message.change_seq) {
      // The newest message was edited or deleted: show it as it is now, nothing new to count.
      this.rooms = this.rooms.map((other) => (other.id === roomId ? { ...room, last_message: message } : other));
      this.changed();
      return;
    }
    if (last !== null && last.seq >= message.seq) return;
    const unseen = roomId !== this.openRoomId && message.sender_id !== this.me.id;
    const updated: RoomSummary = {
      ...room,
      last_message: message,
      last_activity_at: message.created_at,
      unread_count: unseen ? room.unread_count + 1 : room.unread_count,
    };
    this.rooms = [updated, ...this.rooms.filter((other) => other.id !== roomId)];
    this.changed();
  }

  /** A live link for the most recent rooms and the open one; links to other rooms closed. */
  private connectLinks(): void {
    const wanted = new Set(this.rooms.slice(0, LIVE_ROOMS_MAX).map((room) => room.id));
    if (this.openRoomId !== null) wanted.add(this.openRoomId);
    for (const [roomId, link] of this.roomLinks) {
      if (!wanted.has(roomId)) {
        link.stop();
        this.roomLinks.delete(roomId);
        this.links.delete(roomId);
      }
    }
    for (const roomId of wanted) {
      if (this.roomLinks.has(roomId)) continue;
      const link = new RoomLink(roomId, (force) => this.session.accessToken(force), {
        event: (event) => this.onEvent(roomId, event),
        live: (again) => {
          if (this.timelines.get(roomId)?.loaded) void this.fillGap(roomId).then(() => this.catchUpChanges(roomId));
          if (again) void this.refreshRooms();
        },
        state: (state) => this.onLinkState(roomId, state),
      });
      this.roomLinks.set(roomId, link);
      link.start();
    }
  }

  private onLinkState(roomId: Id, state: LinkState): void {
    this.links.set(roomId, state);
    // Refused: we are not (or no longer) a member, e.g. we left from another tab.
    if (state === 'refused') this.forget(roomId);
    this.changed();
  }

  /** A room we are no longer in: out of the list, its link closed, its timeline marked closed. */
  private forget(roomId: Id): void {
    this.roomLinks.get(roomId)?.stop();
    this.roomLinks.delete(roomId);
    this.links.delete(roomId);
    this.rooms = this.rooms.filter((room) => room.id !== roomId);
    if (this.timelines.has(roomId)) this.update(roomId, { closedNotice: 'You are not a member of this chat.' });
    this.changed();
  }

  private wake(): void {
    if (document.visibilityState !== 'visible') return;
    for (const link of this.roomLinks.values()) link.nudge();
    void this.refreshRooms();
  }

  private update(roomId: Id, changes: Partial<Timeline>): void {
    const timeline = this.timelines.get(roomId);
    if (timeline === undefined) return;
    this.timelines.set(roomId, { ...timeline, ...changes });
    this.changed();
  }
}

function emptyTimeline(): Timeline {
  return {
    messages: [],
    loaded: false,
    hasOlder: false,
    loadingOlder: false,
    error: null,
    outbox: [],
    readBy: new Map(),
    typing: new Map(),
    closedNotice: null,
    changesSeen: null,
  };
}
