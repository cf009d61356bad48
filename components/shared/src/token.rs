//! Bearer access tokens: HS256 JWTs made by `auth` and checked by every component the same way,
//! without calling `auth`.
//!
//! Only HS256 is accepted. A token is refused when its algorithm differs (including `none`), its
//! signature is wrong, it has expired, it is not yet valid (`nbf`, or `iat` in the future), or a
//! required claim (`sub`, `iat`, `exp`, `iss`) is missing or wrong.
//!
//! A token also names its session (`sid`, the refresh-token family its login began). Ordinary
//! requests do not look it up: a token stays good until it expires, even after logout. Only
//! WebSockets and event streams, which can outlive many tokens, check that their session is
//! still live.
use chrono::{DateTime, Duration, Utc};
use http::HeaderMap;
use jwt_compact::alg::{Hs256, Hs256Key};
use jwt_compact::{AlgorithmExt, Claims, Header, TimeOptions, UntrustedToken};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::ApiError;
use crate::ids::{RoomId, SessionId, UserId};

/// The shortest acceptable HMAC key: HS256 keys shorter than the hash output weaken it.
pub const SECRET_BYTES_MIN: usize = 32;

/// Tolerated clock difference between the machines that issue and check tokens.
const CLOCK_SKEW_SECONDS: i64 = 30;

#[derive(Debug, Serialize, Deserialize)]
struct AccessClaims {
    sub: String,
    iss: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
}

/// What a valid access token says: whose it is, (when it names one) its session, and when it
/// expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bearer {
    pub user: UserId,
    pub session: Option<SessionId>,
    pub expires_at: DateTime<Utc>,
}

impl Bearer {
    /// The first moment at which the token is refused: its expiry plus the tolerated clock skew.
    pub fn refused_from(&self) -> DateTime<Utc> {
        saturating_add(self.expires_at, Duration::seconds(CLOCK_SKEW_SECONDS + 1))
    }
}

/// The key and issuer with which access tokens are made and checked.
pub struct TokenKeys {
    key: Hs256Key,
    issuer: String,
}

/// What an event stream's re-check credential says (see [`TokenKeys::issue_stream_recheck`]).
#[derive(Debug, Serialize, Deserialize)]
struct StreamRecheckClaims {
    sub: String,
    sid: String,
    room: String,
    iss: String,
}

/// Why a token was refused; the client sees only a generic 401, this is for the log and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    BadSignatureOrAlgorithm,
    Expired,
    NotYetValid,
    MissingClaim,
    WrongIssuer,
}

impl TokenKeys {
    /// Refuses a secret shorter than [`SECRET_BYTES_MIN`]: better no service than forgeable tokens.
    pub fn new(secret: &str, issuer: String) -> Result<Self, ApiError> {
        if secret.len() < SECRET_BYTES_MIN {
            return Err(ApiError::internal(format!(
                "jwt_secret is {} bytes; at least {SECRET_BYTES_MIN} are required",
                secret.len()
            )));
        }
        Ok(Self { key: Hs256Key::new(secret.as_bytes()), issuer })
    }

    /// Issues an access token for `user` in `session`, valid for `lifetime` from `now`.
    pub fn issue(&self, user: UserId, session: SessionId, lifetime: Duration, now: DateTime<Utc>) -> String {
        let mut claims = Claims::new(AccessClaims {
            sub: user.to_string(),
            iss: self.issuer.clone(),
            sid: Some(session.to_string()),
        });
        claims.issued_at = Some(now);
        claims.expiration = Some(now + lifetime);
        Hs256
            .token(&Header::empty().with_token_type("JWT"), &claims, &self.key)
            .expect("serialising fixed claims cannot fail")
    }

