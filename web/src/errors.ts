// A sentence a person can act on for every error code the API can return (every `code` enum in
// openapi.yaml, checked by tests/suite/web.rs), and for the client's own failures. The server's
// `message` is written for developers; these are written for the people using the app.

const MESSAGES: Record<string, string> = {
  // Registration and login
  username_taken: 'That username is taken. Try another one.',
  invalid_username: 'Usernames are 3 to 32 letters, digits, dots, dashes or underscores.',
  invalid_password: 'Passwords are 8 to 72 characters long.',
  common_password: 'That password is too common. Choose one that is harder to guess.',
  invalid_credentials: 'Wrong username or password.',
  invalid_refresh_token: 'Your session has ended. Please log in again.',
  unsupported_grant_type: 'This kind of login is not supported.',
  unauthorized: 'Your session has ended. Please log in again.',
  invalid_operator_token: 'Only the operator can do that.',
  rate_limited: 'Too many attempts. Wait a moment and try again.',
  // Users
  user_not_found: 'Nobody has that username.',
  not_found: 'That could not be found.',
  // Money
  receiver_not_found: 'Nobody has that username.',
  invalid_receiver: 'Choose who to pay.',
  statement_too_large: 'That period holds too many lines for one statement. Ask for a shorter period.',
  invalid_amount: 'Enter an amount like 12.50 or 1000, without thousands separators or extra decimals.',
  amount_too_large: 'That amount is larger than a single payment may be.',
  invalid_currency: 'That is not a currency code.',
  unsupported_currency: 'That currency is not supported.',
  currency_mismatch: 'One of you holds no account in that currency.',
  invalid_note: 'Notes are at most 280 characters, without special characters.',
  insufficient_funds: 'Your balance is too low for this payment.',
  daily_limit_exceeded: 'This would go over what you can send today. Try a smaller amount, or again tomorrow.',
  daily_transfers_exceeded: 'You have made as many payments today as the daily limit allows. Try again tomorrow.',
  not_payment_receiver: 'Only the person who received a payment can refund it.',
  not_refundable: 'Only payments can be refunded.',
  refund_exceeds_payment: 'That is more than is left to refund of this payment.',
  invalid_period: 'Choose a start date before the end date.',
  period_too_long: 'A statement covers at most a year. Choose a shorter period.',
  invalid_format: 'Statements come as JSON or CSV.',
  self_transfer: 'You cannot pay yourself.',
  sender_mismatch: 'You can only send money from your own account.',
  idempotency_key_reused: 'This payment was already sent with different details. Start a new payment.',
  invalid_idempotency_key: 'The payment could not be sent safely. Start a new payment.',
  // Rooms
  room_not_found: 'That chat does not exist, or you are not in it.',
  invalid_room_name: 'Room names are 1 to 100 characters.',
  room_full: 'The room is full.',
  self_room: 'You cannot start a chat with yourself.',
  not_owner: 'Only the room’s owner can add members.',
  direct_room: 'Direct chats have exactly two people; create a group room instead.',
  // Messages
  empty_message: 'Write something first.',
  message_too_large: 'That message is too long.',
  invalid_content: 'That message contains characters that cannot be sent.',
  invalid_client_msg_id: 'The message could not be sent safely. Try again.',
  client_msg_id_reused: 'The message could not be sent safely. Try again.',
  message_not_found: 'That message is not in this chat.',
  unknown_type: 'The app sent something the server does not understand. Reload the page.',
  not_author: 'Only the person who wrote a message can edit it.',
  not_author_or_owner: 'Only the person who wrote a message, or the room’s owner, can delete it.',
  payment_message: 'Payments and payment requests cannot be edited or deleted.',
  message_deleted: 'That message was deleted.',
  edit_window_closed: 'It is too late to edit that message.',
  // Payments in chat
  receiver_not_member: 'That person is not in this chat.',
  payer_not_member: 'That person is not in this chat.',
  self_request: 'You cannot ask yourself for money.',
  not_payer: 'Only the person asked can answer this request.',
  request_not_found: 'That payment request is not in this chat.',
  member_left: 'That person left this room. Only they can decide to come back.',
  already_resolved: 'This request was already paid or declined.',
  request_expired: 'This request has expired.',
  // Split requests
  invalid_payer_count: 'A split is shared by 2 to 50 people.',
  duplicate_payer: 'Each person can appear only once in a split.',
  split_too_small: 'That amount is too small to share among so many people.',
  split_not_found: 'That split request is not in this chat.',
  // Malformed requests: the app's fault, not the person's
  missing_field: 'Fill in every field.',
  invalid_field: 'A field has a value the server does not accept.',
  unknown_field: 'The app sent something the server does not understand. Reload the page.',
  malformed_json: 'The app sent something the server does not understand. Reload the page.',
  malformed_form: 'The app sent something the server does not understand. Reload the page.',
  malformed_query: 'The app sent something the server does not understand. Reload the page.',
  malformed_events: 'The app sent something the server does not understand. Reload the page.',
  missing_parameter: 'The app sent something the server does not understand. Reload the page.',
  invalid_encoding: 'That text contains characters that cannot be sent.',
  unreadable_body: 'The request was cut off. Try again.',
  bad_request: 'The request could not be read. Reload the page.',
  forged_client_address: 'Something between you and the server changed this request. Try another network.',
  unsupported_media_type: 'The app sent something the server does not understand. Reload the page.',
  payload_too_large: 'That is too long to send.',
  invalid_limit: 'The app asked for too much at once. Reload the page.',
  invalid_cursor: 'The list could not be continued. Reload the page.',
  method_not_allowed: 'The app asked for something the server does not do. Reload the page.',
  use_realtime_gateway: 'Live updates are misconfigured on this server.',
  // The service
  unavailable: 'The service is briefly unavailable. Try again in a moment.',
  timeout: 'This took too long to confirm; it may have gone through. Sending it again from here is safe: it is never done twice.',
  internal: 'Something went wrong on our side. Try again later.',
  // The client's own
  network_error: 'You seem to be offline. Check your connection and try again.',
  unexpected_response: 'The server gave an answer the app does not understand. Try again later.',
};

/** What to tell a person about an error `code`. */
export function humanMessage(code: string): string {
  return MESSAGES[code] ?? `Something went wrong (${code}). Try again later.`;
}
