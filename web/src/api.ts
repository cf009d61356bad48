// The public API, one function per operation of openapi.yaml that a person's actions need.
import type { Session } from './session';
import type {
  Balances,
  Id,
  Message,
  MessagePage,
  ReadMarker,
  Room,
  RoomList,
  Transfer,
  TransferPage,
  User,
} from './types';

export interface PaymentFields {
  amount: string;
  currency: string;
  note: string | null;
}

/** The most a listing may return per page under the default `max_page_size`. */
export const PAGE_SIZE = 50;

export class Api {
  constructor(private readonly session: Session) {}

  /** Ends every other session of the person; this one goes on. */
  changePassword(currentPassword: string, newPassword: string): Promise<void> {
    return this.session.request('/users/me/password', {
      method: 'POST',
      body: { current_password: currentPassword, new_password: newPassword },
    });
  }

  user(id: Id): Promise<User> {
    return this.session.request(`/users/${id}`);
  }

  userByUsername(username: string): Promise<User> {
    return this.session.request(`/users?username=${encodeURIComponent(username)}`);
  }

  balances(): Promise<Balances> {
    return this.session.request('/fintech/balance');
  }

  transactions(before: Id | null): Promise<TransferPage> {
    const cursor = before === null ? '' : `&before=${before}`;
    return this.session.request(`/fintech/transactions?limit=${PAGE_SIZE}${cursor}`);
  }

  transaction(id: Id): Promise<Transfer> {
    return this.session.request(`/fintech/transactions/${id}`);
  }

  transfer(receiverUsername: string, payment: PaymentFields, idempotencyKey: string): Promise<Transfer> {
    return this.session.request('/fintech/transfer', {
      method: 'POST',
      body: { receiver_username: receiverUsername, ...payment },
      idempotencyKey,
    });
  }

  /** A page of the room list; `before` is the previous page's `next_before`. */
  rooms(before: string | null): Promise<RoomList> {
    const cursor = before === null ? '' : `&before=${encodeURIComponent(before)}`;
    return this.session.request(`/chat/rooms?limit=${PAGE_SIZE}${cursor}`);
  }

  createRoom(name: string, memberIds: Id[]): Promise<Room> {
    return this.session.request('/chat/create_room', { method: 'POST', body: { name, member_ids: memberIds } });
  }

  directRoom(userId: Id): Promise<Room> {
    return this.session.request('/chat/direct', { method: 'POST', body: { user_id: userId } });
  }

  addMember(roomId: Id, userId: Id): Promise<Room> {
    return this.session.request(`/chat/rooms/${roomId}/members`, { method: 'POST', body: { user_id: userId } });
  }

  leave(roomId: Id): Promise<void> {
    return this.session.request(`/chat/rooms/${roomId}/members/me`, { method: 'DELETE' });
  }

  /** The latest page, or the page `before` (older) or `after` (newer) a message id. */
  messages(roomId: Id, cursor: { before: Id } | { after: Id } | null): Promise<MessagePage> {
    const query = cursor === null ? '' : 'before' in cursor ? `&before=${cursor.before}` : `&after=${cursor.after}`;
    return this.session.request(`/chat/messages/${roomId}?limit=${PAGE_SIZE}${query}`);
  }

  /** The messages changed (sent, edited, deleted) after change `changesAfter`, in change order. */
  changes(roomId: Id, changesAfter: number): Promise<MessagePage> {
    return this.session.request(`/chat/messages/${roomId}?limit=${PAGE_SIZE}&changes_after=${changesAfter}`);
  }

  sendMessage(roomId: Id, content: string, clientMsgId: string): Promise<Message> {
    return this.session.request('/chat/send_message', {
      method: 'POST',
      body: { chat_id: roomId, content, client_msg_id: clientMsgId },
    });
  }

  markRead(roomId: Id, upToId: Id): Promise<ReadMarker> {
    return this.session.request(`/chat/rooms/${roomId}/read`, { method: 'POST', body: { up_to_id: upToId } });
  }

  pay(roomId: Id, receiverId: Id, payment: PaymentFields, idempotencyKey: string): Promise<Message> {
    return this.session.request(`/chat/rooms/${roomId}/payments`, {
      method: 'POST',
      body: { receiver_id: receiverId, ...payment },
      idempotencyKey,
    });
  }

  requestPayment(roomId: Id, payerId: Id, payment: PaymentFields, idempotencyKey: string): Promise<Message> {
    return this.session.request(`/chat/rooms/${roomId}/payment_requests`, {
      method: 'POST',
      body: { payer_id: payerId, ...payment },
      idempotencyKey,
    });
  }

  resolveRequest(roomId: Id, requestId: Id, answer: 'accept' | 'decline', idempotencyKey: string): Promise<Message> {
    return this.session.request(`/chat/rooms/${roomId}/payment_requests/${requestId}/${answer}`, {
      method: 'POST',
      idempotencyKey,
    });
  }
}
