-- An absolute lifetime for sessions (refresh-token families): each token carries when its session
-- began, and no token outlives its session's end (sql/functions/10_users.sql). Without it a
-- session lasts for as long as someone keeps rotating it: a thief who rotates a stolen token
-- before its owner does keeps the session for good.
--
-- Tokens issued before this migration take the earliest issue time their family still holds
-- (expired tokens may already be gone, so a session can look younger than it is, never older).
ALTER TABLE refresh_tokens ADD COLUMN session_started_at timestamptz;

UPDATE refresh_tokens t SET session_started_at = f.started
FROM (SELECT family_id, min(issued_at) AS started FROM refresh_tokens GROUP BY family_id) f
WHERE f.family_id = t.family_id;

ALTER TABLE refresh_tokens
    ALTER COLUMN session_started_at SET NOT NULL,
    ADD CONSTRAINT refresh_tokens_session_started_before_issue CHECK (session_started_at <= issued_at);
