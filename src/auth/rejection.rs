//! Why a token is refused before it reaches Cognito: the reasons and their
//! messages, a contract of the error model (`ErrorInfo.reason`). Apart from
//! the check so that the error model can name them without depending on it.

/// Why a token was refused before reaching Cognito.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// Not a JWT with an RS256 header and the claims of an access token.
    #[error("{}", self.message())]
    Malformed,
    /// `exp` passed by more than the leeway.
    #[error("{}", self.message())]
    Expired,
    /// `token_use` is not `access` (an ID token, say).
    #[error("{}", self.message())]
    NotAnAccessToken,
    /// `scope` lacks `aws.cognito.signin.user.admin`.
    #[error("{}", self.message())]
    MissingScope,
    /// Not a Cognito user pool's issuer, or not an allowed pool.
    #[error("{}", self.message())]
    IssuerNotAllowed,
    /// The signature does not verify against the pool's keys.
    #[error("{}", self.message())]
    BadSignature,
    /// The token names a user pool that does not exist: its key set is not
    /// found.
    #[error("{}", self.message())]
    UnknownPool,
}

impl TokenRejection {
    /// The machine-readable reason (a contract: `ErrorInfo.reason`).
    pub fn reason(self) -> &'static str {
        match self {
            Self::Malformed => "MALFORMED_TOKEN",
            Self::Expired => "TOKEN_EXPIRED",
            Self::NotAnAccessToken => "NOT_AN_ACCESS_TOKEN",
            Self::MissingScope => "MISSING_SCOPE",
            Self::IssuerNotAllowed => "ISSUER_NOT_ALLOWED",
            Self::BadSignature => "BAD_SIGNATURE",
            Self::UnknownPool => "UNKNOWN_USER_POOL",
        }
    }

    /// What is wrong, for the caller. Never contains the token.
    pub fn message(self) -> &'static str {
        match self {
            Self::Malformed => {
                "the access token is not a Cognito access token: expected a JWT with an RS256 \
                 header and string claims sub, iss and token_use and a numeric exp"
            }
            Self::Expired => "the access token has expired; refresh it and retry",
            Self::NotAnAccessToken => {
                "the token is not an access token (token_use is not \"access\"); send the \
                 user's access token, not the ID token"
            }
            Self::MissingScope => {
                "the access token lacks the scope aws.cognito.signin.user.admin; sign the user \
                 in through an app client that grants it"
            }
            Self::IssuerNotAllowed => {
                "the access token was not issued by a user pool this service accepts"
            }
            Self::BadSignature => {
                "the access token's signature does not match its user pool's signing keys"
            }
            Self::UnknownPool => {
                "the access token names a user pool that does not exist (its signing keys are not found)"
            }
        }
    }
}
