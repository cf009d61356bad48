import assert from 'node:assert/strict';
import { test } from 'node:test';
import { href, parseRoute } from '../src/router.ts';

test('every screen has an address that leads back to it', () => {
  for (const route of [
    { screen: 'chats' },
    { screen: 'room', roomId: 7 },
    { screen: 'wallet' },
    { screen: 'transaction', transferId: 42 },
  ]) {
    assert.deepEqual(parseRoute(href(route)), route);
  }
});

test('anything else is the chat list', () => {
  for (const hash of ['', '#', '#/rooms/0', '#/rooms/abc', '#/rooms/1/x', '#/nowhere']) {
    assert.deepEqual(parseRoute(hash), { screen: 'chats' }, hash);
  }
});
