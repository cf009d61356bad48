import assert from 'node:assert/strict';
import { test } from 'node:test';
import { leavesGap, mergeMessages, requestState } from '../src/timeline.ts';

const text = (id, seq) => ({
  id,
  room_id: 1,
  seq,
  sender_id: 1,
  kind: 'text',
  content: `message ${seq}`,
  client_msg_id: null,
  created_at: '2026-12-01T10:00:00Z',
  change_seq: seq,
  edited_at: null,
  deleted_at: null,
  transfer: null,
  payment_request: null,
});

const request = (status) => ({
  id: 9,
  room_id: 1,
  requester_id: 2,
  payer_id: 1,
  amount: '2.00',
  currency: 'USD',
  note: null,
  status,
  transfer_id: status === 'accepted' ? 5 : null,
  expires_at: '2026-12-02T10:00:00Z',
  created_at: '2026-12-01T10:00:00Z',
});

test('messages are kept in seq order, each once, however they arrive', () => {
  const held = [text(10, 1), text(12, 3)];
  const merged = mergeMessages(held, [text(13, 4), text(11, 2), text(12, 3), text(10, 1)]);
  assert.deepEqual(
    merged.map((message) => message.seq),
    [1, 2, 3, 4],
  );
});

test('a jump in seq is a gap; the next seq or an old one is not', () => {
  const held = [text(10, 1), text(11, 2)];
  assert.equal(leavesGap(held, text(14, 5)), true);
  assert.equal(leavesGap(held, text(12, 3)), false);
  assert.equal(leavesGap(held, text(11, 2)), false);
  assert.equal(leavesGap([], text(14, 5)), false);
});

test('a payment that settles a request marks the request message paid', () => {
  const asked = { ...text(20, 1), kind: 'payment_request', content: null, payment_request: request('pending') };
  const paid = { ...text(21, 2), kind: 'payment', payment_request: request('accepted') };
  const merged = mergeMessages([asked], [paid]);
  assert.equal(merged[0].payment_request.status, 'accepted');
  // A stale copy of the request (an older page) does not undo it.
  const again = mergeMessages(merged, [asked]);
  assert.equal(again[0].payment_request.status, 'accepted');
});

test('of two copies of a message, the later change wins, whichever arrives last', () => {
  const edited = { ...text(10, 1), content: 'edited', edited_at: '2026-12-01T10:01:00Z', change_seq: 5 };
  const deleted = { ...text(10, 1), content: null, deleted_at: '2026-12-01T10:02:00Z', change_seq: 6 };
  assert.equal(mergeMessages([text(10, 1)], [edited])[0].content, 'edited');
  assert.equal(mergeMessages([deleted], [edited])[0].deleted_at, deleted.deleted_at, 'a stale edit does not undo a deletion');
  assert.equal(mergeMessages([edited], [text(10, 1)])[0].content, 'edited', 'an older page does not undo an edit');
  assert.equal(mergeMessages([edited], [deleted])[0].content, null);
});

test('a payment that settles a share of a split marks that share paid on the split message', () => {
  const otherShare = { ...request('pending'), id: 10, payer_id: 3 };
  const split = { id: 4, room_id: 1, requester_id: 2, amount: '4.00', currency: 'USD', note: null, paid_amount: '0.00',
    shares: [request('pending'), otherShare], expires_at: '2026-12-02T10:00:00Z', created_at: '2026-12-01T10:00:00Z' };
  const asked = { ...text(20, 1), kind: 'split_request', content: null, split_request: split };
  const paid = { ...text(21, 2), kind: 'payment', payment_request: { ...request('accepted'), split_id: 4 } };
  const merged = mergeMessages([asked], [paid]);
  assert.deepEqual(merged[0].split_request.shares.map((share) => share.status), ['accepted', 'pending']);
});

test('a pending request past its expiry shows as expired', () => {
  const pending = request('pending');
  assert.equal(requestState(pending, Date.parse('2026-12-02T09:59:59Z')), 'pending');
  assert.equal(requestState(pending, Date.parse('2026-12-02T10:00:00Z')), 'expired');
  assert.equal(requestState(request('accepted'), Date.parse('2027-01-01T00:00:00Z')), 'accepted');
});
