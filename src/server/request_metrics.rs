//! The two metrics every admission request updates: its path's request counter for the outcome,
//! and its path's latency histogram.
//!
//! Looking a series up in its family hashes the labels and takes the family's read lock, whose
//! lock word both workers write, so each lookup moved a cache line between the cores: two
//! lookups a request, about 1 000 instructions with the hashing. Each series is looked up once
//! instead, when first used (a series appears in `/metrics` once it has counted something, as
//! before), and its handle kept; a handle shares the series' value with the family.

use std::sync::{Arc, OnceLock};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use crate::admission::{Outcome, Webhook};
use crate::metrics::{Metrics, PathLabels, RequestLabels};

/// Handles to the series of each webhook (in [`Webhook::ALL`] order) and outcome.
pub struct RequestMetrics {
    metrics: Arc<Metrics>,
    requests: [[OnceLock<Counter>; Outcome::ALL.len()]; Webhook::ALL.len()],
    latency: [OnceLock<Histogram>; Webhook::ALL.len()],
}

impl RequestMetrics {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            requests: Default::default(),
            latency: Default::default(),
        }
    }

    /// Counts a `webhook` request that ended with `outcome`, `seconds` after its head was read.
    pub fn observe(&self, webhook: Webhook, outcome: Outcome, seconds: f64) {
        let path = webhook.path();
        let row = self.requests.get(webhook.index());
        if let Some(slot) = row.and_then(|row| row.get(outcome.index())) {
            let labels = RequestLabels {
                path,
                outcome: outcome.as_str(),
            };
            slot.get_or_init(|| self.metrics.requests.get_or_create(&labels).clone())
                .inc();
        }
        if let Some(slot) = self.latency.get(webhook.index()) {
            slot.get_or_init(|| {
                self.metrics
                    .latency
                    .get_or_create(&PathLabels { path })
                    .clone()
            })
            .observe(seconds);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_follow_the_lists_of_all() {
        for (at, webhook) in Webhook::ALL.into_iter().enumerate() {
            assert_eq!(webhook.index(), at);
        }
        for (at, outcome) in Outcome::ALL.into_iter().enumerate() {
            assert_eq!(outcome.index(), at);
        }
    }

    #[test]
    fn observations_reach_the_families_series() {
        let metrics = Arc::new(Metrics::new());
        let requests = RequestMetrics::new(Arc::clone(&metrics));
        for webhook in Webhook::ALL {
            for outcome in Outcome::ALL {
                assert!(!metrics.encode().contains(&format!(
                    "path=\"{}\",outcome=\"{}\"",
                    webhook.path(),
                    outcome.as_str()
                )));
                requests.observe(webhook, outcome, 0.001);
                requests.observe(webhook, outcome, 0.002);
            }
        }
        let text = metrics.encode();
        for webhook in Webhook::ALL {
            for outcome in Outcome::ALL {
                let series = format!(
                    "kuma_identity_webhook_admission_requests_total{{path=\"{}\",outcome=\"{}\"}} 2",
                    webhook.path(),
                    outcome.as_str()
                );
                assert!(text.contains(&series), "{series} in\n{text}");
            }
            let count = format!(
                "kuma_identity_webhook_admission_duration_seconds_count{{path=\"{}\"}} 6",
                webhook.path()
            );
            assert!(text.contains(&count), "{count} in\n{text}");
        }
    }
}
