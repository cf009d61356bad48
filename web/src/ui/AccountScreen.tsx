// The signed-in person's account: changing their password.
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Services } from './App';
import { ErrorText, useSubmission } from './common';

export function AccountScreen({ services }: { services: Services }) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), []);
  return (
    <main class="account" id="main">
      <h2 ref={heading} tabIndex={-1}>
        Account
      </h2>
      <p>
        Logged in as <strong>{services.me.username}</strong>.
      </p>
      <ChangePassword services={services} />
    </main>
  );
}

function ChangePassword({ services }: { services: Services }) {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const [changed, setChanged] = useState(false);
  const { busy, error, submit } = useSubmission();

  const change = (event: Event) => {
    event.preventDefault();
    setChanged(false);
    void submit(async () => {
      await services.api.changePassword(current, next);
      setCurrent('');
      setNext('');
      setChanged(true);
    });
  };

  return (
    <section aria-labelledby="password-heading">
      <h3 id="password-heading">Password</h3>
      <form class="stack" onSubmit={change} aria-label="Change password">
        <label>
          Current password
          <input
            name="current-password"
            type="password"
            autocomplete="current-password"
            required
            maxLength={72}
            value={current}
            onInput={(event) => setCurrent(event.currentTarget.value)}
          />
        </label>
        <label>
          New password
          <input
            name="new-password"
            type="password"
            autocomplete="new-password"
            required
            minLength={8}
            maxLength={72}
            value={next}
            onInput={(event) => setNext(event.currentTarget.value)}
          />
        </label>
        <p class="hint">8 or more characters. Changing it logs you out everywhere else.</p>
        <ErrorText error={error} />
        {changed ? (
          <p class="success" role="status">
            Password changed. You are logged out everywhere else.
          </p>
        ) : null}
        <button type="submit" class="primary" disabled={busy}>
          Change password
        </button>
      </form>
    </section>
  );
}
