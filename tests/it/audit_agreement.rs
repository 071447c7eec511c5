//! One decision code: the admission fixtures' pods judged by the audit agree with the pod
//! webhook's verdicts, and the injection fixtures' pods with the injector's decisions.

use serde_json::Value;

use crate::support::{inject_fixture, insert_json, load_fixtures};
use kuma_identity_webhook::admission::{self, Webhook};
use kuma_identity_webhook::api::{PodInfo, WORKLOAD_LABEL};
use kuma_identity_webhook::audit::{judge, Finding, Row};
use kuma_identity_webhook::cluster::{ClusterView, Object, Snapshot};
use kuma_identity_webhook::config::Settings;
use kuma_identity_webhook::identity::dataplane::is_meshed;
use kuma_identity_webhook::inject::{self, InjectDecision, InjectionDenial};

const POD_FIXTURES: &str = "tests/fixtures/admission/pod.yaml";

/// The findings the pod webhook judges (the rest are the injector's).
const POD_WEBHOOK_FINDINGS: [Finding; 4] = [
    Finding::MissingWorkload,
    Finding::MissingLabel,
    Finding::InvalidSpiffeId,
    Finding::ManualWorkloadLabel,
];

/// The pod as stored, judged by the audit against `snapshot` (the pod itself added to it, as a
/// running pod is part of the cluster).
fn audit_pod(snapshot: &mut Snapshot, pod: Value, settings: &Settings) -> (PodInfo, Vec<Row>) {
    let Some(Object::Pod(info)) = Object::from_json(pod.clone()).unwrap() else {
        panic!("not a pod: {pod}");
    };
    insert_json(snapshot, pod);
    let rows = judge(&info, snapshot, settings);
    (info, rows)
}

#[test]
fn audit_agrees_with_the_pod_webhook_on_every_created_pod_of_the_fixtures() {
    let file = load_fixtures(POD_FIXTURES);
    let webhook = Webhook::from_path(&file.webhook).unwrap();
    let mut compared = 0;
    for (index, case) in file.cases.iter().enumerate() {
        if case.request.operation != "CREATE" {
            continue; // an UPDATE is judged against its old object, which a stored pod has not
        }
        let Some(mut pod) = case.request.object.clone().filter(|o| o["kind"] == "Pod") else {
            continue;
        };
        let namespace = pod["metadata"]["namespace"]
            .as_str()
            .or(case.request.namespace.as_deref())
            .unwrap_or("default")
            .to_owned();
        pod["metadata"]["namespace"] = namespace.into();
        if pod["metadata"]["name"].as_str().is_none() {
            pod["metadata"]["name"] = format!("case-{index}").into();
        }
        let settings = case.settings.settings();
        let uid = format!("uid-{index}");
        let body = serde_json::to_vec(&case.review(&uid)).unwrap();
        let mut snapshot = case.snapshot();
        let response = admission::review(webhook, &body, Some(&snapshot), &settings).body_json();
        let response = &response["response"];
        let (info, rows) = audit_pod(&mut snapshot, pod, &settings);
        let rows: Vec<&Row> = rows
            .iter()
            .filter(|r| POD_WEBHOOK_FINDINGS.contains(&r.finding))
            .collect();
        let allowed = response["allowed"] == true;
        let denial = response["status"]["message"].as_str().unwrap_or_default();
        let warned = response["warnings"]
            .as_array()
            .is_some_and(|w| !w.is_empty());
        let context = format!("{}: {response}\naudit: {rows:?}", case.name);
        if !is_meshed(&info, &snapshot as &dyn ClusterView) {
            // The audit judges meshed pods only; the webhook refuses a hand-set workload label on
            // any pod it is called for.
            assert!(rows.is_empty(), "{context}");
            assert!(
                allowed || info.labels.get(WORKLOAD_LABEL).is_some(),
                "{context}"
            );
            compared += 1;
            continue;
        }
        if allowed && !warned {
            assert!(rows.is_empty(), "{context}");
        } else if allowed {
            // Warn enforcement lets a pod with an invalid ID through, with warnings.
            assert!(
                rows.iter()
                    .any(|r| r.finding == Finding::InvalidSpiffeId
                        || r.finding == Finding::MissingLabel),
                "{context}"
            );
        } else if info.labels.get(WORKLOAD_LABEL).is_some() {
            assert!(
                rows.iter()
                    .any(|r| r.finding == Finding::ManualWorkloadLabel),
                "{context}"
            );
        } else {
            // The same assessment: the audit's message is the webhook's denial, word for word.
            assert!(rows.iter().any(|r| r.message == denial), "{context}");
        }
        compared += 1;
    }
    assert!(compared >= 20, "only {compared} pods compared");
}

#[test]
fn audit_agrees_with_the_injector_on_every_injection_fixture() {
    for (path, fixture) in inject_fixture::load_all() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let cfg = fixture.config.build();
        let decision = inject::decide(&fixture.pod, &cfg);
        let mut pod = fixture.pod.clone();
        if !pod.is_object() {
            continue;
        }
        // In a namespace with sidecar injection on, so the audit judges it.
        pod["metadata"]["namespace"] = "shop".into();
        pod["metadata"]["name"] = "pod".into();
        let settings = Settings {
            inject: cfg,
            ..Settings::default()
        };
        let mut snapshot = crate::support::example_state();
        let (_, rows) = audit_pod(&mut snapshot, pod.clone(), &settings);
        let found = |finding: Finding| rows.iter().find(|r| r.finding == finding);
        let context = format!("{name}: {decision:?}\naudit: {rows:?}");
        match &decision {
            InjectDecision::Deny {
                reason: InjectionDenial::InvalidOptIn,
                message,
            } => {
                let row = found(Finding::InvalidSpireSupport)
                    .or_else(|| found(Finding::SpireSupportConflict))
                    .unwrap_or_else(|| panic!("{context}"));
                assert_eq!(&row.message, message, "{context}");
            }
            InjectDecision::Inject { patch, .. } => {
                let paths: Vec<String> = patch.0.iter().map(|op| op.path().to_string()).collect();
                let adds_volume = paths.iter().any(|p| p.starts_with("/spec/volumes"));
                assert_eq!(
                    found(Finding::SocketVolumeMissing).is_some(),
                    adds_volume,
                    "{context}"
                );
                let mounted: Vec<String> = paths
                    .iter()
                    .filter(|p| p.contains("/volumeMounts"))
                    .map(|p| {
                        let parts: Vec<&str> = p.split('/').collect();
                        let container = &pod["spec"][parts[2]][parts[3].parse::<usize>().unwrap()];
                        format!("{}/{}", parts[2], container["name"].as_str().unwrap())
                    })
                    .collect();
                match found(Finding::SocketMountMissing) {
                    Some(row) => assert_eq!(
                        row.message,
                        format!("not mounted in {}", mounted.join(", ")),
                        "{context}"
                    ),
                    None => assert!(mounted.is_empty(), "{context}"),
                }
            }
            InjectDecision::Skip { .. } | InjectDecision::Deny { .. } => {
                let socket = [
                    Finding::SocketVolumeMissing,
                    Finding::SocketMountMissing,
                    Finding::InvalidSpireSupport,
                    Finding::SpireSupportConflict,
                ];
                assert!(
                    rows.iter().all(|r| !socket.contains(&r.finding)),
                    "{context}"
                );
            }
        }
    }
}
