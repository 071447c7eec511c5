//! An open-loop load generator for the HTTPS bench's latency mode: POSTs a body at a fixed rate
//! over HTTP/1.1 keep-alive and reports the latency percentiles. Each request's latency counts
//! from the moment it was due, not from when it was sent, so a stalled server is not hidden by
//! the generator waiting for it (coordinated omission).
//!
//!   usage: cargo run --release --example fixed_rate -- URL BODY CA RATE SECONDS

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::{Instant, MissedTickBehavior};

/// Requests in the first second open the connections (TLS handshakes) and are not counted.
const WARM_UP: Duration = Duration::from_secs(1);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [url, body, ca, rate, seconds] = args.as_slice() else {
        anyhow::bail!("usage: fixed_rate URL BODY CA RATE SECONDS");
    };
    let rate: u32 = rate.parse()?;
    let seconds: u64 = seconds.parse()?;
    anyhow::ensure!(rate > 0, "RATE must be positive");
    let body = axum::body::Bytes::from(std::fs::read(body)?);
    let client = reqwest::Client::builder()
        .http1_only()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(ca)?)?)
        .build()?;
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / rate);
    // A late tick is sent at once, and the next ones keep the schedule.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let started = Instant::now();
    let end = started + WARM_UP + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    loop {
        let due = ticks.tick().await;
        if due >= end {
            break;
        }
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        let (latencies, errors) = (Arc::clone(&latencies), Arc::clone(&errors));
        tasks.push(tokio::spawn(async move {
            let sent = client
                .post(url.as_str())
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await;
            let ok = match sent {
                Ok(response) => response.status().is_success() && response.bytes().await.is_ok(),
                Err(_) => false,
            };
            let latency = due.elapsed();
            if due < started + WARM_UP {
                return;
            }
            if ok {
                latencies.lock().await.push(latency);
            } else {
                errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    for task in tasks {
        task.await?;
    }
    let mut latencies = latencies.lock().await.clone();
    latencies.sort();
    let at = |q: f64| {
        let index = ((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
        latencies
            .get(index)
            .copied()
            .unwrap_or_default()
            .as_secs_f64()
            * 1e3
    };
    println!(
        "requests {} errors {} rate {rate}/s: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
        latencies.len(),
        errors.load(std::sync::atomic::Ordering::Relaxed),
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        at(1.0),
    );
    Ok(())
}
