// Small pieces every screen uses.
import { useEffect, useState } from 'preact/hooks';
import { describe } from '../http';

const USERNAME_MAX_CHARS = 32;

/** An error for the person, announced by screen readers as it appears. */
export function ErrorText({ error }: { error: string | null }) {
  return error === null ? null : (
    <p class="error" role="alert">
      {error}
    </p>
  );
}

/** The current time, re-read every `intervalMs` (for "expires in ..." texts). */
export function useNow(intervalMs: number): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), intervalMs);
    return () => clearInterval(timer);
  }, [intervalMs]);
  return now;
}

export function Time({ at, withDate = false }: { at: string; withDate?: boolean }) {
  const date = new Date(at);
  const time = date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const sameDay = date.toDateString() === new Date().toDateString();
  const text = withDate && !sameDay ? `${date.toLocaleDateString()} ${time}` : time;
  return <time dateTime={at}>{text}</time>;
}

/** "in 23 h", "in 5 min": how long until `at`. */
export function timeUntil(at: string, nowMs: number): string {
  const minutes = Math.max(0, Math.round((Date.parse(at) - nowMs) / 60_000));
  if (minutes >= 120) return `in ${Math.round(minutes / 60)} h`;
  return minutes <= 1 ? 'in a minute' : `in ${minutes} min`;
}

/** A form's submission: `busy` while it runs, and the error it ended with, as a sentence. */
export function useSubmission() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const submit = async (action: () => Promise<void>): Promise<void> => {
    setBusy(true);
    setError(null);
    try {
      await action();
    } catch (failure) {
      setError(describe(failure));
    }
    setBusy(false);
  };
  return { busy, error, setError, submit };
}

/** A labelled username input: typed as is, no autocorrection, the API's length limit. */
export function UsernameField({
  label,
  value,
  onInput,
  autocomplete = 'off',
}: {
  label: string;
  value: string;
  onInput: (value: string) => void;
  autocomplete?: string;
}) {
  return (
    <label>
      {label}
      <input
        name="username"
        autocomplete={autocomplete}
        autocapitalize="none"
        spellcheck={false}
        required
        maxLength={USERNAME_MAX_CHARS}
        value={value}
        onInput={(event) => onInput(event.currentTarget.value)}
      />
    </label>
  );
}
