//! Every admission fixture through the real TLS server, over HTTP/1.1 and h2, with a client that
//! verifies the chain and the DNS name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use support::{load_fixtures, TestServer};

async fn run_fixture_file(relative: &str) {
    let file = load_fixtures(relative);
    let mut failures = Vec::new();
    for (index, case) in file.cases.iter().enumerate() {
        let server = TestServer::start(Some(case.snapshot()), case.settings.settings()).await;
        for http2 in [false, true] {
            let client = server.client(http2);
            let uid = format!("uid-{index}-{http2}");
            let body = serde_json::to_vec(&case.review(&uid)).unwrap();
            let (status, response) = server.post(&client, &file.webhook, body).await;
            let mut errors = case.expect.check(&uid, &response);
            if status != 200 {
                errors.push(format!("HTTP {status}"));
            }
            if response["response"].get("patchType").is_some()
                || response["response"].get("patch").is_some()
            {
                errors.push("a validating answer carries a patch".to_owned());
            }
            if !errors.is_empty() {
                failures.push(format!(
                    "{} (http2={http2}):\n  {}\n  response: {response}",
                    case.name,
                    errors.join("\n  ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failing case(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn meshidentity_fixtures() {
    run_fixture_file("tests/fixtures/admission/meshidentity.yaml").await;
}

#[tokio::test]
async fn mesh_fixtures() {
    run_fixture_file("tests/fixtures/admission/mesh.yaml").await;
}

#[tokio::test]
async fn pod_validation_fixtures() {
    run_fixture_file("tests/fixtures/admission/pod.yaml").await;
}
