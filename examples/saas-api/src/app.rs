//! The router: every route of the API and the layers around it.

use axum::Router;
use axum::handler::Handler;
use axum::routing::get;
use guardrails_auth::AuthLayer;
use guardrails_auth::jwt::JwtVerifier;
use tower::ServiceBuilder;

use crate::auth;
use crate::invoices::{self, Store};

/// Builds the application router.
///
/// `GET /healthz` and `GET /metrics` are public. Everything else, unknown
/// paths included, is behind `auth` (deny by default, see
/// [`crate::auth::layer`]); the invoice routes add their per-route
/// requirements ([`invoice_routes`]).
pub fn router(store: Store, auth: AuthLayer<JwtVerifier>) -> Router {
    routes(store).layer(
        // One stack in one `Router::layer` (outermost first): axum boxes
        // the route once per `layer` call, so a stack costs one box per
        // request, not one per guard.
        ServiceBuilder::new()
            // Authentication: outside the routes, inside the audit layer.
            .layer(auth)
            // Copies the verified principal into the request's audit context,
            // so the audit record names the actor (also of the requirements'
            // 403s).
            .layer(guardrails_audit::CapturePrincipalLayer)
            // Every plain-text 4xx of axum (404, 405, extractor rejections)
            // answers problem+json, like the guardrails do.
            .layer(guardrails_validate::ProblemJsonLayer::new()),
    )
}

/// [`router`] with the audit trail as the outermost layer, so that every
/// request is recorded, the guards' rejections included (see
/// [`crate::audit`]).
pub fn audited_router(
    store: Store,
    auditor: guardrails_audit::Auditor,
    auth: AuthLayer<JwtVerifier>,
) -> Router {
    router_with_audit_layer(store, crate::audit::layer(auditor), auth)
}

/// [`audited_router`] with another audit layer than [`crate::audit::layer`]
/// (benches take their audit apart with it).
pub fn router_with_audit_layer(
    store: Store,
    audit: guardrails_audit::AuditLayer,
    auth: AuthLayer<JwtVerifier>,
) -> Router {
    routes(store).layer(
        ServiceBuilder::new()
            .layer(audit)
            .layer(auth)
            .layer(guardrails_audit::CapturePrincipalLayer)
            .layer(guardrails_validate::ProblemJsonLayer::new()),
    )
}

/// Every route, without the guard stack.
fn routes(store: Store) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(crate::metrics::render))
        .merge(invoice_routes(store))
}

