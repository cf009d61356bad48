-- Split requests (issue 18): one request to several members of a room at once. The split holds
-- the total and its terms; each payer's share is a row of payment_requests carrying the split's
-- id, so a share is accepted or declined through the single request's path and resolves exactly
-- once under the same row lock.
--
-- What Postgres guarantees here, whatever writes the rows:
-- - each share has the split's room, requester, currency and expiry (a composite foreign key);
-- - a payer has at most one share of a split (a unique index);
-- - each share is positive and not the requester's own (payment_requests' CHECKs);
-- - the shares of a split sum exactly to its total and number exactly its share_count, 2 to 50
--   (a deferred constraint trigger, checked at commit, once all the shares are written).

CREATE TABLE split_requests (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    room_id      bigint NOT NULL REFERENCES rooms (id),
    requester_id bigint NOT NULL REFERENCES users (id),
    total        numeric NOT NULL,
    currency     char(3) NOT NULL REFERENCES currencies (code),
    note         text,
    -- How many payers share the total (the API's limit, `SPLIT_PAYERS` in components/chat/src/splits.rs).
    share_count  integer NOT NULL,
    expires_at   timestamptz NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT split_requests_total_positive CHECK (total > 0),
    CONSTRAINT split_requests_share_count_range CHECK (share_count BETWEEN 2 AND 50),
    CONSTRAINT split_requests_note_length CHECK (char_length(note) <= 280),
    -- The target of the shares' composite foreign key.
    CONSTRAINT split_requests_terms_key UNIQUE (id, room_id, requester_id, currency, expires_at)
);

ALTER TABLE payment_requests
    ADD COLUMN split_id bigint,
    ADD CONSTRAINT payment_requests_split_terms_fkey
        FOREIGN KEY (split_id, room_id, requester_id, currency, expires_at)
        REFERENCES split_requests (id, room_id, requester_id, currency, expires_at);

CREATE UNIQUE INDEX payment_requests_split_payer_key ON payment_requests (split_id, payer_id)
    WHERE split_id IS NOT NULL;

-- A `split_request` message shows its split (and, through it, every share's status).
ALTER TABLE messages
    ADD COLUMN split_request_id bigint REFERENCES split_requests (id),
    ADD CONSTRAINT messages_split_request_has_split CHECK ((kind = 'split_request') = (split_request_id IS NOT NULL));

-- Allow the new kind. Other migrations extend the same list, so this one adds to whatever list
-- is in place rather than restating it.
DO $$
DECLARE
    kinds text[] := ARRAY(
        SELECT (regexp_matches(pg_get_constraintdef(oid), '''([a-z_]+)''', 'g'))[1]
        FROM pg_constraint WHERE conrelid = 'messages'::regclass AND conname = 'messages_kind_valid');
BEGIN
    EXECUTE format('ALTER TABLE messages DROP CONSTRAINT messages_kind_valid, '
                   'ADD CONSTRAINT messages_kind_valid CHECK (kind IN (%s))',
                   (SELECT string_agg(quote_literal(kind), ', ') FROM unnest(kinds || 'split_request'::text) kind));
END;
$$;

-- Fails the transaction unless each split touched has shares that sum to its total and number its
-- share_count. A trigger function (not a helper it calls) because sendinchat-migrate replaces
-- every other routine on each run.
CREATE FUNCTION split_check_shares() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    touched bigint[];
    unbalanced bigint;
BEGIN
    IF TG_TABLE_NAME = 'split_requests' THEN
        touched := ARRAY[NEW.id];
    ELSIF TG_OP = 'INSERT' THEN
        touched := ARRAY[NEW.split_id];
    ELSIF TG_OP = 'UPDATE' THEN
        touched := ARRAY[OLD.split_id, NEW.split_id];
    ELSE
        touched := ARRAY[OLD.split_id];
    END IF;
    SELECT s.id INTO unbalanced
    FROM split_requests s,
         LATERAL (SELECT coalesce(sum(r.amount), 0) AS total, count(*) AS count
                  FROM payment_requests r WHERE r.split_id = s.id) shares
    WHERE s.id = ANY (touched) AND (shares.total <> s.total OR shares.count <> s.share_count)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'the shares of split % do not sum to its total or do not number its share_count', unbalanced
            USING ERRCODE = 'check_violation', CONSTRAINT = 'split_requests_shares_sum_to_total';
    END IF;
    RETURN NULL;
END;
$$;

-- Deferred to commit: a split and its shares are written by several statements. A share's
-- status changes (accept, decline, expiry) do not touch these columns and cost nothing here.
CREATE CONSTRAINT TRIGGER split_requests_shares_sum_to_total
    AFTER INSERT OR UPDATE OF total, share_count ON split_requests
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION split_check_shares();

CREATE CONSTRAINT TRIGGER payment_requests_shares_sum_to_total
    AFTER INSERT OR UPDATE OF split_id, amount OR DELETE ON payment_requests
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION split_check_shares();
