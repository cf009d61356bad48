import assert from 'node:assert/strict';
import { test } from 'node:test';
import { humanMessage } from '../src/errors.ts';
import { ApiError } from '../src/http.ts';
import { noteOrNull, parseAmount, PendingPayments } from '../src/money.ts';

test('amounts are plain decimals, positive, as typed, with no more decimals than the currency has', () => {
  assert.equal(parseAmount(' 5 ', 'USD'), '5');
  assert.equal(parseAmount('12.50', 'USD'), '12.50');
  assert.equal(parseAmount('5,5', 'USD'), '5.5');
  assert.equal(parseAmount('5,50', 'EUR'), '5.50');
  assert.equal(parseAmount('1.500', 'KWD'), '1.500', 'three decimals, for the dinars');
  assert.equal(parseAmount('1500', 'JPY'), '1500');
  const bad = ['', '0', '0.00', '-1', '1e3', '1.', '.5', 'five', '1'.repeat(25), '1,000', '12,500', '1,000.00'];
  for (const typed of [...bad, '1.000', '1.500', '10.250']) {
    assert.equal(parseAmount(typed, 'USD'), null, typed);
  }
  assert.equal(parseAmount('1,500', 'KWD'), null, 'a comma before three digits reads as thousands');
  assert.equal(parseAmount('1.5', 'JPY'), null);
});

test('a blank note is no note', () => {
  assert.equal(noteOrNull('  '), null);
  assert.equal(noteOrNull(' lunch '), 'lunch');
});

/** A tab's sessionStorage, as much of it as PendingPayments uses. */
function tabStorage() {
  const items = new Map();
  return {
    getItem: (name) => items.get(name) ?? null,
    setItem: (name, value) => items.set(name, String(value)),
  };
}

test('one Idempotency-Key per intended payment, kept across retryable failures only', () => {
  const payments = new PendingPayments(tabStorage(), 7);
  const first = payments.keyFor({ to: 'bob', amount: '5' });
  assert.match(first, /^[0-9a-f]{32}$/);
  assert.equal(payments.keyFor({ to: 'bob', amount: '5' }), first, 'a double click reuses the key');
  payments.settle(first, new ApiError('network_error', 0));
  assert.equal(payments.keyFor({ to: 'bob', amount: '5' }), first, 'a retry after a lost answer reuses it');
  payments.settle(first, new ApiError('timeout', 504));
  assert.equal(payments.keyFor({ to: 'bob', amount: '5' }), first, 'a 504 may have paid: its retry reuses the key');
  payments.settle(first, new ApiError('some_new_failure', 502));
  assert.equal(payments.keyFor({ to: 'bob', amount: '5' }), first, 'so does any other 5xx');
  payments.settle(first, new ApiError('insufficient_funds', 422));
  const second = payments.keyFor({ to: 'bob', amount: '5' });
  assert.notEqual(second, first, 'after a refusal the next try is a new payment');
  payments.settle(second, null);
  assert.notEqual(payments.keyFor({ to: 'bob', amount: '5' }), second, 'so is the next one after a success');
  assert.notEqual(payments.keyFor({ to: 'bob', amount: '6' }), second, 'other details are another payment');
});

test('a payment in doubt keeps its key for the next form and the next page of the tab, for an hour', () => {
  const storage = tabStorage();
  let now = 1_000_000;
  const clock = () => now;
  const page = new PendingPayments(storage, 7, clock);
  const key = page.keyFor({ to: 'bob', amount: '5' });
  const answered = page.keyFor({ to: 'carol', amount: '1' });
  page.settle(key, new ApiError('timeout', 504));
  page.settle(answered, null);
  const reloaded = new PendingPayments(storage, 7, clock);
  assert.equal(reloaded.keyFor({ to: 'bob', amount: '5' }), key, 'the retry after a reload reuses the key');
  assert.notEqual(reloaded.keyFor({ to: 'carol', amount: '1' }), answered, 'an answered payment is not kept');
  now += 60 * 60 * 1000 + 1;
  assert.notEqual(new PendingPayments(storage, 7, clock).keyFor({ to: 'bob', amount: '5' }), key, 'an hour later it is a new payment');
  storage.setItem('sendinchat.pending_payments.7', '{not json');
  assert.match(new PendingPayments(storage, 7, clock).keyFor({ to: 'bob', amount: '5' }), /^[0-9a-f]{32}$/, 'unreadable storage is none');
});

test("a person's keys are theirs, and nothing is written once they log out", () => {
  const storage = tabStorage();
  const alices = new PendingPayments(storage, 7);
  const key = alices.keyFor({ to: 'bob', amount: '5' });
  alices.settle(key, new ApiError('timeout', 504));
  assert.notEqual(new PendingPayments(storage, 8).keyFor({ to: 'bob', amount: '5' }), key, 'another person on the tab');
  storage.setItem('sendinchat.pending_payments.7', '[]');
  alices.stop();
  alices.keyFor({ to: 'carol', amount: '1' });
  assert.equal(storage.getItem('sendinchat.pending_payments.7'), '[]', 'what logging out cleared stays cleared');
});

test('a full storage costs only the next page the keys', () => {
  const payments = new PendingPayments({
    getItem: () => null,
    setItem: () => {
      throw new Error('QuotaExceededError');
    },
  }, 7);
  const key = payments.keyFor({ to: 'bob', amount: '5' });
  assert.equal(payments.keyFor({ to: 'bob', amount: '5' }), key);
});

test('a tab keeps at most 20 payments in doubt, the newest', () => {
  const storage = tabStorage();
  const payments = new PendingPayments(storage, 7);
  const keys = Array.from({ length: 21 }, (_, amount) => payments.keyFor({ to: 'bob', amount }));
  const stored = JSON.parse(storage.getItem('sendinchat.pending_payments.7'));
  assert.deepEqual(stored.map((payment) => payment.key), keys.slice(1));
});

test('errors read as sentences, unknown codes included', () => {
  assert.equal(new ApiError('insufficient_funds', 422).message, humanMessage('insufficient_funds'));
  assert.match(humanMessage('insufficient_funds'), /balance is too low/);
  assert.match(humanMessage('brand_new_code'), /brand_new_code/);
});
