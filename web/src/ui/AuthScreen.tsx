// Log in or create an account.
import { useState } from 'preact/hooks';
import { describe } from '../http';
import type { Session } from '../session';
import { ErrorText } from './common';

type Mode = 'login' | 'register';

export function AuthScreen({ session, notice }: { session: Session; notice: string | null }) {
  const [mode, setMode] = useState<Mode>('login');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(notice);

  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      if (mode === 'login') await session.login(username.trim(), password);
      else await session.register(username.trim(), password);
    } catch (failure) {
      setError(describe(failure));
      setBusy(false);
    }
  };
  const choose = (next: Mode) => {
    setMode(next);
    setError(null);
  };

  return (
    <main class="auth" id="main">
      <h1>SendInChat</h1>
      <p class="tagline">Chat with people and send them money, in the same conversation.</p>
      <div class="auth-modes" role="group" aria-label="Account">
        <button type="button" aria-pressed={mode === 'login'} onClick={() => choose('login')}>
          Log in
        </button>
        <button type="button" aria-pressed={mode === 'register'} onClick={() => choose('register')}>
          Create account
        </button>
      </div>
      <form class="stack" onSubmit={submit} aria-label={mode === 'login' ? 'Log in' : 'Create account'}>
        <label>
          Username
          <input
            name="username"
            autocomplete="username"
            autocapitalize="none"
            spellcheck={false}
            required
            maxLength={32}
            value={username}
            onInput={(event) => setUsername(event.currentTarget.value)}
          />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autocomplete={mode === 'login' ? 'current-password' : 'new-password'}
            required
            maxLength={72}
            value={password}
            onInput={(event) => setPassword(event.currentTarget.value)}
          />
        </label>
        {mode === 'register' ? <p class="hint">3 to 32 letters, digits, “.”, “-” or “_”; a password of 8 or more characters.</p> : null}
        <ErrorText error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {mode === 'login' ? 'Log in' : 'Create account'}
        </button>
      </form>
    </main>
  );
}
