// The API's shapes, as openapi.yaml declares them (components/schemas). Amounts stay strings:
// the client never does arithmetic on money, it only shows what the ledger computed.

export type Id = number;

export interface User {
  id: Id;
  username: string;
  created_at: string;
}

export interface Tokens {
  access_token: string;
  token_type: 'bearer';
  expires_in: number;
  refresh_token: string;
}

export interface Transfer {
  id: Id;
  kind: 'payment' | 'deposit' | 'refund';
  sender_id: Id | null;
  receiver_id: Id;
  amount: string;
  currency: string;
  status: 'completed';
  note: string | null;
  created_at: string;
  refund_of: Id | null;
  refunded_amount: string;
}

export interface TransferPage {
  items: Transfer[];
  next_before: Id | null;
}

export interface Balance {
  currency: string;
  balance: string;
}

export interface Balances {
  balances: Balance[];
}

export interface PaymentRequest {
  id: Id;
  room_id: Id;
  requester_id: Id;
  payer_id: Id;
  amount: string;
  currency: string;
  note: string | null;
  status: 'pending' | 'accepted' | 'declined' | 'expired';
  transfer_id: Id | null;
  expires_at: string;
  created_at: string;
  split_id: Id | null;
}

/** One request to several payers; each share is a payment request of its own. */
export interface SplitRequest {
  id: Id;
  room_id: Id;
  requester_id: Id;
  amount: string;
  currency: string;
  note: string | null;
  paid_amount: string;
  shares: PaymentRequest[];
  expires_at: string;
  created_at: string;
}

export interface Message {
  id: Id;
  room_id: Id;
  seq: number;
  sender_id: Id;
  kind: 'text' | 'payment' | 'payment_request' | 'payment_declined' | 'split_request' | 'refund';
  content: string | null;
  client_msg_id: string | null;
  created_at: string;
  /** The room's number of this message's latest change (sent, edited or deleted). */
  change_seq: number;
  edited_at: string | null;
  /** Set on a deleted message, whose content is gone. */
  deleted_at: string | null;
  transfer: Transfer | null;
  payment_request: PaymentRequest | null;
  split_request: SplitRequest | null;
}

export interface MessagePage {
  items: Message[];
  has_more: boolean;
}

export interface Room {
  id: Id;
  kind: 'group' | 'direct';
  name: string | null;
  owner_id: Id | null;
  member_count: number;
  member_ids: Id[];
  created_at: string;
}

export interface RoomSummary {
  id: Id;
  kind: 'group' | 'direct';
  name: string | null;
  owner_id: Id | null;
  member_count: number;
  peer_id: Id | null;
  last_activity_at: string;
  last_message: Message | null;
  unread_count: number;
}

export interface RoomList {
  items: RoomSummary[];
  /** After a full page, where the next one starts. */
  next_before: string | null;
}

export interface ReadMarker {
  room_id: Id;
  user_id: Id;
  up_to_id: Id;
}

/** A text frame the server sends on a room's WebSocket (`ServerEvent`). */
export type ServerEvent =
  | { type: 'message'; message: Message }
  | { type: 'message_edited'; message: Message }
  | { type: 'message_deleted'; message: Message }
  | { type: 'ack'; client_msg_id: string | null; message: Message }
  | { type: 'typing'; room_id: Id; user_id: Id }
  | { type: 'read'; room_id: Id; user_id: Id; up_to_id: Id }
  | { type: 'error'; code: string; message: string };
