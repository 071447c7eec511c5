//! A client layer that notes which watch connections the API server answered successfully and
//! which are still streaming: a quiet resource sends no event after a reconnect, so an open
//! stream is the only sign its watch works.

use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use hyper::body::{Body, Frame, SizeHint};

use super::resources::watch_target;
use super::store::{OpenWatch, Shared, WATCH_SETTLE};

/// A client layer that notes which watch connections the API server has answered successfully
/// and which of them are still streaming. Only that; a success status alone proves nothing, as
/// the body can still fail.
#[derive(Clone)]
pub(super) struct ObserveLayer {
    pub(super) shared: Arc<Shared>,
}

impl<S> tower::Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Observe {
            inner,
            shared: self.shared.clone(),
        }
    }
}

#[derive(Clone)]
pub(super) struct Observe<S> {
    pub(super) inner: S,
    pub(super) shared: Arc<Shared>,
}

impl<S, B, RB> tower::Service<http::Request<B>> for Observe<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    RB: Body,
{
    type Response = http::Response<ObservedBody<RB>>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let index = watch_target(request.uri())
            .and_then(|(resource, namespace)| self.shared.index_of(resource, namespace));
        let shared = self.shared.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let response = response.await?;
            let guard = match index {
                Some(index) if response.status().is_success() => {
                    let id = shared.connections.fetch_add(1, Ordering::Relaxed);
                    shared.with_health(index, |h| {
                        h.open = Some(OpenWatch {
                            id,
                            since: Instant::now(),
                            credited: false,
                        });
                    });
                    Some(OpenGuard { shared, index, id })
                }
                _ => None,
            };
            Ok(response.map(|inner| ObservedBody {
                inner: Box::pin(inner),
                guard,
            }))
        })
    }
}

/// Marks its watch connection closed when dropped.
pub(super) struct OpenGuard {
    pub(super) shared: Arc<Shared>,
    pub(super) index: usize,
    pub(super) id: u64,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let id = self.id;
        let now = Instant::now();
        self.shared.with_health(self.index, |h| {
            let Some(open) = h.open.filter(|open| open.id == id) else {
                return;
            };
            h.open = None;
            // kube-rs resumes a watch whose body is cut off (an unexpected EOF) at once and
            // reports no error, so a connection that keeps breaking as it starts would otherwise
            // never look like a failure.
            if now.duration_since(open.since) < WATCH_SETTLE {
                h.failed(now);
            }
        });
    }
}

/// A response body that closes its watch connection's record when the body ends, fails or is
/// dropped.
pub(super) struct ObservedBody<B> {
    pub(super) inner: Pin<Box<B>>,
    pub(super) guard: Option<OpenGuard>,
}

impl<B: Body> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let poll = this.inner.as_mut().poll_frame(cx);
        if matches!(poll, Poll::Ready(None | Some(Err(_)))) {
            this.guard = None;
        }
        poll
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
