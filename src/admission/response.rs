//! Writing the AdmissionReview response: straight from the verdict, the patch straight into
//! base64, every answer echoing `apiVersion`, `kind` and `uid`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::verdict::Verdict;

use super::envelope::{API_VERSION, REVIEW_KIND};

/// What an answer names of its request.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    pub uid: &'a str,
    pub name: &'a str,
    pub group: &'a str,
    pub kind: &'a str,
}

/// The AdmissionReview response, as it goes on the wire.
#[derive(Serialize)]
struct ReviewOut<'a> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    response: ResponseOut<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResponseOut<'a> {
    uid: &'a str,
    allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<StatusOut<'a>>,
    /// `[]byte` in JSON is base64; kube-apiserver decodes it as such. Held as the JSON string it
    /// is: serde_json would otherwise scan it byte by byte for characters to escape, which base64
    /// has none of (8k instructions for a pod mutation's 600-byte patch).
    #[serde(skip_serializing_if = "Option::is_none")]
    patch: Option<Box<RawValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    patch_type: Option<&'static str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    audit_annotations: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    warnings: &'a [String],
}

/// A `metav1.Status` of a refusal.
#[derive(Serialize)]
struct StatusOut<'a> {
    status: &'static str,
    code: u16,
    message: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<DetailsOut<'a>>,
}

#[derive(Serialize)]
struct DetailsOut<'a> {
    name: &'a str,
    group: &'a str,
    kind: &'a str,
    causes: Vec<CauseOut<'a>>,
}

#[derive(Serialize)]
struct CauseOut<'a> {
    reason: &'static str,
    message: &'a str,
    field: &'a str,
}

/// The response to `subject` carrying `verdict`.
fn review_out<'a>(subject: Subject<'a>, verdict: &'a Verdict) -> serde_json::Result<ReviewOut<'a>> {
    let status = verdict.denial.as_ref().map(|denial| StatusOut {
        status: "Failure",
        code: denial.code,
        message: &denial.message,
        reason: denial.reason,
        details: (!denial.causes.is_empty()).then(|| DetailsOut {
            name: subject.name,
            group: subject.group,
            kind: subject.kind,
            causes: denial
                .causes
                .iter()
                .map(|cause| CauseOut {
                    reason: "FieldValueInvalid",
                    message: &cause.message,
                    field: &cause.field,
                })
                .collect(),
        }),
    });
    let patch = match verdict.patch.as_ref().filter(|p| !p.0.is_empty()) {
        Some(patch) => Some(json_string(encode_patch(patch)?)?),
        None => None,
    };
    Ok(ReviewOut {
        api_version: API_VERSION,
        kind: REVIEW_KIND,
        response: ResponseOut {
            uid: subject.uid,
            allowed: verdict.allowed(),
            status,
            patch_type: patch.as_ref().map(|_| "JSONPatch"),
            patch,
            audit_annotations: &verdict.audit_annotations,
            warnings: &verdict.warnings,
        },
    })
}

/// The serialized AdmissionReview answering `subject` with `verdict`.
pub fn answer(subject: Subject, verdict: &Verdict) -> serde_json::Result<Vec<u8>> {
    write_review(&review_out(subject, verdict)?)
}

/// The envelope's head exactly as serde_json writes it for [`ReviewOut`] (a test checks).
const REVIEW_HEAD: &[u8] =
    br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":"#;

/// Room for an answer's fields besides the patch: an allowed answer takes about 110 bytes, a
/// denial a few hundred; a longer one grows the buffer.
const ANSWER_ROOM: usize = 256;

/// What serde_json writes for `review`, with the envelope's head copied whole (serde_json
/// escapes its five strings one by one: 750 instructions, half of an allowed answer's) into a
/// buffer sized for the answer at once.
fn write_review(review: &ReviewOut) -> serde_json::Result<Vec<u8>> {
    let patch_len = review.response.patch.as_ref().map_or(0, |p| p.get().len());
    let mut body = Vec::with_capacity(REVIEW_HEAD.len() + ANSWER_ROOM + patch_len);
    body.extend_from_slice(REVIEW_HEAD);
    serde_json::to_writer(&mut body, &review.response)?;
    body.push(b'}');
    Ok(body)
}

/// The same answer as a JSON value, for tools that print it (`check -o json`).
pub fn answer_json(subject: Subject, verdict: &Verdict) -> Value {
    review_out(subject, verdict)
        .and_then(serde_json::to_value)
        .unwrap_or(Value::Null)
}

