//! The router: every route of the API and the layers around it.

use axum::Router;
use axum::routing::get;

use crate::invoices::{self, Store};

/// Builds the application router.
///
/// `GET /healthz` and `GET /metrics` are public.
/// Only public routes are mounted until authentication protects the rest:
/// the invoice routes ([`invoice_routes`]) are never served unauthenticated.
pub fn router(_store: Store) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(crate::metrics::render))
        // Every plain-text 4xx of axum (404, 405, extractor rejections)
        // answers problem+json, like the guardrails do.
        .layer(guardrails_validate::ProblemJsonLayer::new())
}

/// [`router`] with the audit trail as the outermost layer, so that every
/// request is recorded, the guards' rejections included (see
/// [`crate::audit`]).
pub fn audited_router(store: Store, auditor: guardrails_audit::Auditor) -> Router {
    router(store).layer(crate::audit::layer(auditor))
}

/// The tenant-scoped invoice routes, without any guard.
///
/// Every guard (authentication, tenant boundary, validation, audit) is
/// applied by [`router`]; this function exists so tests can reach the
/// handlers with a `Principal` of their own.
pub fn invoice_routes(store: Store) -> Router {
    Router::new()
        .route(
            "/v1/tenants/{tenant}/invoices",
            get(invoices::list).post(invoices::create),
        )
        .route(
            "/v1/tenants/{tenant}/invoices/{id}",
            get(invoices::get).delete(invoices::delete),
        )
        // Limits for the validated bodies (`Valid<Json<_>>` reads them).
        .layer(axum::Extension(invoices::body_limits()))
        .with_state(store)
}

/// `GET /healthz`: public liveness probe.
async fn healthz() -> &'static str {
    "ok"
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn healthz_answers_ok() {
        let response = router(Store::default())
            .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
    }

    #[tokio::test]
    async fn invoice_routes_are_not_served_without_authentication() {
        let response = router(Store::default())
            .oneshot(
                Request::get("/v1/tenants/acme/invoices")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_ne!(response.status(), 200);
    }
}
