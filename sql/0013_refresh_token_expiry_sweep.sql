-- Each log-in also deletes a few of anyone's expired refresh tokens, oldest first
-- (sql/functions/10_users.sql), so those of users who never come back do not stay for good. This
-- index finds the oldest expired rows without reading the live ones.
CREATE INDEX refresh_tokens_expiry_idx ON refresh_tokens (expires_at);
