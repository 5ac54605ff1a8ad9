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

/// Inside `Router::nest` a route layer sees the path without the prefix,
/// while `MatchedPath` has it: the tenant must still be the route's
/// `{tenant}`, never another segment at its position.
#[tokio::test]
async fn nested_routes_check_the_routes_own_tenant() {
    use axum::extract::Path;
    let inner = Router::new()
        .route(
            "/v1/tenants/{tenant}/invoices/{id}",
            get(|Path((tenant, _)): Path<(String, String)>| async move { tenant })
                .route_layer(RequireLayer::new().tenant(PathParam::new("tenant"))),
        )
        .route(
            "/t/{tenant}/{doc}",
            get(|Path((tenant, _)): Path<(String, String)>| async move { tenant })
                .route_layer(RequireLayer::new().tenant(PathParam::new("tenant"))),
        )
        .route(
            "/files/{tenant}/{*rest}",
            get(|Path((tenant, _)): Path<(String, String)>| async move { tenant })
                .route_layer(RequireLayer::new().tenant(PathParam::new("tenant"))),
        );
    let app = Router::new()
        .nest("/api/v2", inner.clone())
        .nest("/x", inner)
        .layer(AuthLayer::new(rsa_verifier()));
    let t = token_a(&claims(ISSUER_A)); // tenant acme
    let get = |uri: &'static str| {
        let app = app.clone();
        let t = t.clone();
        async move {
            let request = Request::get(uri)
                .header("authorization", format!("Bearer {t}"))
                .body(Body::empty())
                .unwrap();
            let response = app.oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    assert_eq!(
        get("/api/v2/v1/tenants/acme/invoices/7").await,
        (200, "acme".to_owned())
    );
    assert_eq!(get("/x/t/acme/doc").await, (200, "acme".to_owned()));
    // The attacker's own tenant where the stripped path has `{tenant}`'s
    // position: another tenant's data behind it.
    assert_eq!(get("/api/v2/v1/tenants/globex/invoices/acme").await.0, 403);
    assert_eq!(get("/x/t/globex/acme").await.0, 403);
    // Up to a wildcard the route still lines up.
    assert_eq!(get("/x/files/acme/a/b/c").await, (200, "acme".to_owned()));
    assert_eq!(get("/x/files/globex/acme").await.0, 403);
}

#[test]
fn layers_are_clone_send_sync() {
    fn assert_traits<T: Clone + Send + Sync + 'static>() {}
    assert_traits::<AuthLayer<JwtVerifier>>();
    assert_traits::<RequireLayer>();
    assert_traits::<guardrails_auth::Auth<axum::routing::Route, JwtVerifier>>();
}

/// The extractor's 401 on a request the layer let through without a
/// principal is the layer's own: its realm and its responder.
#[tokio::test]
async fn the_extractor_answers_like_the_layer() {
    use guardrails_auth::respond::GrpcResponder;
    let me = || get(|Authenticated(p): Authenticated| async move { p.subject().to_owned() });
    let send = |app: Router, uri: &'static str| async move {
        let request = Request::get(uri).body(Body::empty()).unwrap();
        app.oneshot(request).await.unwrap()
    };

    let optional = AuthLayer::new(rsa_verifier())
        .optional()
        .realm("billing")
        .unwrap();
    let app = Router::new().route("/me", me()).layer(optional);
    let response = send(app, "/me").await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="billing""#
    );
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let why = response
        .extensions()
        .get::<guardrails_core::Rejection>()
        .unwrap();
    assert_eq!(why.reason(), "unauthenticated");

    // A public path, and a gRPC responder.
    let grpc = AuthLayer::new(rsa_verifier())
        .public_path("/me")
        .responder(GrpcResponder);
    let app = Router::new().route("/me", me()).layer(grpc);
    let response = send(app, "/me").await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "16");
    assert_eq!(response.headers()["content-type"], "application/grpc");

    // Nested layers: the innermost that let the request through answers.
    let outer = AuthLayer::new(rsa_verifier())
        .public_path("/me")
        .realm("outer")
        .unwrap();
    let inner = AuthLayer::new(rsa_verifier())
        .optional()
        .realm("inner")
        .unwrap();
    let app = Router::new().route("/me", me()).layer(inner).layer(outer);
    let response = send(app, "/me").await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="inner""#
    );

    // No layer in front: a problem document in realm "api".
    let response = send(Router::new().route("/me", me()), "/me").await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["www-authenticate"],
        r#"Bearer realm="api""#
    );
}
