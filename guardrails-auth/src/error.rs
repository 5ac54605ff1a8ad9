//! Why authentication or authorization failed.
//!
//! [`AuthError`] is the typed reason of every rejection of this crate. Each
//! variant maps to a stable, low-cardinality [`reason`](AuthError::reason)
//! code (safe as a metric label), an HTTP status, an RFC 9457 problem type and
//! an RFC 6750 `error` code. None of them ever carries the credential.
//!
//! ```
//! use guardrails_auth::AuthError;
//!
//! let error = AuthError::Expired;
//! assert_eq!(error.reason(), "token_expired");
//! assert_eq!(error.status(), http::StatusCode::UNAUTHORIZED);
//! assert_eq!(error.bearer_error(), Some("invalid_token"));
//! ```

use guardrails_core::{ProblemType, RejectionCategory};
use http::StatusCode;

/// The reason a request was not authenticated or not authorized.
///
/// See the [module documentation](self).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// The request carries no credential and the route is not public.
    #[error("no credential")]
    Missing,
    /// More than one credential header (for example two `Authorization` headers).
    #[error("more than one credential")]
    MultipleCredentials,
    /// The credential is not well formed: the `Authorization` header is not
    /// `Bearer <token68>`, or a header, cookie or query value is not a token68.
    #[error("malformed credential")]
    MalformedCredential,
    /// The credential is longer than the configured cap.
    #[error("credential too large")]
    TooLarge,
    /// The credential was sent in the query string, which is not allowed.
    #[error("credential in the query string")]
    CredentialInQuery,
    /// The token is not a compact JWS (three base64url segments).
    #[error("malformed token")]
    Malformed,
    /// The JOSE header is not valid JSON or has a member of the wrong type.
    #[error("malformed token header")]
    MalformedHeader,
    /// The payload is not a JSON object.
    #[error("malformed token claims")]
    MalformedClaims,
    /// A claim name appears twice in the payload.
    #[error("duplicate claim")]
    DuplicateClaim,
    /// The header names `none` (any case) as algorithm.
    #[error("unsigned token")]
    AlgNone,
    /// The algorithm is not allowed for this issuer or key.
    #[error("algorithm not allowed")]
    AlgorithmNotAllowed,
    /// The header's `alg` differs from the key's `alg`, or the key type does not fit.
    #[error("algorithm does not match the key")]
    AlgorithmKeyMismatch,
    /// The header lists a critical extension this verifier does not understand.
    #[error("unsupported critical header")]
    UnsupportedCritical,
    /// The header carries `jku`, `x5u`, `jwk` or `x5c`: keys are never taken from a token.
    #[error("key reference in the token header")]
    EmbeddedKey,
    /// `kid` is too long or has characters outside the allowed set.
    #[error("invalid key id")]
    InvalidKid,
    /// No trusted key has this `kid` (or no `kid` and several candidate keys).
    #[error("unknown key")]
    UnknownKey,
    /// The `typ` header is not the expected one.
    #[error("unexpected token type")]
    WrongType,
    /// The signature does not verify.
    #[error("invalid signature")]
    BadSignature,
    /// `exp` is in the past.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// `iat` is in the future.
    #[error("token issued in the future")]
    IssuedInFuture,
    /// A required claim is missing or has the wrong type.
    #[error("missing required claim")]
    MissingClaim,
    /// A claim has the wrong type.
    #[error("invalid claim")]
    InvalidClaim,
    /// `iss` is not a trusted issuer.
    #[error("untrusted issuer")]
    UntrustedIssuer,
    /// `aud` does not name this service.
    #[error("wrong audience")]
    WrongAudience,
    /// The API key does not have the expected format or checksum.
    #[error("malformed API key")]
    MalformedApiKey,
    /// The API key is unknown, or its secret does not match.
    #[error("unknown API key")]
    UnknownApiKey,
    /// The API key expired.
    #[error("API key expired")]
    ApiKeyExpired,
    /// The API key was revoked.
    #[error("API key revoked")]
    ApiKeyRevoked,
    /// The credential kind is not accepted here (for example an API key where only JWTs are).
    #[error("unsupported credential")]
    UnsupportedCredential,
    /// Keys could not be obtained (JWKS endpoint down and nothing cached).
    #[error("keys unavailable")]
    KeysUnavailable,
    /// The API key store failed.
    #[error("credential store unavailable")]
    StoreUnavailable,
    /// The principal lacks a required scope.
    #[error("insufficient scope")]
    InsufficientScope,
    /// The principal lacks a required role.
    #[error("missing role")]
    MissingRole,
    /// A custom requirement refused the principal.
    #[error("requirement not met")]
    RequirementFailed,
    /// The principal's tenant is not the resource's tenant.
    #[error("cross-tenant access")]
    CrossTenant,
    /// The tenant of the resource could not be determined.
    #[error("tenant unknown")]
    TenantUnresolved,
    /// A route requires a principal but none was established (anonymous in
    /// optional mode, or no authentication layer in front).
    #[error("not authenticated")]
    Unauthenticated,
}

