//! Reading an AdmissionReview: typed fields that borrow the objects as raw JSON and skip what no
//! decision needs without building it, so a body that is no AdmissionReview (a megabytes-long
//! array, say) is refused without growing; objects become JSON values only once the envelope is
//! valid, and only those the decision reads.
//!
//! A body that is what it should be is read in one pass by [`super::single_pass`]; this reading
//! is for every other body, and gives the refusals their messages.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::verdict::Operation;

use super::pruned::{decode_pruned, Prune};

/// The only AdmissionReview version kube-apiserver is configured to send us.
pub const API_VERSION: &str = "admission.k8s.io/v1";
pub const REVIEW_KIND: &str = "AdmissionReview";

/// `{apiVersion, kind, request}`: the request stays raw JSON until the envelope is known good.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "apiVersion", default, borrow)]
    api_version: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    request: Option<&'a RawValue>,
}

/// The fields of `request` decisions and responses use, the objects held as `O` (raw JSON here,
/// values decoded already in [`super::single_pass`]); everything else (`resource`, `options`,
/// `userInfo.extra`, ...) is skipped unbuilt.
#[derive(Deserialize)]
// Not the derived `O: Default`: the objects' default is `None`.
#[serde(rename_all = "camelCase", bound(deserialize = "O: Deserialize<'de>"))]
pub struct RequestFields<O> {
    pub uid: String,
    pub kind: GroupVersionKind,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    pub operation: Operation,
    pub user_info: UserInfo,
    #[serde(default)]
    pub object: Option<O>,
    #[serde(default)]
    pub old_object: Option<O>,
    #[serde(default)]
    pub dry_run: Option<bool>,
}

/// The request with its objects still raw JSON.
pub type RawRequest<'a> = RequestFields<&'a RawValue>;

/// An object as a request holds it, and how it becomes what the decision reads.
pub trait HeldObject: Sized {
    /// The object as a JSON value without what `unread` prunes, when `read`; `None` when absent,
    /// null or unread.
    fn into_read(
        held: Option<Self>,
        read: bool,
        unread: &[Prune],
    ) -> serde_json::Result<Option<Value>>;
}

impl HeldObject for &RawValue {
    fn into_read(
        held: Option<Self>,
        read: bool,
        unread: &[Prune],
    ) -> serde_json::Result<Option<Value>> {
        decode_object(held, read, unread)
    }
}

/// Decoded, pruned and left out when unread while the body was read.
impl HeldObject for Value {
    fn into_read(held: Option<Self>, read: bool, _: &[Prune]) -> serde_json::Result<Option<Value>> {
        Ok(held.filter(|_| read))
    }
}

#[derive(Deserialize)]
pub struct GroupVersionKind {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub kind: String,
}

#[derive(Deserialize)]
pub struct UserInfo {
    #[serde(default)]
    pub username: Option<String>,
}

/// Only `uid`, for answering a request that does not decode.
#[derive(Deserialize)]
struct UidOnly {
    #[serde(default)]
    uid: Option<String>,
}

/// Why a body is no AdmissionReview this server can read, and the `uid` it could still recover.
#[derive(Debug)]
pub struct Unreadable {
    pub uid: String,
    pub message: String,
}

/// The envelope read in one pass with its request's fields, for the body that is what it should
/// be; anything else is read again by [`open_checked`] for the exact error.
#[derive(Deserialize)]
struct WellFormed<'a> {
    #[serde(rename = "apiVersion", borrow)]
    api_version: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    request: RawRequest<'a>,
}

/// Reads the envelope and the request's fields; the objects are left raw.
pub fn open(body: &[u8]) -> Result<RawRequest<'_>, Unreadable> {
    // The request is read once here instead of being delimited first and read second: a third
    // fewer passes over a body that is mostly its objects.
    match serde_json::from_slice::<WellFormed>(body) {
        Ok(envelope) if envelope.api_version == API_VERSION && envelope.kind == REVIEW_KIND => {
            Ok(envelope.request)
        }
        _ => open_checked(body),
    }
}

