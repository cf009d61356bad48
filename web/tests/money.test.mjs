import assert from 'node:assert/strict';
import { test } from 'node:test';
import { humanMessage } from '../src/errors.ts';
import { ApiError } from '../src/http.ts';
import { noteOrNull, parseAmount, PaymentIntent } from '../src/money.ts';

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

test('one Idempotency-Key per intended payment, kept across retryable failures only', () => {
  const intent = new PaymentIntent();
  const first = intent.keyFor({ to: 'bob', amount: '5' });
  assert.match(first, /^[0-9a-f]{32}$/);
  assert.equal(intent.keyFor({ to: 'bob', amount: '5' }), first, 'a double click reuses the key');
  intent.settle(new ApiError('network_error', 0));
  assert.equal(intent.keyFor({ to: 'bob', amount: '5' }), first, 'a retry after a lost answer reuses it');
  intent.settle(new ApiError('timeout', 504));
  assert.equal(intent.keyFor({ to: 'bob', amount: '5' }), first, 'a 504 may have paid: its retry reuses the key');
  intent.settle(new ApiError('some_new_failure', 502));
  assert.equal(intent.keyFor({ to: 'bob', amount: '5' }), first, 'so does any other 5xx');
  intent.settle(new ApiError('insufficient_funds', 422));
  assert.notEqual(intent.keyFor({ to: 'bob', amount: '5' }), first, 'after a refusal the next try is a new payment');
  const second = intent.keyFor({ to: 'bob', amount: '5' });
  assert.notEqual(intent.keyFor({ to: 'bob', amount: '6' }), second, 'other details are another payment');
});

test('errors read as sentences, unknown codes included', () => {
  assert.equal(new ApiError('insufficient_funds', 422).message, humanMessage('insufficient_funds'));
  assert.match(humanMessage('insufficient_funds'), /balance is too low/);
  assert.match(humanMessage('brand_new_code'), /brand_new_code/);
});
