// Log in or create an account.
import { useEffect, useState } from 'preact/hooks';
import type { Session } from '../session';
import { ErrorText, UsernameField, useSubmission } from './common';

type Mode = 'login' | 'register';

export function AuthScreen({ session, notice }: { session: Session; notice: string | null }) {
  const [mode, setMode] = useState<Mode>('login');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const { busy, error, setError, submit } = useSubmission();
  useEffect(() => setError(notice), [notice]);

  const logIn = (event: Event) => {
    event.preventDefault();
    void submit(() =>
      mode === 'login' ? session.login(username.trim(), password) : session.register(username.trim(), password),
    );
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
      <form class="stack" onSubmit={logIn} aria-label={mode === 'login' ? 'Log in' : 'Create account'}>
        <UsernameField label="Username" value={username} onInput={setUsername} autocomplete="username" />
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
