//! Everything that can go wrong in `auth`, mapped to HTTP in one place.
use http::StatusCode;
use shared::ApiError;

#[derive(Debug)]
pub enum AuthError {
    /// Already an API answer (bad input, missing token, ...).
    Api(ApiError),
    UsernameTaken,
    InvalidCredentials,
    InvalidRefreshToken,
    /// A password change named a current password that is not the user's.
    WrongPassword,
    /// A password change whose new password is the current one it gave.
    SamePassword,
    /// The grant the endpoint serves: `password` (log-in) or `refresh_token`.
    UnsupportedGrantType {
        expected: &'static str,
    },
    Throttled {
        retry_after_seconds: u32,
    },
    UserNotFound,
    /// Boxed: Postgres errors carry every field of the server's report.
    Database(Box<spin_sdk::pg::Error>),
    Redis(spin_sdk::redis::Error),
    Hashing(bcrypt::BcryptError),
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Api(api_error) => api_error,
            AuthError::UsernameTaken => ApiError::conflict("username_taken", "that username is taken or reserved"),
            AuthError::InvalidCredentials => {
                ApiError::new(StatusCode::UNAUTHORIZED, "invalid_credentials", "incorrect username or password")
            }
            AuthError::InvalidRefreshToken => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_refresh_token",
                "the refresh token is invalid, expired or revoked",
            ),
            AuthError::WrongPassword => {
                ApiError::new(StatusCode::FORBIDDEN, "wrong_password", "the current password is not right")
            }
            AuthError::SamePassword => {
                ApiError::unprocessable("same_password", "the new password must differ from the current one")
            }
            AuthError::UnsupportedGrantType { expected } => {
                ApiError::bad_request("unsupported_grant_type", format!("grant_type must be \"{expected}\""))
            }
            AuthError::Throttled { retry_after_seconds } => ApiError::too_many_requests(retry_after_seconds),
            AuthError::UserNotFound => ApiError::not_found("no such user"),
            AuthError::Database(error) => shared::db::failure(*error),
            AuthError::Redis(error) => shared::redis::failure(error),
            AuthError::Hashing(error) => ApiError::internal(format!("bcrypt: {error}")),
        }
    }
}

impl From<ApiError> for AuthError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl From<spin_sdk::pg::Error> for AuthError {
    fn from(error: spin_sdk::pg::Error) -> Self {
        Self::Database(Box::new(error))
    }
}

impl From<spin_sdk::redis::Error> for AuthError {
    fn from(error: spin_sdk::redis::Error) -> Self {
        Self::Redis(error)
    }
}

impl From<bcrypt::BcryptError> for AuthError {
    fn from(error: bcrypt::BcryptError) -> Self {
        Self::Hashing(error)
    }
}
