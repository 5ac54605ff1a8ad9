//! Compile-time proof that a guard built on `GuardBody` and `ResponseFuture`
//! fits `axum::Router::layer` and `route_layer`: the service is `Clone + Send +
//! Sync`, its future is `Send`, and `Infallible` passes through.

use std::task::{Context, Poll};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use guardrails_core::{GuardBody, Problem, ProblemType, ResponseFuture};
use http::{Request, Response};
use tower::{Layer, Service, ServiceExt};

#[derive(Clone, Debug)]
struct DenyAllLayer;

impl<S> Layer<S> for DenyAllLayer {
    type Service = DenyAll<S>;
    fn layer(&self, inner: S) -> Self::Service {
        DenyAll { inner }
    }
}

#[derive(Clone, Debug)]
struct DenyAll<S> {
    inner: S,
}

impl<S, B> Service<Request<Body>> for DenyAll<S>
where
    S: Service<Request<Body>, Response = Response<B>>,
{
    type Response = Response<GuardBody<B>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        if req.uri().path() == "/open" {
            ResponseFuture::inner(self.inner.call(req))
        } else {
            ResponseFuture::rejected(Problem::new(ProblemType::AUTHENTICATION_REQUIRED))
        }
    }
}

fn assert_send_sync_clone<T: Send + Sync + Clone>(_: &T) {}

#[tokio::test]
async fn fits_router_layer_and_route_layer() {
    let app: Router = Router::new()
        .route("/open", get(|| async { "open" }))
        .route("/closed", get(|| async { "closed" }))
        .route_layer(DenyAllLayer)
        .layer(DenyAllLayer);
    assert_send_sync_clone(&app);

    let open = app
        .clone()
        .oneshot(Request::get("/open").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(open.status(), 200);
    let closed = app
        .oneshot(Request::get("/closed").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(closed.status(), 401);
    assert_eq!(closed.headers()["content-type"], "application/problem+json");
}

#[test]
fn problem_is_an_axum_response() {
    use axum::response::IntoResponse;
    let response = Problem::new(ProblemType::NOT_FOUND).into_response();
    assert_eq!(response.status(), 404);
}