    /// Checks a token and returns the user it was issued to.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<UserId, Rejection> {
        self.verify_bearer(token, now).map(|bearer| bearer.user)
    }

    /// Checks a token and returns its user and session.
    pub fn verify_bearer(&self, token: &str, now: DateTime<Utc>) -> Result<Bearer, Rejection> {
        let claims: Claims<AccessClaims> = verify_hs256(&self.key, token, now)?;
        if claims.issued_at.is_none() {
            return Err(Rejection::MissingClaim);
        }
        if claims.custom.iss != self.issuer {
            return Err(Rejection::WrongIssuer);
        }
        let user = UserId::parse(&claims.custom.sub).ok_or(Rejection::MissingClaim)?;
        let session = claims.custom.sid.map(|sid| SessionId::parse(&sid).ok_or(Rejection::MissingClaim)).transpose()?;
        let expires_at = claims.expiration.ok_or(Rejection::MissingClaim)?;
        Ok(Bearer { user, session, expires_at })
    }

    /// The credential an event stream's next link carries, with which Pushpin asks whether the
    /// stream may go on: it names the stream's user, session and room, and expires with the access
    /// token that opened the stream. Its own issuer keeps it from ever passing as an access token,
    /// and it keeps the access token itself out of the URLs that Pushpin logs.
    pub fn issue_stream_recheck(&self, bearer: Bearer, session: SessionId, room: RoomId) -> String {
        let mut claims = Claims::new(StreamRecheckClaims {
            sub: bearer.user.to_string(),
            sid: session.to_string(),
            room: room.to_string(),
            iss: self.stream_recheck_issuer(),
        });
        claims.expiration = Some(bearer.expires_at);
        Hs256
            .token(&Header::empty().with_token_type("JWT"), &claims, &self.key)
            .expect("serialising fixed claims cannot fail")
    }

    /// Checks a stream's re-check credential for `room`; returns the user, session and expiry of
    /// the access token it was made from.
    pub fn verify_stream_recheck(&self, token: &str, room: RoomId, now: DateTime<Utc>) -> Result<Bearer, Rejection> {
        let claims: Claims<StreamRecheckClaims> = verify_hs256(&self.key, token, now)?;
        if claims.custom.iss != self.stream_recheck_issuer() {
            return Err(Rejection::WrongIssuer);
        }
        if claims.custom.room != room.to_string() {
            return Err(Rejection::MissingClaim);
        }
        let user = UserId::parse(&claims.custom.sub).ok_or(Rejection::MissingClaim)?;
        let session = SessionId::parse(&claims.custom.sid).ok_or(Rejection::MissingClaim)?;
        let expires_at = claims.expiration.ok_or(Rejection::MissingClaim)?;
        Ok(Bearer { user, session: Some(session), expires_at })
    }

    fn stream_recheck_issuer(&self) -> String {
        format!("{}#stream-recheck", self.issuer)
    }

    /// The user behind the request's `Authorization: Bearer <token>` header, or a 401.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<UserId, ApiError> {
        self.authenticate_bearer(headers).map(|bearer| bearer.user)
    }

    /// The user and session behind the request's `Authorization: Bearer <token>` header, or a 401.
    pub fn authenticate_bearer(&self, headers: &HeaderMap) -> Result<Bearer, ApiError> {
        if headers.get_all(http::header::AUTHORIZATION).iter().nth(1).is_some() {
            return Err(ApiError::unauthorized("give one Authorization header, not several"));
        }
        let token = bearer_token(headers).ok_or_else(|| ApiError::unauthorized("a bearer token is required"))?;
        let bearer = self.verify_bearer(token, Utc::now()).map_err(|rejection| match rejection {
            Rejection::Expired => ApiError::unauthorized("the access token has expired"),
            _ => ApiError::unauthorized("the access token is invalid"),
        })?;
        crate::request_log::note_user(bearer.user);
        Ok(bearer)
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme compared case-insensitively);
/// none when the header is given more than once.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let value = values.next()?.to_str().ok()?;
    if values.next().is_some() {
        return None;
    }
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Verifies an HS256 token's algorithm, signature, `exp` (required) and `nbf`/`iat` (when
/// present, not in the future), and returns its claims. Shared by access tokens and Pushpin's
/// `Grip-Sig`.
pub fn verify_hs256<T: DeserializeOwned>(
    key: &Hs256Key,
    token: &str,
    now: DateTime<Utc>,
) -> Result<Claims<T>, Rejection> {
    let untrusted = UntrustedToken::new(token).map_err(|_| Rejection::Malformed)?;
    let verified = Hs256.validator::<T>(key).validate(&untrusted).map_err(|_| Rejection::BadSignatureOrAlgorithm)?;
    let (_, claims) = verified.into_parts();
    let options = TimeOptions::new(Duration::seconds(CLOCK_SKEW_SECONDS), move || now);
    let expiration = claims.expiration.ok_or(Rejection::MissingClaim)?;
    if now > saturating_add(expiration, options.leeway) {
        return Err(Rejection::Expired);
    }
    let earliest_valid = [claims.not_before, claims.issued_at].into_iter().flatten().max();
    if earliest_valid.is_some_and(|moment| now + options.leeway < moment) {
        return Err(Rejection::NotYetValid);
    }
    Ok(claims)
}

