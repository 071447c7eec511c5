//! HTTP routes: the admission endpoints and health checks on the TLS listener, and health plus
//! metrics on the admin listener.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
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
            post(move |state: State<App>, body: Bytes| admit(webhook, state, body)),
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

async fn admit(webhook: Webhook, State(app): State<App>, body: Bytes) -> Response {
    let started = Instant::now();
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
