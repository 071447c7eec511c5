//! Golden fixtures for SPIRE socket injection: tests/fixtures/inject/*.yaml.
//! Format: tests/fixtures/inject/README.md.
//!
//! `INJECT_BLESS=1 cargo test --test it inject_golden` fills in `expect.patch` and
//! `expect.patched` for fixtures that expect a patch but lack them; review
//! the diff before committing.

use crate::support::inject_fixture::{load_all, Fixture};

use std::fs;
use std::path::Path;

use kuma_identity_webhook::inject::{apply, decide, InjectDecision, SkipReason};
use serde_json::Value;

fn warnings_of(d: &InjectDecision) -> &[String] {
    match d {
        InjectDecision::Inject { warnings, .. } | InjectDecision::Skip { warnings, .. } => warnings,
        InjectDecision::Deny { .. } => &[],
    }
}

fn check_warnings(name: &str, d: &InjectDecision, want: &[String]) {
    let got = warnings_of(d);
    for w in got {
        assert!(w.chars().count() <= 120, "{name}: warning too long: {w}");
    }
    if want.is_empty() {
        assert!(got.is_empty(), "{name}: unexpected warnings {got:?}");
    }
    for sub in want {
        assert!(
            got.iter().any(|w| w.contains(sub.as_str())),
            "{name}: no warning contains {sub:?}: {got:?}"
        );
    }
}

/// Appends blessed `patch`/`patched` to the fixture text, indented under `expect:`.
fn bless(path: &Path, patch: &Value, patched: &Value) {
    let indent = |v: &Value| -> String {
        serde_yaml_ng::to_string(v)
            .unwrap()
            .lines()
            .map(|l| format!("    {l}\n"))
            .collect()
    };
    let mut text = fs::read_to_string(path).unwrap();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "  patch:\n{}  patched:\n{}",
        indent(patch),
        indent(patched)
    ));
    fs::write(path, text).unwrap();
}

fn run_one(path: &Path, fx: &Fixture) -> bool {
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    assert!(!fx.description.is_empty(), "{name}: empty description");
    let cfg = fx.config.build();
    let decision = decide(&fx.pod, &cfg);
    let deny_reason = match &decision {
        InjectDecision::Deny { reason, .. } => Some(reason.as_str()),
        _ => None,
    };
    assert_eq!(
        deny_reason,
        fx.expect.deny_reason.as_deref(),
        "{name}: deny reason"
    );
    let (applied, via_apply) = apply(&fx.pod, &cfg);
    assert_eq!(
        decision, via_apply,
        "{name}: apply() disagrees with decide()"
    );
    check_warnings(&name, &decision, &fx.expect.warnings_contain);
    match &decision {
        InjectDecision::Deny { message, .. } => {
            assert!(!fx.expect.allowed, "{name}: denied: {message}");
            assert!(
                !fx.expect.message_contains.is_empty(),
                "{name}: denial needs message_contains"
            );
            for sub in &fx.expect.message_contains {
                assert!(
                    message.contains(sub.as_str()),
                    "{name}: {message:?} lacks {sub:?}"
                );
            }
            assert_eq!(applied, fx.pod, "{name}");
        }
        InjectDecision::Skip { reason, .. } => {
            assert!(
                fx.expect.allowed,
                "{name}: allowed expected false, got skip"
            );
            assert!(
                fx.expect.no_patch,
                "{name}: skipped ({reason:?}) but no_patch not set"
            );
            assert_eq!(Some(reason.as_str()), fx.expect.skip.as_deref(), "{name}");
            assert!(
                fx.expect.patched.is_none() && fx.expect.patch.is_none(),
                "{name}"
            );
            assert_eq!(applied, fx.pod, "{name}");
        }
        InjectDecision::Inject { patch, targets, .. } => {
            assert!(
                fx.expect.allowed && !fx.expect.no_patch,
                "{name}: got a patch"
            );
            assert!(fx.expect.skip.is_none(), "{name}");
            assert!(!patch.0.is_empty(), "{name}: empty Inject patch");
            for op in &patch.0 {
                assert!(
                    matches!(op, json_patch::PatchOperation::Add(_)),
                    "{name}: {op:?}"
                );
            }
            if let Some(want) = &fx.expect.targets {
                assert_eq!(targets, want, "{name}: targets");
            }
            // Apply the serialised patch exactly as the API server would.
            let patch_json = serde_json::to_value(patch).unwrap();
            let wire: json_patch::Patch = serde_json::from_value(patch_json.clone()).unwrap();
            let mut patched = fx.pod.clone();
            json_patch::patch(&mut patched, &wire).unwrap();
            assert_eq!(patched, applied, "{name}: apply() output differs");
            let (Some(want_patch), Some(want_patched)) = (&fx.expect.patch, &fx.expect.patched)
            else {
                if std::env::var_os("INJECT_BLESS").is_some() {
                    bless(path, &patch_json, &patched);
                    return true;
                }
                panic!("{name}: expects a patch but has no expect.patch/patched (INJECT_BLESS=1)");
            };
            assert_eq!(&patch_json, want_patch, "{name}: patch differs");
            assert_eq!(&patched, want_patched, "{name}: patched pod differs");
            // Idempotence: feeding the result back adds nothing.
            let again = decide(&patched, &cfg);
            assert!(
                matches!(
                    again,
                    InjectDecision::Skip {
                        reason: SkipReason::AlreadyPresent,
                        ..
                    }
                ),
                "{name}: re-run on patched pod gave {again:?}"
            );
        }
    }
    false
}

#[test]
fn golden_fixtures() {
    let all = load_all();
    assert!(all.len() >= 20, "only {} fixtures", all.len());
    let blessed = all.iter().filter(|(p, fx)| run_one(p, fx)).count();
    assert_eq!(blessed, 0, "blessed {blessed} fixtures; review and re-run");
}
