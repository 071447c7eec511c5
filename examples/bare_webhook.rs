//! The floor the HTTPS bench compares the webhook with: a TLS server that does the least any
//! admission webhook must do (read the body, parse it as JSON, answer with its `request.uid`)
//! and nothing else: no routing, limits, deadlines, metrics, logs or decisions. It takes its TLS
//! configuration from the webhook's own loader, so both pay the same handshake and record costs
//! and their ratio is the cost of everything else.
//!
//!   usage: cargo run --release --example bare_webhook -- ADDRESS CERT KEY

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use kuma_identity_webhook::server::tls::load_server_config;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(address), Some(cert), Some(key)) = (args.next(), args.next(), args.next()) else {
        anyhow::bail!("usage: bare_webhook ADDRESS CERT KEY");
    };
    let address: SocketAddr = address.parse()?;
    let acceptor = TlsAcceptor::from(load_server_config(Path::new(&cert), Path::new(&key))?);
    let listener = TcpListener::bind(address).await?;
    loop {
        let (tcp, _) = listener.accept().await?;
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tls), hyper::service::service_fn(answer))
                .await;
        });
    }
}

/// `{"response": {"uid": <request.uid>, "allowed": true}}` for a JSON body; 400 otherwise.
async fn answer(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(status(400)),
    };
    let Ok(review) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return Ok(status(400));
    };
    let answer = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": {"uid": review["request"]["uid"], "allowed": true},
    });
    let mut response = Response::new(Full::new(Bytes::from(answer.to_string())));
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

fn status(code: u16) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = hyper::StatusCode::from_u16(code).unwrap_or_default();
    response
}
