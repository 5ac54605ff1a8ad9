//! `GuardBody` and `ResponseFuture` inside a real tower stack.

use std::convert::Infallible;
use std::task::{Context, Poll};

use bytes::Bytes;
use guardrails_core::{
    GuardBody, Problem, ProblemType, Rejection, RejectionCategory, ResponseFuture,
};
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use tower::{Layer, Service, ServiceBuilder, ServiceExt, service_fn};

/// A minimal guard: requests need an `x-allowed: yes` header.
#[derive(Clone, Debug)]
struct RequireHeaderLayer;

impl<S> Layer<S> for RequireHeaderLayer {
    type Service = RequireHeader<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RequireHeader { inner }
    }
}

#[derive(Clone, Debug)]
struct RequireHeader<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequireHeader<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<GuardBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        if req.headers().get("x-allowed").is_some_and(|v| v == "yes") {
            ResponseFuture::inner(self.inner.call(req))
        } else {
            let mut response = Problem::new(ProblemType::FORBIDDEN)
                .with_detail("x-allowed is missing")
                .into_http_response();
            Rejection::new(
                RejectionCategory::Authorization,
                "missing_header",
                ProblemType::FORBIDDEN,
            )
            .insert_into(response.extensions_mut());
            ResponseFuture::ready(response)
        }
    }
}

fn stack()
-> impl Service<Request<Full<Bytes>>, Response = Response<GuardBody<Full<Bytes>>>, Error = Infallible>
+ Clone {
    ServiceBuilder::new()
        .layer(RequireHeaderLayer)
        .service(service_fn(|req: Request<Full<Bytes>>| async move {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let mut echoed = b"echo:".to_vec();
            echoed.extend_from_slice(&body);
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(echoed))))
        }))
}

#[tokio::test]
async fn passes_through_the_inner_body_untouched() {
    let req = Request::builder()
        .header("x-allowed", "yes")
        .body(Full::new(Bytes::from_static(b"payload")))
        .unwrap();
    let response = stack().oneshot(req).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.body().is_inner());
    assert!(response.extensions().get::<Rejection>().is_none());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"echo:payload");
}

#[tokio::test]
async fn rejects_with_a_problem_and_a_rejection_extension() {
    let req = Request::new(Full::new(Bytes::from_static(b"payload")));
    let response = stack().oneshot(req).await.unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    assert!(!response.body().is_inner());
    let why = *response.extensions().get::<Rejection>().unwrap();
    assert_eq!(why.category(), RejectionCategory::Authorization);
    assert_eq!(why.reason(), "missing_header");
    assert_eq!(why.problem_type(), ProblemType::FORBIDDEN);

    let body = response.into_body().collect().await.unwrap().to_bytes();
    let problem: Problem = serde_json::from_slice(&body).unwrap();
    assert!(problem.is(ProblemType::FORBIDDEN));
    assert_eq!(problem.detail(), Some("x-allowed is missing"));
}

#[tokio::test]
async fn inner_errors_pass_through_unchanged() {
    #[derive(Debug, PartialEq)]
    struct Boom;
    let svc = ServiceBuilder::new()
        .layer(RequireHeaderLayer)
        .service(service_fn(|_req: Request<()>| async {
            Err::<Response<Full<Bytes>>, _>(Boom)
        }));
    let req = Request::builder()
        .header("x-allowed", "yes")
        .body(())
        .unwrap();
    assert_eq!(svc.oneshot(req).await.unwrap_err(), Boom);
}

#[tokio::test]
async fn the_body_streams_frame_by_frame() {
    use http_body::Body as _;
    let problem_body: GuardBody<Full<Bytes>> = GuardBody::full(Bytes::from_static(b"{}"));
    assert_eq!(problem_body.size_hint().exact(), Some(2));
    let collected = problem_body.collect().await.unwrap().to_bytes();
    assert_eq!(&collected[..], b"{}");
}
