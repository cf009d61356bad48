// Screens are addressed by the URL's fragment (#/rooms/7), so a reload or a shared link shows the
// same screen while the server serves the one page at `/` (no catch-all route on the server).
import { useEffect, useState } from 'preact/hooks';
import type { Id } from './types';

export type Route =
  | { screen: 'chats' }
  | { screen: 'room'; roomId: Id }
  | { screen: 'wallet' }
  | { screen: 'transaction'; transferId: Id }
  | { screen: 'account' };

export function parseRoute(hash: string): Route {
  const room = /^#\/rooms\/([1-9][0-9]{0,14})$/.exec(hash);
  if (room?.[1] !== undefined) return { screen: 'room', roomId: Number(room[1]) };
  const transaction = /^#\/wallet\/transactions\/([1-9][0-9]{0,14})$/.exec(hash);
  if (transaction?.[1] !== undefined) return { screen: 'transaction', transferId: Number(transaction[1]) };
  if (hash === '#/wallet') return { screen: 'wallet' };
  if (hash === '#/account') return { screen: 'account' };
  return { screen: 'chats' };
}

export function href(route: Route): string {
  switch (route.screen) {
    case 'chats':
      return '#/';
    case 'room':
      return `#/rooms/${route.roomId}`;
    case 'wallet':
      return '#/wallet';
    case 'transaction':
      return `#/wallet/transactions/${route.transferId}`;
    case 'account':
      return '#/account';
  }
}

export function navigate(route: Route): void {
  location.hash = href(route);
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onChange = () => setRoute(parseRoute(location.hash));
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return route;
}
