//! The layers in an axum router: `Router::layer(AuthLayer)`,
//! `route_layer(RequireLayer)` with the `PathParam` tenant resolver, the
//! `Authenticated` extractor, and a hidden (404) cross-tenant answer.

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::*;
use guardrails_auth::extract::Authenticated;
use guardrails_auth::jwt::JwtVerifier;
use guardrails_auth::require::PathParam;
use guardrails_auth::{AuthLayer, RequireLayer};
use http::Request;
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

fn app() -> Router {
    let verifier = rsa_verifier();
    let tenant = RequireLayer::new()
        .scope("invoices:read")
        .unwrap()
        .tenant(PathParam::new("tenant"));
    let hidden = RequireLayer::new()
        .tenant(PathParam::new("org"))
        .hide_cross_tenant();
    Router::new()
        .route(
            "/v1/tenants/{tenant}/invoices",
            get(|Authenticated(p): Authenticated| async move { p.subject().to_owned() })
                .route_layer(tenant),
        )
        .route(
            "/v2/orgs/{org}/secrets",
            get(|| async { "secret" }).route_layer(hidden),
        )
        .route(
            "/me",
            get(|Authenticated(p): Authenticated| async move { p.subject().to_owned() }),
        )
        .route("/healthz", get(|| async { "ok" }))
        .layer(AuthLayer::new(verifier).public_path("/healthz"))
}

async fn get_status(uri: &str, token: Option<&str>) -> (u16, String) {
    let mut b = Request::get(uri);
    if let Some(t) = token {
        b = b.header("authorization", format!("Bearer {t}"));
    }
    let r = app().oneshot(b.body(Body::empty()).unwrap()).await.unwrap();
    let status = r.status().as_u16();
    let body = r.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn axum_router_with_route_layers() {
    let t = token_a(&claims(ISSUER_A));
    assert_eq!(
        get_status("/v1/tenants/acme/invoices", Some(&t)).await,
        (200, "alice".to_owned())
    );
    // Percent-encoded path parameters are decoded like axum decodes them.
    assert_eq!(
        get_status("/v1/tenants/ac%6De/invoices", Some(&t)).await.0,
        200
    );
    let (status, body) = get_status("/v1/tenants/globex/invoices", Some(&t)).await;
    assert_eq!(status, 403);
    assert!(body.contains("forbidden-tenant"));
    // Hidden: another tenant's resource looks like no resource.
    let (status, body) = get_status("/v2/orgs/globex/secrets", Some(&t)).await;
    assert_eq!(status, 404);
    assert!(body.contains("not-found"));
    assert_eq!(get_status("/v2/orgs/acme/secrets", Some(&t)).await.0, 200);
    assert_eq!(get_status("/me", Some(&t)).await, (200, "alice".to_owned()));
    assert_eq!(get_status("/me", None).await.0, 401);
    assert_eq!(get_status("/healthz", None).await.0, 200);
    let mut no_scope = claims(ISSUER_A);
    no_scope["scope"] = json!("");
    assert_eq!(
        get_status("/v1/tenants/acme/invoices", Some(&token_a(&no_scope)))
            .await
            .0,
        403
    );
}

#[test]
fn layers_are_clone_send_sync() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<AuthLayer<JwtVerifier>>();
    assert_traits::<RequireLayer>();
    assert_traits::<guardrails_auth::Auth<axum::routing::Route, JwtVerifier>>();
}
