//! HTTP routes: the admission endpoints and health checks on the TLS listener, and health plus
//! metrics on the admin listener.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, Request, State};
use axum::http::{header, Method, StatusCode, Version};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower::ServiceExt;

use super::decision_log::{self, DecisionLine};
use super::inflight::InflightBudget;
use super::intake;
use super::placement::Placement;
use super::request_metrics::RequestMetrics;
use crate::admission::{self, Webhook};
use crate::cluster::StateHandle;
use crate::config::Settings;
use crate::metrics::Metrics;

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

/// What the routes share. Cloned for every admission request, so it is one `Arc`: one
/// reference count touched per request instead of one per part, each a cache line the two
/// workers would pass back and forth.
#[derive(Clone)]
pub struct App(Arc<AppParts>);

pub struct AppParts {
    pub state: Arc<StateHandle>,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    /// The series every admission request updates.
    pub requests: RequestMetrics,
    /// The memory admission requests in flight share.
    pub inflight: Arc<InflightBudget>,
    /// Where decisions run.
    pub placement: Placement,
}

impl App {
    pub fn new(
        state: Arc<StateHandle>,
        settings: Settings,
        metrics: Arc<Metrics>,
        max_inflight_bytes: usize,
    ) -> Self {
        Self(Arc::new(AppParts {
            state,
            settings: Arc::new(settings),
            requests: RequestMetrics::new(Arc::clone(&metrics)),
            metrics,
            inflight: InflightBudget::new(max_inflight_bytes),
            placement: Placement::default(),
        }))
    }
}

impl std::ops::Deref for App {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// A listener's routes. On the admission listener the admission paths, which carry every request
/// the API server sends, are answered directly; axum's router (its route table, boxed services
/// and extractors, a tenth of a MeshIdentity request's instructions) answers the rest: health
/// checks, and requests of another method or path, with the same 404 and 405 as before.
#[derive(Clone)]
pub struct Routes {
    router: Router,
    /// What admission requests are decided with; `None` on the admin listener.
    admission: Option<App>,
}

impl Routes {
    /// Answers `request`.
    pub(super) fn respond(&self, request: Request) -> impl Future<Output = Response> + Send {
        let by = match &self.admission {
            Some(app) if request.method() == Method::POST => {
                match Webhook::from_path(request.uri().path()) {
                    Some(webhook) => AnsweredBy::Admission(webhook, app.clone()),
                    None => AnsweredBy::Router(self.router.clone()),
                }
            }
            _ => AnsweredBy::Router(self.router.clone()),
        };
        async move {
            match by {
                AnsweredBy::Admission(webhook, app) => admit(webhook, State(app), request).await,
                AnsweredBy::Router(router) => match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
            }
        }
    }
}

/// Who answers a request.
enum AnsweredBy {
    Admission(Webhook, App),
    Router(Router),
}

/// Routes of the TLS listener.
pub fn admission_router(app: App) -> Routes {
    let mut router = Router::new();
    for webhook in Webhook::ALL {
        router = router.route(
            webhook.path(),
            post(move |state: State<App>, request: Request| admit(webhook, state, request)),
        );
    }
    let router = router
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(app.clone());
    Routes {
        router,
        admission: Some(app),
    }
}

/// Routes of the plain-HTTP admin listener.
pub fn admin_router(app: App) -> Routes {
    let router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(app);
    Routes {
        router,
        admission: None,
    }
}

/// A request answered before a decision: too large, too slow, of the wrong type, or no room.
struct Refused {
    response: Response,
    /// Why, for the log line.
    why: &'static str,
}

async fn admit(webhook: Webhook, State(app): State<App>, request: Request) -> Response {
    // Timed from the end of the request head, so the latency metric includes the body read.
    let started = Instant::now();
    match decide(webhook, &app, request).await {
        Ok(reviewed) => {
            let elapsed = started.elapsed();
            app.requests
                .observe(webhook, reviewed.outcome, elapsed.as_secs_f64());
            if let Some(verdict) = &reviewed.verdict {
                admission::record(&app.metrics, webhook, verdict);
            }
            let s = &reviewed.summary;
            decision_log::log(&DecisionLine {
                webhook: webhook.path(),
                uid: &s.uid,
                kind: &s.kind,
                namespace: &s.namespace,
                name: &s.name,
                operation: s.operation,
                dry_run: s.dry_run,
                outcome: reviewed.outcome.as_str(),
                allowed: reviewed.verdict.as_ref().is_some_and(|v| v.allowed()),
                duration_us: elapsed.as_micros() as u64,
            });
            let status = StatusCode::from_u16(reviewed.http_status)
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                reviewed.body,
            )
                .into_response()
        }
        Err(refused) => {
            // Never decided, but counted and logged like any error.
            let elapsed = started.elapsed();
            let outcome = admission::Outcome::Error;
            app.requests
                .observe(webhook, outcome, elapsed.as_secs_f64());
            tracing::info!(
                webhook = webhook.path(),
                status = refused.response.status().as_u16(),
                why = refused.why,
                outcome = outcome.as_str(),
                duration_us = elapsed.as_micros() as u64,
                "admission request refused before a decision"
            );
            refused.response
        }
    }
}