/// `moment + duration`, or the last representable moment: a validly signed token may still name
/// an expiry at the end of time, and adding to it must not panic.
fn saturating_add(moment: DateTime<Utc>, duration: Duration) -> DateTime<Utc> {
    moment.checked_add_signed(duration).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// The HMAC key for a shared secret (e.g. Pushpin's `sig_key`).
pub fn hs256_key(secret: &str) -> Hs256Key {
    Hs256Key::new(secret.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn keys() -> TokenKeys {
        TokenKeys::new(SECRET, "sendinchat".into()).unwrap()
    }

    fn sign(header_json: &str, claims_json: &str, secret: &str) -> String {
        use base64::Engine;
        let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let signing_input = format!("{}.{}", engine.encode(header_json), engine.encode(claims_json));
        let signature = {
            use hmac::{Mac, SimpleHmac};
            let mut mac = SimpleHmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
            mac.update(signing_input.as_bytes());
            mac.finalize().into_bytes()
        };
        format!("{signing_input}.{}", engine.encode(signature))
    }

    #[test]
    fn issued_tokens_verify_to_their_user() {
        let now = Utc::now();
        let (user, session) = (UserId::parse("42").unwrap(), SessionId::parse("7").unwrap());
        let token = keys().issue(user, session, Duration::minutes(15), now);
        assert_eq!(keys().verify(&token, now).map(UserId::get), Ok(42));
        let bearer = keys().verify_bearer(&token, now).expect("a fresh token");
        assert_eq!((bearer.user, bearer.session), (user, Some(session)));
        // JWT times are whole seconds.
        assert_eq!(bearer.expires_at.timestamp(), (now + Duration::minutes(15)).timestamp());
        let refused_from = bearer.refused_from();
        assert!(keys().verify(&token, refused_from - Duration::seconds(1)).is_ok(), "accepted within the skew");
        assert_eq!(keys().verify(&token, refused_from), Err(Rejection::Expired));
        assert_eq!(keys().verify(&token, now + Duration::minutes(16)), Err(Rejection::Expired));
    }

    #[test]
    fn a_stream_recheck_credential_holds_for_its_room_only_and_is_no_access_token() {
        let now = Utc::now();
        let (user, session) = (UserId::parse("42").unwrap(), SessionId::parse("7").unwrap());
        let (room, other_room) = (RoomId::parse("3").unwrap(), RoomId::parse("4").unwrap());
        let access = keys().issue(user, session, Duration::minutes(15), now);
        let bearer = keys().verify_bearer(&access, now).unwrap();
        let credential = keys().issue_stream_recheck(bearer, session, room);
        assert_eq!(keys().verify_stream_recheck(&credential, room, now), Ok(bearer));
        assert_eq!(keys().verify_stream_recheck(&credential, other_room, now), Err(Rejection::MissingClaim));
        assert_eq!(keys().verify_stream_recheck(&credential, room, bearer.refused_from()), Err(Rejection::Expired));
        assert_eq!(keys().verify_bearer(&credential, now), Err(Rejection::MissingClaim), "not an access token");
        assert!(keys().verify_stream_recheck(&access, room, now).is_err(), "an access token is not a credential");
    }

    #[test]
    fn an_expiry_at_the_end_of_time_is_no_panic() {
        let now = Utc::now().timestamp();
        let claims = format!(r#"{{"sub":"1","iss":"sendinchat","iat":{now},"exp":8210266876799,"sid":"5"}}"#);
        let token = sign(r#"{"alg":"HS256","typ":"JWT"}"#, &claims, SECRET);
        let bearer = keys().verify_bearer(&token, Utc::now()).expect("signed with the key");
        assert_eq!(bearer.refused_from(), DateTime::<Utc>::MAX_UTC);
    }

    #[test]
    fn forged_and_malformed_tokens_are_refused() {
        let now = Utc::now().timestamp();
        let claims = format!(r#"{{"sub":"1","iss":"sendinchat","iat":{now},"exp":{}}}"#, now + 600);
        let header = r#"{"alg":"HS256","typ":"JWT"}"#;
        assert!(keys().verify(&sign(header, &claims, SECRET), Utc::now()).is_ok());
        let cases = [
            (sign(header, &claims, "another-secret-another-secret-xx"), Rejection::BadSignatureOrAlgorithm),
            (sign(r#"{"alg":"none"}"#, &claims, SECRET), Rejection::BadSignatureOrAlgorithm),
            (sign(r#"{"alg":"HS512"}"#, &claims, SECRET), Rejection::BadSignatureOrAlgorithm),
            ("not-a-token".to_owned(), Rejection::Malformed),
            (
                sign(header, &format!(r#"{{"sub":"1","iss":"sendinchat","iat":{now}}}"#), SECRET),
                Rejection::MissingClaim,
            ),
            (
                sign(header, &format!(r#"{{"sub":"1","iss":"sendinchat","exp":{}}}"#, now + 600), SECRET),
                Rejection::MissingClaim,
            ),
            (
                sign(header, &format!(r#"{{"sub":"1","iss":"evil","iat":{now},"exp":{}}}"#, now + 600), SECRET),
                Rejection::WrongIssuer,
            ),
            (
                sign(
                    header,
                    &format!(r#"{{"sub":"1","iss":"sendinchat","iat":{now},"nbf":{},"exp":{}}}"#, now + 300, now + 600),
                    SECRET,
                ),
                Rejection::NotYetValid,
            ),
            (
                sign(
                    header,
                    &format!(r#"{{"sub":"1","iss":"sendinchat","iat":{},"exp":{}}}"#, now - 7200, now - 3600),
                    SECRET,
                ),
                Rejection::Expired,
            ),
        ];
        for (token, expected) in cases {
            assert_eq!(keys().verify(&token, Utc::now()), Err(expected), "{token}");
        }
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(TokenKeys::new("too-short", "sendinchat".into()).is_err());
    }

    #[test]
    fn bearer_scheme_is_parsed_case_insensitively() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, "bearer abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(http::header::AUTHORIZATION, "Basic abc".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
    }

    #[test]
    fn two_authorization_headers_are_refused_rather_than_one_picked() {
        let token = keys().issue(
            UserId::parse("42").unwrap(),
            SessionId::parse("7").unwrap(),
            Duration::minutes(15),
            Utc::now(),
        );
        let mut headers = HeaderMap::new();
        headers.append(http::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
        assert!(keys().authenticate_bearer(&headers).is_ok());
        headers.append(http::header::AUTHORIZATION, "Bearer another".parse().unwrap());
        assert_eq!(bearer_token(&headers), None);
        let refused = keys().authenticate_bearer(&headers).unwrap_err();
        assert_eq!(
            (refused.code, refused.message.as_ref()),
            ("unauthorized", "give one Authorization header, not several")
        );
    }
}