impl AuthError {
    /// A static, low-cardinality code for metrics, logs and audit records.
    pub const fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing_credential",
            Self::MultipleCredentials => "multiple_credentials",
            Self::MalformedCredential => "malformed_credential",
            Self::TooLarge => "credential_too_large",
            Self::CredentialInQuery => "credential_in_query",
            Self::Malformed => "malformed_token",
            Self::MalformedHeader => "malformed_header",
            Self::MalformedClaims => "malformed_claims",
            Self::DuplicateClaim => "duplicate_claim",
            Self::AlgNone => "alg_none",
            Self::AlgorithmNotAllowed => "alg_not_allowed",
            Self::AlgorithmKeyMismatch => "alg_key_mismatch",
            Self::UnsupportedCritical => "unsupported_crit",
            Self::EmbeddedKey => "embedded_key",
            Self::InvalidKid => "invalid_kid",
            Self::UnknownKey => "unknown_kid",
            Self::WrongType => "wrong_typ",
            Self::BadSignature => "bad_signature",
            Self::Expired => "token_expired",
            Self::NotYetValid => "token_not_yet_valid",
            Self::IssuedInFuture => "iat_in_future",
            Self::MissingClaim => "missing_claim",
            Self::InvalidClaim => "invalid_claim",
            Self::UntrustedIssuer => "untrusted_issuer",
            Self::WrongAudience => "wrong_audience",
            Self::MalformedApiKey => "malformed_api_key",
            Self::UnknownApiKey => "unknown_api_key",
            Self::ApiKeyExpired => "api_key_expired",
            Self::ApiKeyRevoked => "api_key_revoked",
            Self::UnsupportedCredential => "unsupported_credential",
            Self::KeysUnavailable => "keys_unavailable",
            Self::StoreUnavailable => "store_unavailable",
            Self::InsufficientScope => "missing_scope",
            Self::MissingRole => "missing_role",
            Self::RequirementFailed => "requirement_failed",
            Self::CrossTenant => "cross_tenant",
            Self::TenantUnresolved => "tenant_unresolved",
            Self::Unauthenticated => "unauthenticated",
        }
    }

    /// Whether this is an authorization failure (a valid principal that may not
    /// do this) rather than an authentication failure.
    pub const fn is_authorization(&self) -> bool {
        matches!(
            self,
            Self::InsufficientScope
                | Self::MissingRole
                | Self::RequirementFailed
                | Self::CrossTenant
                | Self::TenantUnresolved
        )
    }

    /// The rejection family, for [`guardrails_core::Rejection`].
    pub const fn category(&self) -> RejectionCategory {
        if self.is_authorization() {
            RejectionCategory::Authorization
        } else {
            RejectionCategory::Authentication
        }
    }

    /// The problem type of the response.
    pub const fn problem_type(&self) -> ProblemType {
        match self {
            Self::Missing | Self::Unauthenticated => ProblemType::AUTHENTICATION_REQUIRED,
            Self::MultipleCredentials | Self::MalformedCredential | Self::CredentialInQuery => {
                ProblemType::INVALID_REQUEST
            }
            Self::KeysUnavailable | Self::StoreUnavailable => ProblemType::SERVICE_UNAVAILABLE,
            Self::InsufficientScope => ProblemType::INSUFFICIENT_SCOPE,
            Self::MissingRole | Self::RequirementFailed | Self::TenantUnresolved => {
                ProblemType::FORBIDDEN
            }
            Self::CrossTenant => ProblemType::FORBIDDEN_TENANT,
            _ => ProblemType::INVALID_TOKEN,
        }
    }

    /// The HTTP status of the response.
    pub const fn status(&self) -> StatusCode {
        self.problem_type().status()
    }

    /// The RFC 6750 `error` code for `WWW-Authenticate`, if one applies.
    ///
    /// `None` for a missing credential (RFC 6750 section 3.1: no error code
    /// when the request lacks authentication information) and for server-side
    /// failures.
    pub const fn bearer_error(&self) -> Option<&'static str> {
        match self {
            Self::Missing | Self::Unauthenticated => None,
            Self::KeysUnavailable | Self::StoreUnavailable => None,
            Self::MultipleCredentials | Self::MalformedCredential | Self::CredentialInQuery => {
                Some("invalid_request")
            }
            Self::InsufficientScope => Some("insufficient_scope"),
            Self::MissingRole
            | Self::RequirementFailed
            | Self::CrossTenant
            | Self::TenantUnresolved => None,
            _ => Some("invalid_token"),
        }
    }

    /// A short, fixed description for the problem's `detail`. Never includes input.
    pub const fn detail(&self) -> &'static str {
        match self {
            Self::Missing => "the request carries no credential",
            Self::Unauthenticated => "the route requires an authenticated principal",
            Self::MultipleCredentials => "the request carries more than one credential",
            Self::MalformedCredential => {
                "the credential is malformed (expected a Bearer token or token68 value)"
            }
            Self::TooLarge => "the credential is too large",
            Self::CredentialInQuery => "credentials are not accepted in the query string",
            Self::Malformed => "the token is not a compact JWS",
            Self::MalformedHeader => "the token header is malformed",
            Self::MalformedClaims => "the token claims are malformed",
            Self::DuplicateClaim => "the token has a duplicate claim",
            Self::AlgNone => "unsigned tokens are not accepted",
            Self::AlgorithmNotAllowed => "the token algorithm is not allowed",
            Self::AlgorithmKeyMismatch => "the token algorithm does not match the key",
            Self::UnsupportedCritical => "the token has an unsupported critical header",
            Self::EmbeddedKey => "keys referenced by the token header are not trusted",
            Self::InvalidKid => "the token key id is invalid",
            Self::UnknownKey => "the token was not signed by a trusted key",
            Self::WrongType => "the token type is not accepted",
            Self::BadSignature => "the token signature is invalid",
            Self::Expired => "the token has expired",
            Self::NotYetValid => "the token is not valid yet",
            Self::IssuedInFuture => "the token was issued in the future",
            Self::MissingClaim => "the token lacks a required claim",
            Self::InvalidClaim => "a token claim has the wrong type",
            Self::UntrustedIssuer => "the token issuer is not trusted",
            Self::WrongAudience => "the token is not meant for this service",
            Self::MalformedApiKey => "the API key is malformed",
            Self::UnknownApiKey => "the API key is not valid",
            Self::ApiKeyExpired => "the API key has expired",
            Self::ApiKeyRevoked => "the API key has been revoked",
            Self::UnsupportedCredential => "this kind of credential is not accepted",
            Self::KeysUnavailable => "verification keys are unavailable",
            Self::StoreUnavailable => "the credential store is unavailable",
            Self::InsufficientScope => "the token lacks a required scope",
            Self::MissingRole => "the principal lacks a required role",
            Self::RequirementFailed => "the principal may not access this resource",
            Self::CrossTenant => "the resource belongs to another tenant",
            Self::TenantUnresolved => "the resource tenant could not be determined",
        }
    }

    /// Every variant, for exhaustive tests.
    pub const ALL: &'static [AuthError] = &[
        Self::Missing,
        Self::MultipleCredentials,
        Self::MalformedCredential,
        Self::TooLarge,
        Self::CredentialInQuery,
        Self::Malformed,
        Self::MalformedHeader,
        Self::MalformedClaims,
        Self::DuplicateClaim,
        Self::AlgNone,
        Self::AlgorithmNotAllowed,
        Self::AlgorithmKeyMismatch,
        Self::UnsupportedCritical,
        Self::EmbeddedKey,
        Self::InvalidKid,
        Self::UnknownKey,
        Self::WrongType,
        Self::BadSignature,
        Self::Expired,
        Self::NotYetValid,
        Self::IssuedInFuture,
        Self::MissingClaim,
        Self::InvalidClaim,
        Self::UntrustedIssuer,
        Self::WrongAudience,
        Self::MalformedApiKey,
        Self::UnknownApiKey,
        Self::ApiKeyExpired,
        Self::ApiKeyRevoked,
        Self::UnsupportedCredential,
        Self::KeysUnavailable,
        Self::StoreUnavailable,
        Self::InsufficientScope,
        Self::MissingRole,
        Self::RequirementFailed,
        Self::CrossTenant,
        Self::TenantUnresolved,
        Self::Unauthenticated,
    ];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_unique_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for e in AuthError::ALL {
            assert!(seen.insert(e.reason()), "{e:?}");
            assert!(
                e.reason()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{e:?}"
            );
            assert!(!e.detail().is_empty());
        }
    }

    #[test]
    fn statuses_follow_rfc_6750() {
        assert_eq!(AuthError::Missing.status(), 401);
        assert_eq!(AuthError::Missing.bearer_error(), None);
        assert_eq!(AuthError::MultipleCredentials.status(), 400);
        assert_eq!(AuthError::BadSignature.status(), 401);
        assert_eq!(AuthError::InsufficientScope.status(), 403);
        assert_eq!(
            AuthError::InsufficientScope.bearer_error(),
            Some("insufficient_scope")
        );
        assert_eq!(AuthError::CrossTenant.status(), 403);
        assert_eq!(AuthError::KeysUnavailable.status(), 503);
    }
}