/// [`open`] step by step: the envelope, then its request, each failure with its own message and
/// whatever `uid` can be recovered.
fn open_checked(body: &[u8]) -> Result<RawRequest<'_>, Unreadable> {
    let envelope: Envelope = serde_json::from_slice(body).map_err(|e| Unreadable {
        uid: recover_uid(body),
        message: format!("malformed AdmissionReview: {e}"),
    })?;
    let raw_request = envelope.request.filter(|r| r.get() != "null");
    let uid_of_request = || {
        raw_request
            .and_then(|raw| serde_json::from_str::<UidOnly>(raw.get()).ok())
            .and_then(|r| r.uid)
            .unwrap_or_default()
    };
    let (api_version, kind) = (envelope.api_version.as_deref(), envelope.kind.as_deref());
    if api_version != Some(API_VERSION) || kind != Some(REVIEW_KIND) {
        return Err(Unreadable {
            uid: uid_of_request(),
            message: format!(
                "expected apiVersion {API_VERSION} kind {REVIEW_KIND}, got apiVersion {} kind {}",
                api_version.unwrap_or("<none>"),
                kind.unwrap_or("<none>")
            ),
        });
    }
    let Some(raw_request) = raw_request else {
        return Err(Unreadable {
            uid: String::new(),
            message: "AdmissionReview has no request".to_owned(),
        });
    };
    serde_json::from_str(raw_request.get()).map_err(|e| Unreadable {
        uid: uid_of_request(),
        message: format!("malformed AdmissionReview request: {e}"),
    })
}

/// The object as a JSON value without what `unread` prunes, when `read`; `None` when absent,
/// null or unread.
pub fn decode_object(
    raw: Option<&RawValue>,
    read: bool,
    unread: &[Prune],
) -> Result<Option<Value>, serde_json::Error> {
    match raw.filter(|raw| read && raw.get() != "null") {
        Some(raw) => decode_pruned(raw.get(), unread).map(Some),
        None => Ok(None),
    }
}

/// Finds `"uid": "..."` in a body that is not valid JSON (truncated, say), so even that answer
/// can be matched to its request.
fn recover_uid(body: &[u8]) -> String {
    // Only the head: the request's uid comes early, and a scan must not cost a copy of 7 MiB.
    let head = &body[..body.len().min(64 * 1024)];
    let text = String::from_utf8_lossy(head);
    // The request's uid, not an object's `metadata.uid` that may come before it in the body.
    let from = text.find("\"request\"").unwrap_or(0);
    let Some(at) = text[from..].find("\"uid\"").map(|at| from + at) else {
        return String::new();
    };
    let rest = text[at + 5..].trim_start();
    let Some(rest) = rest.strip_prefix(':') else {
        return String::new();
    };
    let Some(rest) = rest.trim_start().strip_prefix('"') else {
        return String::new();
    };
    rest.split('"')
        .next()
        .filter(|uid| uid.len() <= 64 && !uid.contains('\\'))
        .unwrap_or_default()
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_recovery() {
        assert_eq!(
            recover_uid(br#"{"request": {"uid": "abc-1", "kind": "#),
            "abc-1"
        );
        assert_eq!(recover_uid(br#"{"uid" :"x""#), "x");
        assert_eq!(
            recover_uid(br#"{"object": {"metadata": {"uid": "obj"}}, "request": {"uid": "req", "#),
            "req"
        );
        assert_eq!(recover_uid(b"garbage"), "");
        assert_eq!(recover_uid(br#"{"uid": 5}"#), "");
    }

    /// A body that is no AdmissionReview is refused with a message, whatever follows.
    #[test]
    fn bodies_of_the_wrong_shape_are_unreadable() {
        let zeros = format!("[{}0]", "0,".repeat(1 << 20));
        let wrapped = format!(r#"{{"junk": {zeros}, "apiVersion": "v1"}}"#);
        for body in [zeros.as_str(), wrapped.as_str(), "7", r#"{"request": 1}"#] {
            assert!(
                open(body.as_bytes()).is_err(),
                "{}",
                &body[..body.len().min(40)]
            );
        }
        let Err(unreadable) = open(br#"{"apiVersion": "v1", "request": {"uid": "u-1"}}"#) else {
            panic!("a review of the wrong version was read");
        };
        assert_eq!(unreadable.uid, "u-1");
    }
}
