//! HTTP routes: the admission endpoints and health checks on the TLS listener, and health plus
//! metrics on the admin listener.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::admission::{self, Webhook};
use crate::config::Settings;
use crate::metrics::Metrics;
use crate::state::StateHandle;
use crate::validate::Verdict;

/// An UPDATE review carries the object twice, and the API server allows objects up to 3 MiB, so
/// 7 MiB covers the largest review it can send; anything larger is refused with 413 as soon as
/// the limit is crossed, without buffering the rest.
pub const MAX_BODY_BYTES: usize = 7 * 1024 * 1024;

/// How long a review body may take to arrive once its request head is in. kube-apiserver gives a
/// webhook call at most 30 s in all, and the deployed webhooks set `timeoutSeconds` 5 and 3, so a
/// body still arriving after 10 s belongs to a call the API server has already given up on; the
/// deadline stops a client that trickles a body from holding a connection and a task for ever.
/// The connection-level deadlines stop at the end of the head, so this is the only bound on the
/// body.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct App {
    pub state: Arc<StateHandle>,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
}

/// Routes of the TLS listener.
pub fn admission_router(app: App) -> Router {
    let mut router = Router::new();
    for webhook in Webhook::ALL {
        router = router.route(
            webhook.path(),
            post(move |state: State<App>, request: Request| admit(webhook, state, request)),
        );
    }
    router
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app)
}

/// Routes of the plain-HTTP admin listener.
pub fn admin_router(app: App) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(app)
}

async fn admit(webhook: Webhook, State(app): State<App>, request: Request) -> Response {
    // Timed from the end of the request head, so the latency metric includes the body read.
    let started = Instant::now();
    let body = match read_body(request, BODY_READ_TIMEOUT).await {
        Ok(body) => body,
        Err(refused) => {
            // Too large or too slow: never decided, but counted and logged like any error.
            let elapsed = started.elapsed();
            let outcome = admission::Outcome::Error.as_str();
            app.metrics
                .observe(webhook.path(), outcome, elapsed.as_secs_f64());
            tracing::info!(
                webhook = webhook.path(),
                status = refused.status().as_u16(),
                outcome,
                duration_us = elapsed.as_micros() as u64,
                "admission request refused before a decision"
            );
            return refused;
        }
    };
    let view = app.state.get();
    let reviewed = admission::review(webhook, &body, view.as_deref(), &app.settings);
    let elapsed = started.elapsed();
    app.metrics.observe(
        webhook.path(),
        reviewed.outcome.as_str(),
        elapsed.as_secs_f64(),
    );
    record_reason(&app.metrics, webhook, reviewed.verdict.as_ref());
    let s = &reviewed.summary;
    tracing::info!(
        webhook = webhook.path(),
        uid = %s.uid,
        kind = %s.kind,
        namespace = %s.namespace,
        name = %s.name,
        operation = %s.operation,
        dry_run = s.dry_run,
        outcome = reviewed.outcome.as_str(),
        allowed = reviewed.verdict.as_ref().is_some_and(|v| v.allowed()),
        duration_us = elapsed.as_micros() as u64,
        "admission decision"
    );
    let status =
        StatusCode::from_u16(reviewed.http_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(reviewed.body)).into_response()
}

/// Reads a request body of at most [`MAX_BODY_BYTES`] (413 beyond, as soon as the limit is
/// crossed) within `within` (408 after). A body whose `Content-Length` is already over the limit
/// is refused before it is polled, so hyper never invites it with `100 Continue`. The connection
/// layer closes an HTTP/1 connection after either refusal, since the rest of the body may still
/// be on its way.
async fn read_body(request: Request, within: Duration) -> Result<Bytes, Response> {
    if let Some(length) = declared_length(&request).filter(|&n| n > MAX_BODY_BYTES as u64) {
        let message =
            format!("request body of {length} bytes is over the limit of {MAX_BODY_BYTES} bytes");
        return Err((StatusCode::PAYLOAD_TOO_LARGE, message).into_response());
    }
    match tokio::time::timeout(within, Bytes::from_request(request, &())).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(rejection)) => Err(rejection.into_response()),
        Err(_) => {
            let message = format!("request body not received within {within:?}");
            Err((StatusCode::REQUEST_TIMEOUT, message).into_response())
        }
    }
}

/// The `Content-Length` a request declares, if it declares one that parses.
fn declared_length(request: &Request) -> Option<u64> {
    request
        .headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Per-webhook reason metrics: pod denials, injection outcomes.
fn record_reason(metrics: &Metrics, webhook: Webhook, verdict: Option<&Verdict>) {
    let Some((verdict, reason)) = verdict.and_then(|v| Some((v, v.metric_reason?))) else {
        return;
    };
    match webhook {
        Webhook::ValidatePod if !verdict.allowed() => metrics.pod_denied(reason),
        Webhook::MutatePod => {
            let outcome = match (verdict.allowed(), verdict.patch.is_some()) {
                (false, _) => "denied",
                (true, true) => "injected",
                (true, false) => "skipped",
            };
            metrics.injection(outcome, reason);
        }
        _ => {}
    }
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(app): State<App>) -> Response {
    match app.state.readiness() {
        Ok(()) => (StatusCode::OK, "ready").into_response(),
        Err(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason).into_response(),
    }
}

async fn metrics(State(app): State<App>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        app.metrics.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::convert::Infallible;

    use axum::body::Body;
    use tower::{Layer, ServiceExt};

    /// Reads `body` the way the admission routes do, behind the same body limit; answers 200
    /// with the body's length when it was read.
    async fn read(body: Body, within: Duration) -> Response {
        let service = tower::service_fn(move |request: Request| async move {
            Ok::<_, Infallible>(match read_body(request, within).await {
                Ok(body) => body.len().to_string().into_response(),
                Err(refused) => refused,
            })
        });
        let limited = DefaultBodyLimit::max(MAX_BODY_BYTES).layer(service);
        match limited.oneshot(Request::new(body)).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_gets_408() {
        // A body that trickles in for ever: a byte now and then, never the end.
        let trickle = futures::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some((Ok::<_, std::io::Error>(Bytes::from_static(b" ")), ()))
        });
        let started = Instant::now();
        let refused = read(Body::from_stream(trickle), Duration::from_millis(200)).await;
        let elapsed = started.elapsed();
        assert_eq!(refused.status(), StatusCode::REQUEST_TIMEOUT);
        assert!(elapsed >= Duration::from_millis(200), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    }

    #[tokio::test]
    async fn bodies_up_to_the_limit_are_read_in_time_and_larger_ones_get_413() {
        let full = read(
            Body::from(vec![b' '; MAX_BODY_BYTES]),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(full.status(), StatusCode::OK);
        let over = read(
            Body::from(vec![b' '; MAX_BODY_BYTES + 1]),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(over.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }

    /// A declared length over the limit is refused without touching the body: this one would
    /// never end.
    #[tokio::test]
    async fn a_declared_length_over_the_limit_gets_413_before_the_body_is_read() {
        let never = futures::stream::pending::<Result<Bytes, std::io::Error>>();
        let mut request = Request::new(Body::from_stream(never));
        request.headers_mut().insert(
            header::CONTENT_LENGTH,
            header::HeaderValue::from(MAX_BODY_BYTES + 1),
        );
        let refused = tokio::time::timeout(
            Duration::from_secs(5),
            read_body(request, Duration::from_secs(60)),
        )
        .await
        .unwrap()
        .unwrap_err();
        assert_eq!(refused.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
