-- Expired refresh tokens are deleted as their users come back (sql/functions/10_users.sql): a
-- log-in clears the user's expired tokens of every family, so sessions abandoned without a
-- logout do not stay in the table for good. This index makes that a range scan of one user's
-- expired rows.
CREATE INDEX refresh_tokens_user_expiry_idx ON refresh_tokens (user_id, expires_at);