/// Checks the request, reserves its memory, reads its body and decides it.
async fn decide(
    webhook: Webhook,
    app: &App,
    request: Request,
) -> Result<admission::Reviewed, Refused> {
    let version = request.version();
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|length| length.to_str().ok()?.parse::<usize>().ok());
    // Refused from its head, before `100 Continue` invites the body.
    if declared.is_some_and(|length| length > MAX_BODY_BYTES) {
        let message = format!("request body larger than {MAX_BODY_BYTES} bytes");
        return Err(refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            message,
            version,
            "too large",
        ));
    }
    if let Err(message) = intake::check_content_type(request.headers()) {
        return Err(refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message,
            version,
            "content type",
        ));
    }
    let timeout = intake::caller_timeout(request.uri());
    // Without a length (chunked), the largest body is assumed.
    let cost = app
        .inflight
        .cost_of(declared.unwrap_or(MAX_BODY_BYTES).min(MAX_BODY_BYTES));
    let deadline = tokio::time::Instant::now() + intake::wait_limit(timeout);
    let Some(_reservation) = app.inflight.reserve(cost, deadline).await else {
        app.metrics.overloaded.inc();
        let message = format!(
            "too many admission requests in flight: {} of {} bytes reserved, and this one needs {cost}; retry",
            app.inflight.used(),
            app.inflight.capacity(),
        );
        return Err(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            message,
            version,
            "no memory",
        ));
    };
    let body = read_body(request, BODY_READ_TIMEOUT)
        .await
        .map_err(|response| Refused {
            response,
            why: "body",
        })?;
    let view = app.state.get();
    if app.placement.inline(webhook, body.len()) {
        let started = Instant::now();
        let reviewed = admission::review(webhook, &body, view.as_deref(), &app.settings);
        app.placement.record(webhook, started.elapsed());
        return Ok(reviewed);
    }
    let app = app.clone();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let reviewed = admission::review(webhook, &body, view.as_deref(), &app.settings);
        app.placement.record(webhook, started.elapsed());
        reviewed
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "the admission decision did not complete");
        refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the decision did not complete".to_owned(),
            version,
            "decision failed",
        )
    })
}

/// A plain-text refusal of a request whose body was not read; an HTTP/1 connection cannot carry
/// another request after an unread body, so it is closed (HTTP/2 resets just the stream).
fn refuse(status: StatusCode, message: String, version: Version, why: &'static str) -> Refused {
    let mut response = (status, message).into_response();
    if version < Version::HTTP_2 {
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    Refused { response, why }
}

/// Reads a request body of at most [`MAX_BODY_BYTES`] (413 beyond, as soon as the limit is
/// crossed) within `within` (408 after).
async fn read_body(mut request: Request, within: Duration) -> Result<Bytes, Response> {
    let version = request.version();
    DefaultBodyLimit::max(MAX_BODY_BYTES).apply(&mut request);
    match tokio::time::timeout(within, Bytes::from_request(request, &())).await {
        Ok(Ok(body)) => Ok(body),
        Ok(Err(rejection)) => Err(rejection.into_response()),
        Err(_) => {
            let message = format!("request body not received within {within:?}");
            let mut response = (StatusCode::REQUEST_TIMEOUT, message).into_response();
            // The rest of the body may still be on its way, so an HTTP/1 connection cannot carry
            // another request; HTTP/2 resets just the stream and forbids the header.
            if version < Version::HTTP_2 {
                response.headers_mut().insert(
                    header::CONNECTION,
                    header::HeaderValue::from_static("close"),
                );
            }
            Err(response)
        }
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
        assert_eq!(refused.headers()[header::CONNECTION], "close");
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
}