/// The tenant-scoped invoice routes with their per-route requirements
/// ([`auth::read`], [`auth::write`], [`auth::admin`]: scope or role, and the
/// tenant boundary), but without authentication.
///
/// [`router`] puts authentication and audit around them; this function
/// exists so tests can reach the handlers with a `Principal` of their own.
pub fn invoice_routes(store: Store) -> Router {
    Router::new()
        .route(
            "/v1/tenants/{tenant}/invoices",
            get(invoices::list.layer(auth::read())).post(invoices::create.layer(auth::write())),
        )
        .route(
            "/v1/tenants/{tenant}/invoices/{id}",
            get(invoices::get.layer(auth::read())).delete(invoices::delete.layer(auth::admin())),
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
    use std::time::Duration;
    use tower::ServiceExt;

    #[tokio::test]
    async fn healthz_answers_ok() {
        let response = router(Store::default(), auth::development_layer().unwrap())
            .oneshot(Request::get("/healthz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
    }

    fn token(tenant: &str, scope: &str, roles: &[&str]) -> String {
        auth::development_token(&auth::TokenArgs {
            sub: "alice".into(),
            tenant: tenant.into(),
            scope: scope.into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            ttl: 600,
        })
        .unwrap()
    }

    async fn status(method: &str, uri: &str, token: Option<&str>) -> (u16, Option<String>) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            request = request.header("authorization", format!("Bearer {t}"));
        }
        let response = router(Store::default(), auth::development_layer().unwrap())
            .oneshot(request.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let problem_type = response
            .headers()
            .get("content-type")
            .filter(|v| *v == "application/problem+json")
            .map(|_| ());
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let problem = problem_type.and_then(|()| {
            serde_json::from_slice::<serde_json::Value>(&body).ok()?["type"]
                .as_str()
                .map(str::to_owned)
        });
        (status, problem)
    }

    #[tokio::test]
    async fn invoice_routes_enforce_the_contract() {
        let read = token("acme", "invoices:read", &[]);
        let write = token("acme", "invoices:write", &[]);
        let admin = token("acme", "", &["admin"]);
        let t = |s: &str| Some(format!("tag:guardrails.rs,2026:problem/{s}"));
        let rows = [
            (
                "GET",
                "/v1/tenants/acme/invoices",
                None,
                401,
                t("authentication-required"),
            ),
            ("GET", "/nowhere", None, 401, t("authentication-required")),
            ("GET", "/v1/tenants/acme/invoices", Some(&read), 200, None),
            (
                "GET",
                "/v1/tenants/globex/invoices",
                Some(&read),
                403,
                t("forbidden-tenant"),
            ),
            (
                "GET",
                "/v1/tenants/acme/invoices",
                Some(&write),
                403,
                t("insufficient-scope"),
            ),
            (
                "GET",
                "/v1/tenants/acme/invoices/0193c3a0-7c1e-7b2a-9d3e-5f6a7b8c9d0e",
                Some(&read),
                404,
                t("not-found"),
            ),
            (
                "POST",
                "/v1/tenants/acme/invoices",
                Some(&read),
                403,
                t("insufficient-scope"),
            ),
            (
                "DELETE",
                "/v1/tenants/acme/invoices/0193c3a0-7c1e-7b2a-9d3e-5f6a7b8c9d0e",
                Some(&read),
                403,
                t("forbidden"),
            ),
            (
                "DELETE",
                "/v1/tenants/globex/invoices/0193c3a0-7c1e-7b2a-9d3e-5f6a7b8c9d0e",
                Some(&admin),
                403,
                t("forbidden-tenant"),
            ),
            ("GET", "/nowhere", Some(&read), 404, t("not-found")),
            ("GET", "/healthz", None, 200, None),
        ];
        for (method, uri, token, want_status, want_type) in rows {
            let got = status(method, uri, token.map(String::as_str)).await;
            assert_eq!(got, (want_status, want_type), "{method} {uri}");
        }
    }

    /// A sink that writes every batch but one holding a successful
    /// `invoice.delete` domain event, which it fails after the given delay:
    /// the strict attempt record is durable, the event after the deletion is
    /// not.
    struct LosesDomainEvents(guardrails_audit::sink::MemorySink, Duration);

    impl guardrails_audit::sink::AuditSink for LosesDomainEvents {
        fn name(&self) -> &'static str {
            "loses-domain-events"
        }

        fn write_batch<'a>(
            &'a mut self,
            batch: &'a [guardrails_audit::AuditEvent],
        ) -> guardrails_audit::sink::SinkFuture<'a, guardrails_audit::sink::WriteReceipt> {
            if batch.iter().any(|e| {
                e.action() == "invoice.delete" && e.outcome() == guardrails_audit::Outcome::Success
            }) {
                let delay = self.1;
                return Box::pin(async move {
                    tokio::time::sleep(delay).await;
                    Err(guardrails_audit::sink::SinkError::Unavailable("disk gone"))
                });
            }
            self.0.write_batch(batch)
        }
    }

    /// An admin's `DELETE` of `invoice`.
    fn admin_delete(invoice: &invoices::Invoice) -> Request<Body> {
        let admin = token("acme", "", &["admin"]);
        Request::delete(format!("/v1/tenants/acme/invoices/{}", invoice.id))
            .header("authorization", format!("Bearer {admin}"))
            .body(Body::empty())
            .unwrap()
    }

    fn one_invoice(store: &Store) -> invoices::Invoice {
        store.create(
            "acme",
            serde_json::from_value(serde_json::json!({
                "customer_email": "billing@example.com",
                "currency": "EUR",
                "due_date": "2026-12-31",
                "lines": [{"description": "Seats", "quantity": 1, "unit_price_cents": 100}]
            }))
            .unwrap(),
        )
    }

    #[tokio::test]
    async fn a_deletion_whose_event_cannot_be_written_is_undone() {
        let memory = guardrails_audit::sink::MemorySink::new();
        let (auditor, guard) = guardrails_audit::AuditPipeline::builder()
            .spawn(LosesDomainEvents(memory.clone(), Duration::ZERO))
            .unwrap();
        let store = Store::default();
        let invoice = one_invoice(&store);
        let app = audited_router(store.clone(), auditor, auth::development_layer().unwrap());
        let response = app.oneshot(admin_delete(&invoice)).await.unwrap();
        // Not processed, as the answer says: the invoice is still there.
        assert_eq!(response.status(), 503);
        assert_eq!(store.get("acme", &invoice.id), Some(invoice));
        let _ = guard.shutdown(Duration::from_secs(5)).await;
        let events = memory.events();
        // The attempt was recorded before the handler ran…
        assert!(events.iter().any(
            |e| e.action() == "http.request" && e.stage() == guardrails_audit::Stage::Received
        ));
        // …and the undoing after it.
        assert!(events.iter().any(|e| e.action() == "invoice.delete"
            && e.outcome() == guardrails_audit::Outcome::Failure
            && e.reason() == Some("reverted")));
    }

    #[tokio::test]
    async fn a_deletion_cancelled_while_its_event_is_pending_is_still_undone() {
        let memory = guardrails_audit::sink::MemorySink::new();
        let (auditor, guard) = guardrails_audit::AuditPipeline::builder()
            .spawn(LosesDomainEvents(
                memory.clone(),
                Duration::from_millis(1500),
            ))
            .unwrap();
        let store = Store::default();
        let invoice = one_invoice(&store);
        let app = audited_router(store.clone(), auditor, auth::development_layer().unwrap());
        let request = admin_delete(&invoice);
        // The request is dropped while the deletion's event is pending (a
        // client that went away, or the shutdown's drain time running out):
        // its handler's future is dropped with it.
        let gave_up = tokio::time::timeout(Duration::from_millis(100), app.oneshot(request)).await;
        assert!(gave_up.is_err(), "answered before the event failed");
        assert_eq!(store.get("acme", &invoice.id), None, "not deleted yet");
        // The event fails; the deletion is undone all the same.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while store.get("acme", &invoice.id).is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the cancelled deletion was never undone"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(store.get("acme", &invoice.id), Some(invoice));
        let _ = guard.shutdown(Duration::from_secs(5)).await;
        assert!(
            memory
                .events()
                .iter()
                .any(|e| e.action() == "invoice.delete"
                    && e.outcome() == guardrails_audit::Outcome::Failure
                    && e.reason() == Some("reverted"))
        );
    }

    /// Served without the audit layer (`router`), a deletion cannot be
    /// audited: it is refused before anything is deleted.
    #[tokio::test]
    async fn without_the_audit_layer_nothing_is_deleted() {
        let store = Store::default();
        let invoice = one_invoice(&store);
        let response = router(store.clone(), auth::development_layer().unwrap())
            .oneshot(admin_delete(&invoice))
            .await
            .unwrap();
        assert_eq!(response.status(), 503);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            problem["type"]
                .as_str()
                .unwrap()
                .ends_with("/audit-unavailable"),
            "{problem}"
        );
        assert_eq!(store.get("acme", &invoice.id), Some(invoice));
    }
}
