-- Refunds (issue 18): the receiver of a payment sends all or part of it back, in as many refunds
-- as they like, never more than the payment in total.
--
-- A refund is a new transfer (kind 'refund') from the payment's receiver account to its sender
-- account, naming the payment in refund_of; history stays append-only. What has been refunded of
-- each payment is kept in refund_totals, written only by the trigger below when a refund is
-- inserted, whose CHECK refuses a total above the payment's amount. Concurrent refunds of one
-- payment queue on its refund_totals row (and, in fintech_refund, on the payment's row first),
-- so they cannot pass the amount together.
ALTER TABLE transfers
    DROP CONSTRAINT transfers_kind_valid,
    ADD CONSTRAINT transfers_kind_valid CHECK (kind IN ('payment', 'deposit', 'refund')),
    ADD COLUMN refund_of bigint REFERENCES transfers (id),
    ADD CONSTRAINT transfers_refund_names_payment CHECK ((kind = 'refund') = (refund_of IS NOT NULL));

CREATE TABLE refund_totals (
    transfer_id bigint PRIMARY KEY REFERENCES transfers (id),
    -- The payment's amount, copied by the trigger from the payment's row.
    amount      numeric NOT NULL,
    refunded    numeric NOT NULL,
    CONSTRAINT refund_totals_within_payment CHECK (refunded > 0 AND refunded <= amount)
);

-- The totals grow with refunds and are never removed.
CREATE TRIGGER refund_totals_no_delete BEFORE DELETE ON refund_totals
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_rewrite();
CREATE TRIGGER refund_totals_no_truncate BEFORE TRUNCATE ON refund_totals
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_rewrite();

-- Adds an inserted refund to its payment's total. The refund must send a payment (not a deposit
-- or another refund) back the way it came: from the payment's receiver account to its sender
-- account (so also in its currency).
CREATE FUNCTION ledger_apply_refund() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO refund_totals (transfer_id, amount, refunded)
    SELECT p.id, p.amount, NEW.amount FROM transfers p
    WHERE p.id = NEW.refund_of AND p.kind = 'payment'
      AND p.sender_account_id = NEW.receiver_account_id AND p.receiver_account_id = NEW.sender_account_id
    ON CONFLICT (transfer_id) DO UPDATE SET refunded = refund_totals.refunded + EXCLUDED.refunded;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'transfer % does not send payment % back', NEW.id, NEW.refund_of
            USING ERRCODE = 'check_violation', CONSTRAINT = 'transfers_refund_reverses_payment';
    END IF;
    RETURN NULL;
END;
$$;

-- Only refunds fire it: the WHEN clause keeps every other transfer free of the trigger's cost.
CREATE TRIGGER transfers_refund_totals AFTER INSERT ON transfers
    FOR EACH ROW WHEN (NEW.refund_of IS NOT NULL) EXECUTE FUNCTION ledger_apply_refund();

-- A refund of a payment made in a chat shows in that room as a message of kind 'refund', carrying
-- the refund transfer. The room is found from the payment's message, by this index (partial:
-- text messages, the most, carry no transfer).
ALTER TABLE messages
    DROP CONSTRAINT messages_kind_valid,
    ADD CONSTRAINT messages_kind_valid
        CHECK (kind IN ('text', 'payment', 'payment_request', 'payment_declined', 'refund')),
    DROP CONSTRAINT messages_payment_has_transfer,
    ADD CONSTRAINT messages_payment_has_transfer CHECK ((kind IN ('payment', 'refund')) = (transfer_id IS NOT NULL));

CREATE INDEX messages_transfer_idx ON messages (transfer_id) WHERE transfer_id IS NOT NULL;
