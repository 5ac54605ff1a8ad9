//! Why a guard rejected a request, for the layers around it.
//!
//! A guard that answers with a problem inserts a [`Rejection`] into the
//! response extensions. An outer layer — typically audit — reads it to record
//! the decision without depending on the guard's crate. The `reason` is a
//! static, low-cardinality code (`token_expired`, `missing_scope`,
//! `body_too_large`…), safe as a metric label and never built from input.
//!
//! ```
//! use guardrails_core::{Problem, ProblemType, Rejection, RejectionCategory};
//!
//! // In a guard:
//! let mut response = Problem::new(ProblemType::INVALID_TOKEN).into_http_response::<bytes::Bytes>();
//! Rejection::new(RejectionCategory::Authentication, "token_expired", ProblemType::INVALID_TOKEN)
//!     .insert_into(response.extensions_mut());
//!
//! // In an outer layer:
//! let why = response.extensions().get::<Rejection>().unwrap();
//! assert_eq!(why.category(), RejectionCategory::Authentication);
//! assert_eq!(why.reason(), "token_expired");
//! ```

use std::fmt;

use crate::ProblemType;

/// The family of a rejection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectionCategory {
    /// No credential, or an invalid one (401, or 400 for a malformed request).
    Authentication,
    /// A valid principal that may not do this (403, or 404 when hidden).
    Authorization,
    /// Input that is malformed, too large, of the wrong type or invalid.
    Validation,
    /// The audit trail could not record the request.
    Audit,
    /// Anything else a guard rejects.
    Other,
}

impl RejectionCategory {
    /// A short name: `authentication`, `authorization`, `validation`, `audit`, `other`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authentication => "authentication",
            Self::Authorization => "authorization",
            Self::Validation => "validation",
            Self::Audit => "audit",
            Self::Other => "other",
        }
    }
}

impl fmt::Display for RejectionCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a request was rejected; see the [module documentation](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rejection {
    category: RejectionCategory,
    reason: &'static str,
    problem_type: ProblemType,
}

impl Rejection {
    /// A rejection of `category` for `reason`, answered with `problem_type`.
    pub const fn new(
        category: RejectionCategory,
        reason: &'static str,
        problem_type: ProblemType,
    ) -> Self {
        Self {
            category,
            reason,
            problem_type,
        }
    }

    /// The family of the rejection.
    pub const fn category(&self) -> RejectionCategory {
        self.category
    }

    /// The low-cardinality reason code.
    pub const fn reason(&self) -> &'static str {
        self.reason
    }

    /// The problem type the client was answered with.
    pub const fn problem_type(&self) -> ProblemType {
        self.problem_type
    }

    /// Inserts this rejection into `extensions` (of the rejection response).
    pub fn insert_into(self, extensions: &mut http::Extensions) {
        extensions.insert(self);
    }
}
