-- POST /fintech/transactions/{id}/refunds (issue 18): the receiver of a payment sends all or part
-- of it back to its sender, as a new transfer of kind 'refund' naming the payment in refund_of.
-- Any number of refunds, never more than the payment in total: refund_totals (sql/0008_refunds.sql)
-- refuses that by a CHECK; this function answers the friendlier outcome first.
--
-- Outcomes: 'completed' (the refund transfer), 'transfer_not_found' (no such transfer, or the caller
-- is not a party to it: the answer does not reveal that it exists), 'not_payment_receiver' (the
-- caller sent it: a sender cannot pull money back), 'not_refundable' (a deposit or a refund),
-- 'invalid_amount_precision', 'refund_exceeds_payment' (with what was refunded before), and
-- those of ledger_post ('insufficient_funds' when the receiver no longer holds the money,
-- 'daily_transfers_exceeded', 'idempotency_mismatch').
--
-- A refund does not count against the refunder's daily outgoing total, and does not give the
-- payer's back: it returns money received, bounded by the payment, and can only go back to the
-- payer, so it is no way to move money out of an account (which is what that limit guards). It
-- does count, as every transfer does, against the refunder's daily number of transfers
-- (p_daily_transfers_max): a payment refunded 0.01 at a time would otherwise append up to a
-- hundred transfers per unit of money, and the money goes back for the next round.
--
-- A payment made in a chat shows there as a message of kind 'payment'; its refunds are appended to
-- the same room as messages of kind 'refund', in the same transaction (so the room shows every
-- refund of it, or the refund did not happen). room_message is that message's JSON, for the
-- component to publish to the room once committed (NULL: no message, or a replay).
--
-- Lock order (as in sql/functions/30_chat.sql): the payment's row, so refunds of one payment queue
-- and each sees the total of those before it; then the two accounts (ledger_post); then the
-- payment's refund_totals row (the trigger); then the payment's room, if it was made in one, to
-- append the message.
CREATE FUNCTION fintech_refund(
    p_caller_id bigint, p_transfer_id bigint, p_amount numeric, p_note text, p_idempotency_key text,
    p_daily_transfers_max integer DEFAULT NULL, OUT outcome text, OUT resource text, OUT replayed boolean, OUT room_message text)
LANGUAGE plpgsql AS $$
DECLARE
    scope text;
    fingerprint bytea;
    payment transfers;
    amount numeric;
    result record;
    room bigint;
BEGIN
    IF p_idempotency_key IS NOT NULL THEN
        scope := 'user:' || p_caller_id;
        fingerprint := request_fingerprint('fintech_refund', p_transfer_id::text, trim_scale(p_amount)::text, p_note);
        PERFORM idempotency_lock(scope, p_idempotency_key);
    END IF;
    SELECT * INTO payment FROM transfers
    WHERE id = p_transfer_id AND p_caller_id IN (sender_user_id, receiver_user_id)
    FOR NO KEY UPDATE;
    SELECT m.room_id INTO room FROM messages m WHERE m.transfer_id = payment.id AND m.kind = 'payment';
    -- After the key's lock: a concurrent request with the same key that held it first has
    -- committed by now, and its answer is this request's answer.
    replayed := true;
    IF p_idempotency_key IS NOT NULL THEN
        SELECT r.outcome, r.resource INTO outcome, resource
        FROM idempotency_replay(scope, p_idempotency_key, fingerprint) r;
        IF FOUND THEN
            RETURN;
        END IF;
    END IF;
    replayed := false;
    amount := ledger_scaled_amount(p_amount, payment.currency);
    IF payment.id IS NULL THEN
        outcome := 'transfer_not_found';
    ELSIF payment.receiver_user_id IS DISTINCT FROM p_caller_id THEN
        outcome := 'not_payment_receiver';
    ELSIF payment.kind <> 'payment' THEN
        outcome := 'not_refundable';
    ELSIF amount IS NULL THEN
        outcome := 'invalid_amount_precision';
    ELSIF amount > payment.amount
            - coalesce((SELECT r.refunded FROM refund_totals r WHERE r.transfer_id = payment.id), 0) THEN
        outcome := 'refund_exceeds_payment';
    ELSE
        result := ledger_post('refund', payment.receiver_account_id, payment.sender_account_id, amount,
            p_note, scope, p_idempotency_key, fingerprint, NULL, payment.id, p_daily_transfers_max);
        outcome := result.outcome;
        replayed := result.replayed;
        IF outcome = 'completed' THEN
            -- A refund cannot itself be refunded.
            resource := transfer_json(result.posted, NULL)::text;
        END IF;
        -- A receiver who has left the room still refunds, but posts nothing (its note least of all)
        -- into a room they are no longer in; the payment's message shows the amount refunded.
        IF outcome = 'completed' AND NOT replayed AND room IS NOT NULL AND chat_is_member(room, p_caller_id) THEN
            room_message := message_json(
                chat_append_message(room, p_caller_id, 'refund', p_note, (result.posted).id, NULL, NULL))::text;
        END IF;
    END IF;
    IF p_idempotency_key IS NOT NULL AND outcome <> 'completed' AND NOT replayed THEN
        PERFORM idempotency_store_refusal(scope, p_idempotency_key, fingerprint, outcome);
    END IF;
END;
$$;
