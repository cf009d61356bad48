// The client's state lives in a few plain objects (session, chat, wallet, users) that announce
// changes; components re-render through `useObserved`. No state library: a dozen lines do it.
import { useEffect, useState } from 'preact/hooks';

export class Observable {
  /** Counts changes, so a component that subscribes late still sees the ones it missed. */
  version = 0;
  private readonly listeners = new Set<() => void>();

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  protected changed(): void {
    this.version += 1;
    for (const listener of [...this.listeners]) listener();
  }
}

/** Re-renders the calling component whenever `observable` changes. */
export function useObserved<T extends Observable>(observable: T): T {
  const [, setSeen] = useState(observable.version);
  useEffect(() => {
    const sync = () => setSeen(observable.version);
    const unsubscribe = observable.subscribe(sync);
    // Effects run after the first paint: catch up with changes made in between.
    sync();
    return unsubscribe;
  }, [observable]);
  return observable;
}
