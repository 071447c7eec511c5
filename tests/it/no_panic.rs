//! Bad input never panics: every fixture review, damaged in many deterministic ways (values
//! replaced by other JSON types, keys dropped, bytes cut), goes through the envelope and decision
//! code for every endpoint, which must answer each time with a well-formed AdmissionReview.

use serde_json::{json, Value};

use crate::support::rng::Rng;
use crate::support::{example_state, load_fixtures};
use kuma_identity_webhook::admission::{review, Webhook};
use kuma_identity_webhook::config::{Settings, WorkloadFallback};

const REPLACEMENTS: [fn() -> Value; 8] = [
    || Value::Null,
    || json!(true),
    || json!(-1),
    || json!(1.5e300),
    || json!("{{"),
    || json!([]),
    || json!({}),
    || json!([{"name": 7}]),
];

/// Replaces one randomly chosen node (anywhere in the tree) with another JSON type, or drops a key.
fn damage(value: &mut Value, rng: &mut Rng, depth: usize) {
    let stop = depth > 0 && rng.below(4) == 0;
    match value {
        Value::Object(map) if !map.is_empty() && !stop => {
            let key = map.keys().nth(rng.below(map.len())).cloned().unwrap();
            if rng.below(8) == 0 {
                map.remove(&key);
            } else {
                damage(map.get_mut(&key).unwrap(), rng, depth + 1);
            }
        }
        Value::Array(items) if !items.is_empty() && !stop => {
            let index = rng.below(items.len());
            damage(&mut items[index], rng, depth + 1);
        }
        _ => *value = REPLACEMENTS[rng.below(REPLACEMENTS.len())](),
    }
}

#[test]
fn damaged_reviews_never_panic() {
    let state = example_state();
    let settings = Settings {
        workload_labels: vec!["app.kubernetes.io/name".to_owned()],
        workload_fallback: WorkloadFallback::ServiceAccount,
        ..Settings::default()
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut reviews = Vec::new();
    for file in ["meshidentity.yaml", "mesh.yaml", "pod.yaml"] {
        for (index, case) in load_fixtures(&format!("tests/fixtures/admission/{file}"))
            .cases
            .iter()
            .enumerate()
        {
            reviews.push(case.review(&format!("{file}-{index}")));
        }
    }
    let mut answered = 0;
    for original in &reviews {
        for round in 0..60 {
            let mut damaged = original.clone();
            for _ in 0..=rng.below(3) {
                damage(&mut damaged, &mut rng, 0);
            }
            let mut bytes = serde_json::to_vec(&damaged).unwrap();
            if round % 10 == 9 {
                bytes.truncate(rng.below(bytes.len() + 1));
            }
            for webhook in Webhook::ALL {
                let reviewed = review(webhook, &bytes, Some(&state), &settings).body_json();
                assert_eq!(
                    reviewed["kind"],
                    "AdmissionReview",
                    "{}",
                    String::from_utf8_lossy(&bytes)
                );
                assert!(reviewed["response"]["allowed"].is_boolean());
                answered += 1;
            }
        }
    }
    assert!(answered > 10_000, "{answered}");
}
