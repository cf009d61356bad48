-- Users and their refresh tokens.
--
-- Usernames are stored in their canonical (lower-case) form: the API compares them
-- case-insensitively, and storing one spelling lets a plain UNIQUE constraint enforce that.

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    username      text NOT NULL,
    -- bcrypt hash ("$2b$<cost>$..."); never returned by any query the API exposes.
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_username_key UNIQUE (username),
    CONSTRAINT users_username_format CHECK (username ~ '^[a-z0-9_.-]{3,32}$'),
    CONSTRAINT users_password_hash_format CHECK (password_hash ~ '^\$2[aby]\$[0-9]{2}\$')
);

-- Refresh tokens rotate: each use marks the presented token used and issues a successor in the
-- same family. Presenting a used token again means it leaked, so the whole family is revoked.
-- Only a SHA-256 digest of each token is stored; the token itself exists only at the client.
CREATE SEQUENCE refresh_token_families AS bigint;

CREATE TABLE refresh_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id),
    family_id   bigint NOT NULL,
    token_hash  bytea NOT NULL,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    revoked_at  timestamptz,
    CONSTRAINT refresh_tokens_token_hash_key UNIQUE (token_hash),
    CONSTRAINT refresh_tokens_hash_is_sha256 CHECK (octet_length(token_hash) = 32),
    CONSTRAINT refresh_tokens_expiry_after_issue CHECK (expires_at > issued_at)
);

CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