/// An answer for a request that could not be decided: still a well-formed AdmissionReview that
/// echoes `apiVersion`, `kind` and whatever `uid` could be recovered.
pub fn refusal(http_status: u16, uid: &str, message: &str) -> Vec<u8> {
    let out = ReviewOut {
        api_version: API_VERSION,
        kind: REVIEW_KIND,
        response: ResponseOut {
            uid,
            allowed: false,
            status: Some(StatusOut {
                status: "Failure",
                code: http_status,
                message,
                reason: "InvalidRequest",
                details: None,
            }),
            patch: None,
            patch_type: None,
            audit_annotations: &BTreeMap::new(),
            warnings: &[],
        },
    };
    // Plain strings and numbers: serializing cannot fail.
    write_review(&out).unwrap_or_default()
}

/// The patch as JSON, then base64 in one pass. Streaming the JSON through a base64 writer kept
/// one copy fewer, but paid the writer's bookkeeping on each of serde's small writes: a fifth
/// of a mutation's CPU. The patch is bounded (the injector refuses pods with over 1 000
/// containers), so the extra copy is too.
fn encode_patch(patch: &json_patch::Patch) -> serde_json::Result<String> {
    use base64::Engine;
    let mut json = Vec::with_capacity(PATCH_ROOM);
    serde_json::to_writer(&mut json, patch)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(json))
}

/// Room for a patch's JSON at once: the bench pod's (two containers) takes about 460 bytes, and
/// serde_json's own start (128 bytes, doubled as it fills) reallocated it twice.
const PATCH_ROOM: usize = 1024;

/// `text` as a JSON string, quoted as it is: for text that needs no escaping (base64).
fn json_string(mut text: String) -> serde_json::Result<Box<RawValue>> {
    text.reserve_exact(2);
    text.insert(0, '"');
    text.push('"');
    RawValue::from_string(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Violation;

    #[test]
    fn the_patch_is_base64_of_its_json() {
        use base64::Engine;
        let patch: json_patch::Patch =
            serde_json::from_str(r#"[{"op": "add", "path": "/a/~1b", "value": [1]}]"#).unwrap();
        let encoded = encode_patch(&patch).unwrap();
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap();
        assert_eq!(
            serde_json::from_slice::<Value>(&decoded).unwrap(),
            serde_json::to_value(&patch).unwrap()
        );
    }

    /// The answers written with their head copied and their patch quoted as it is are byte for
    /// byte what serde_json writes for the same answers.
    #[test]
    fn answers_are_what_serde_json_writes_for_them() {
        let subject = Subject {
            uid: "u-\"1\"",
            name: "p",
            group: "",
            kind: "Pod",
        };
        let mut denied = Verdict::deny(403, "Forbidden", "no \u{1} <way>").with_warning("w\n");
        if let Some(denial) = denied.denial.as_mut() {
            denial.causes.push(Violation::new("spec.x", "bad \"x\""));
        }
        let mut patched = Verdict::allow();
        patched.patch = Some(
            serde_json::from_str(r#"[{"op": "add", "path": "/a/~1b", "value": ["ü"]}]"#).unwrap(),
        );
        patched
            .audit_annotations
            .insert("k".to_owned(), "v".to_owned());
        for verdict in [Verdict::allow(), denied, patched] {
            let out = review_out(subject, &verdict).unwrap();
            if let Some(patch) = &out.response.patch {
                let base64 = encode_patch(verdict.patch.as_ref().unwrap()).unwrap();
                assert_eq!(patch.get(), serde_json::to_string(&base64).unwrap());
            }
            let written = answer(subject, &verdict).unwrap();
            assert_eq!(written, serde_json::to_vec(&out).unwrap());
            assert_eq!(
                answer_json(subject, &verdict),
                serde_json::from_slice::<Value>(&written).unwrap()
            );
        }
        let refused = refusal(400, "u", "bad \"body\"");
        let expected = concat!(
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":"#,
            r#"{"uid":"u","allowed":false,"status":{"status":"Failure","code":400,"#,
            r#""message":"bad \"body\"","reason":"InvalidRequest"}}}"#
        );
        assert_eq!(String::from_utf8(refused).unwrap(), expected);
    }

    #[test]
    fn answers_echo_the_envelope_and_carry_a_patch_type_only_with_a_patch() {
        let subject = Subject {
            uid: "u-1",
            name: "p",
            group: "",
            kind: "Pod",
        };
        let allowed = answer_json(subject, &Verdict::allow());
        assert_eq!(allowed["apiVersion"], API_VERSION);
        assert_eq!(allowed["kind"], REVIEW_KIND);
        assert_eq!(allowed["response"]["uid"], "u-1");
        assert!(allowed["response"].get("patchType").is_none());
        let refused: Value = serde_json::from_slice(&refusal(503, "u-2", "later")).unwrap();
        assert_eq!(refused["response"]["status"]["code"], 503);
        assert_eq!(refused["response"]["uid"], "u-2");
    }
}
