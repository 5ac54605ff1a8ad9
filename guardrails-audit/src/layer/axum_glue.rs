//! axum glue: the [`RequestAudit`] extractor.

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use guardrails_core::{Principal, Problem, ProblemType};
use http::request::Parts;

use super::AuditContext;
use crate::event::{AuditEvent, Category};
use crate::pipeline::Delivery;

/// The request's [`AuditContext`] as an axum extractor, for domain events.
///
/// Extracting it also records the request's verified
/// [`Principal`] as the actor of the request's own event. Without an
/// [`AuditLayer`](crate::AuditLayer) in front, extraction fails closed with a
/// 503 `audit-unavailable` problem.
///
/// ```
/// use guardrails_audit::{Category, Outcome, RequestAudit};
/// use guardrails_core::{Problem, ProblemType};
///
/// async fn delete_invoice(audit: RequestAudit) -> Result<&'static str, Problem> {
///     // ... delete it ...
///     let event = audit
///         .event("invoice.delete", Category::DataWrite)
///         .with_outcome(Outcome::Success)
///         .with_target("invoice", "inv_42");
///     audit.record(event).await.map_err(|e| e.to_problem(audit.mode()))?;
///     Ok("deleted")
/// }
/// ```
#[derive(Clone, Debug)]
pub struct RequestAudit(pub AuditContext);

impl RequestAudit {
    /// A domain event pre-filled from the request; see [`AuditContext::event`].
    pub fn event(&self, action: &'static str, category: Category) -> AuditEvent {
        self.0.event(action, category)
    }

    /// Records a domain event; see [`AuditContext::record`].
    pub fn record(&self, event: AuditEvent) -> Delivery {
        self.0.record(event)
    }

    /// The route's delivery mode.
    pub fn mode(&self) -> crate::DeliveryMode {
        self.0.mode()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestAudit {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let context = parts
            .extensions
            .get::<AuditContext>()
            .cloned()
            .ok_or_else(|| {
                Problem::new(ProblemType::AUDIT_UNAVAILABLE)
                    .with_detail("the request cannot be processed without its audit trail")
            })?;
        if let Some(principal) = parts.extensions.get::<Principal>() {
            context.set_principal(principal);
        }
        Ok(Self(context))
    }
}

/// `Option<RequestAudit>`: `None` when no audit layer is in front (for
/// handlers that are also served unaudited, e.g. in tests); never fails.
impl<S: Send + Sync> OptionalFromRequestParts<S> for RequestAudit {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _state: &S,
    ) -> Result<Option<Self>, Self::Rejection> {
        let Some(context) = parts.extensions.get::<AuditContext>().cloned() else {
            return Ok(None);
        };
        if let Some(principal) = parts.extensions.get::<Principal>() {
            context.set_principal(principal);
        }
        Ok(Some(Self(context)))
    }
}
