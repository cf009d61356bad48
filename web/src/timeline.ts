// A room's messages as the client holds them: ordered by `seq`, each once, whichever way it
// arrived (history page, gap fill, WebSocket event, the answer to our own send).
import type { Id, Message, PaymentRequest } from './types';

/** `existing` plus `incoming`, in `seq` order, without duplicates; of two copies of a message,
 * the later change (edit, deletion) wins, whichever arrived last. */
export function mergeMessages(existing: readonly Message[], incoming: readonly Message[]): Message[] {
  const byId = new Map<Id, Message>();
  for (const message of existing) byId.set(message.id, message);
  for (const message of incoming) {
    const known = byId.get(message.id);
    if (known !== undefined && known.change_seq > message.change_seq) continue;
    byId.set(message.id, known === undefined ? message : { ...message, payment_request: settled(known.payment_request, message.payment_request) });
  }
  // A payment that settles a request, or a decline, carries the request's new state: show it on
  // the request's own message too.
  const resolutions = new Map<Id, PaymentRequest>();
  for (const message of incoming) {
    if (message.kind !== 'payment_request' && message.payment_request !== null) {
      resolutions.set(message.payment_request.id, message.payment_request);
    }
  }
  const merged = [...byId.values()].sort((a, b) => a.seq - b.seq);
  if (resolutions.size === 0) return merged;
  return merged.map((message) => {
    if (message.kind === 'split_request' && message.split_request !== null) {
      const split = message.split_request;
      const shares = split.shares.map((share) => settled(share, resolutions.get(share.id) ?? null) ?? share);
      return { ...message, split_request: { ...split, shares } };
    }
    const resolved = message.kind === 'payment_request' ? resolutions.get(message.payment_request?.id ?? 0) : undefined;
    return resolved === undefined ? message : { ...message, payment_request: settled(message.payment_request, resolved) };
  });
}

/** Whether `incoming` leaves out messages between the last one held and itself. */
export function leavesGap(messages: readonly Message[], incoming: Message): boolean {
  const last = messages.at(-1);
  return last !== undefined && incoming.seq > last.seq + 1;
}

export type RequestState = PaymentRequest['status'];

/** A request's state as of `nowMs`: a pending one past its expiry can no longer be paid. */
export function requestState(request: PaymentRequest, nowMs: number): RequestState {
  if (request.status === 'pending' && Date.parse(request.expires_at) <= nowMs) return 'expired';
  return request.status;
}

/** Requests only move from pending to a final state: an older copy never undoes a resolution. */
function settled(known: PaymentRequest | null, arriving: PaymentRequest | null): PaymentRequest | null {
  if (known === null || arriving === null) return arriving ?? known;
  return arriving.status === 'pending' && known.status !== 'pending' ? known : arriving;
}
