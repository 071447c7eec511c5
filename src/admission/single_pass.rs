//! An AdmissionReview read in one pass: the envelope, the request's fields and the objects the
//! decision reads, those decoded straight into pruned values.
//!
//! Why: reading the objects raw first (as [`super::envelope`] does) and decoding them second
//! scanned every object twice. Of the 78.0k instructions a MeshIdentity review took (callgrind,
//! 811-byte bench body), reading the envelope with the objects raw took 16.8k and decoding them
//! again 17.2k; in one pass the review takes 69.2k (a pod mutation: 90.8k before, 79.9k after).
//!
//! Only for the body that is what it should be: anything this pass does not read (a wrong
//! version, a missing field, bytes that are not UTF-8, an object nested deeper than serde_json's
//! recursion limit allows when counted from the body's root rather than the object's) gives
//! `None`, and the body is read again the step-by-step way ([`super::envelope::open`]), so every
//! refusal and its message are what they were.
//!
//! Memory: an object read before the envelope turns out wrong (a request ahead of a wrong
//! `apiVersion`) is built, pruned, and dropped before the body is read again: no more than a
//! valid body of the same size builds, which is what the in-flight ceiling reserves for
//! (`server::inflight`).

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Unexpected, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::verdict::Operation;

use super::envelope::{decode_object, RequestFields, API_VERSION, REVIEW_KIND};
use super::pruned::Level;
use super::Webhook;

/// The request of `body` with the objects `webhook` reads decoded and pruned, the others left
/// out; `None` when the body needs the step-by-step reading.
pub fn open(body: &[u8], webhook: Webhook) -> Option<RequestFields<Value>> {
    // Checked whole, once: reading bytes, serde_json would check each string on its own (4k
    // instructions for the MeshIdentity review's, over twice this). It also keeps the answers
    // as they were: reading objects raw refused any that is not UTF-8 even in parts left out,
    // and a body that is not goes the step-by-step way.
    let text = std::str::from_utf8(body).ok()?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let request = AsMap(Review { webhook })
        .deserialize(&mut deserializer)
        .ok()?;
    deserializer.end().ok()?;
    Some(request)
}

/// The envelope's keys, as `envelope::WellFormed` reads them.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum EnvelopeKey {
    ApiVersion,
    Kind,
    Request,
    #[serde(other)]
    Other,
}

/// The request's keys, as [`RequestFields`] reads them.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum RequestKey {
    Uid,
    Kind,
    Name,
    Namespace,
    Operation,
    UserInfo,
    Object,
    OldObject,
    DryRun,
    #[serde(other)]
    Other,
}

/// A seed that reads a JSON object with the visitor it wraps (the envelope's and the request's).
struct AsMap<V>(V);

impl<'de, V: Visitor<'de>> DeserializeSeed<'de> for AsMap<V> {
    type Value = V::Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        deserializer.deserialize_map(self.0)
    }
}

/// `{apiVersion, kind, request}` with the request read for `webhook`.
struct Review {
    webhook: Webhook,
}

impl<'de> Visitor<'de> for Review {
    type Value = RequestFields<Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an AdmissionReview")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut version, mut kind, mut request) = (None, None, None);
        while let Some(key) = map.next_key()? {
            match key {
                EnvelopeKey::ApiVersion => {
                    once(&mut version, "apiVersion", || {
                        map.next_value_seed(Exactly(API_VERSION))
                    })?;
                }
                EnvelopeKey::Kind => {
                    once(&mut kind, "kind", || {
                        map.next_value_seed(Exactly(REVIEW_KIND))
                    })?;
                }
                EnvelopeKey::Request => {
                    let request_seed = AsMap(Request {
                        webhook: self.webhook,
                    });
                    once(&mut request, "request", || {
                        map.next_value_seed(request_seed)
                    })?;
                }
                EnvelopeKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        required(version, "apiVersion")?;
        required(kind, "kind")?;
        required(request, "request")
    }
}

/// A string that must be exactly this one: the envelope's `apiVersion` and `kind`.
struct Exactly(&'static str);

impl<'de> DeserializeSeed<'de> for Exactly {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for Exactly {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        if v == self.0 {
            Ok(())
        } else {
            Err(E::invalid_value(Unexpected::Str(v), &self))
        }
    }
}

/// The request's fields, its objects decoded as `webhook` reads them.
struct Request {
    webhook: Webhook,
}

/// An object as read before the operation (and so whether the decision reads it) is known.
enum Held<'de> {
    /// The operation was known: decoded if read, left out if not.
    Settled(Option<Value>),
    /// The operation came later: kept raw so an unread object is never built.
    Raw(Option<&'de RawValue>),
}

impl<'de> Visitor<'de> for Request {
    type Value = RequestFields<Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an admission request")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut uid, mut kind, mut name, mut namespace) = (None, None, None, None);
        let (mut operation, mut user_info, mut dry_run) = (None, None, None);
        let (mut object, mut old_object) = (None, None);
        while let Some(key) = map.next_key()? {
            match key {
                RequestKey::Uid => once(&mut uid, "uid", || map.next_value())?,
                RequestKey::Kind => once(&mut kind, "kind", || map.next_value())?,
                RequestKey::Name => once(&mut name, "name", || map.next_value())?,
                RequestKey::Namespace => once(&mut namespace, "namespace", || map.next_value())?,
                RequestKey::Operation => once(&mut operation, "operation", || map.next_value())?,
                RequestKey::UserInfo => once(&mut user_info, "userInfo", || map.next_value())?,
                RequestKey::DryRun => once(&mut dry_run, "dryRun", || map.next_value())?,
                RequestKey::Object => {
                    let read = operation.map(|op| self.webhook.reads(op).0);
                    once(&mut object, "object", || self.hold(&mut map, read))?;
                }
                RequestKey::OldObject => {
                    let read = operation.map(|op| self.webhook.reads(op).1);
                    once(&mut old_object, "oldObject", || self.hold(&mut map, read))?;
                }
                RequestKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let operation: Operation = required(operation, "operation")?;
        let (reads_object, reads_old) = self.webhook.reads(operation);
        Ok(RequestFields {
            uid: required(uid, "uid")?,
            kind: required(kind, "kind")?,
            name: name.unwrap_or_default(),
            namespace: namespace.flatten(),
            operation,
            user_info: required(user_info, "userInfo")?,
            object: self.settle(object, reads_object)?,
            old_object: self.settle(old_object, reads_old)?,
            dry_run: dry_run.flatten(),
        })
    }
}

impl Request {
    /// The next object: decoded and pruned when `read`, skipped unbuilt when not, raw while
    /// unknown.
    fn hold<'de, A: MapAccess<'de>>(
        &self,
        map: &mut A,
        read: Option<bool>,
    ) -> Result<Held<'de>, A::Error> {
        Ok(match read {
            Some(true) => {
                let value = map.next_value_seed(Level::root(self.webhook.unread()))?;
                Held::Settled(Some(value).filter(|value| !value.is_null()))
            }
            Some(false) => Held::Settled(map.next_value::<IgnoredAny>().map(|_| None)?),
            None => Held::Raw(map.next_value()?),
        })
    }

    /// What the decision reads of an object once the operation is known.
    fn settle<E: de::Error>(&self, held: Option<Held>, read: bool) -> Result<Option<Value>, E> {
        match held {
            None => Ok(None),
            Some(Held::Settled(value)) => Ok(value),
            Some(Held::Raw(raw)) => {
                decode_object(raw, read, self.webhook.unread()).map_err(E::custom)
            }
        }
    }
}

/// Fills `slot` with what `read` reads, refusing a key seen twice as the derived readers do.
fn once<T, E: de::Error>(
    slot: &mut Option<T>,
    key: &'static str,
    read: impl FnOnce() -> Result<T, E>,
) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(key));
    }
    *slot = Some(read()?);
    Ok(())
}

fn required<T, E: de::Error>(slot: Option<T>, key: &'static str) -> Result<T, E> {
    slot.ok_or_else(|| E::missing_field(key))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::admission::envelope::{self, HeldObject};

    /// What a decision and its answer see of a request.
    fn seen<O: HeldObject>(request: RequestFields<O>, webhook: Webhook) -> Value {
        let (reads_object, reads_old) = webhook.reads(request.operation);
        let read = |held, read| O::into_read(held, read, webhook.unread()).unwrap();
        json!({
            "uid": request.uid,
            "kind": [request.kind.group, request.kind.kind],
            "name": request.name,
            "namespace": request.namespace,
            "operation": request.operation.as_str(),
            "username": request.user_info.username,
            "dryRun": request.dry_run,
            "object": read(request.object, reads_object),
            "oldObject": read(request.old_object, reads_old),
        })
    }

    /// The step-by-step reading, which answers whatever one pass does not read.
    fn step_by_step(body: &str, webhook: Webhook) -> Value {
        match envelope::open(body.as_bytes()) {
            Ok(request) => seen(request, webhook),
            Err(unreadable) => panic!("{}: {}", unreadable.message, body),
        }
    }

    fn review(request: &str) -> String {
        format!(
            r#"{{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {request}}}"#
        )
    }

    fn nested(depth: usize) -> String {
        format!(r#"{{"spec": {}1{}}}"#, "[".repeat(depth), "]".repeat(depth))
    }

    const OBJECT: &str = r#"{"metadata": {"name": "x", "managedFields": [{"m": 1}],
        "labels": {"a": "b"}}, "spec": {"serviceAccountName": "sa", "containers": [{"name": "c"}],
        "provider": {"type": "Bundled", "extension": {"config": {"deep": [1, 2]}}}},
        "status": {"phase": "Pending"}}"#;

    #[test]
    fn one_pass_reads_what_the_step_by_step_reading_reads() {
        let head =
            r#""uid": "u-1", "kind": {"group": "", "kind": "Pod"}, "userInfo": {"username": "me"}"#;
        let deep = nested(120);
        let bodies = [
            include_str!("../../benches/https/meshidentity-review.json").to_owned(),
            include_str!("../../benches/https/pod-review.json").to_owned(),
            // The operation before the objects, as kube-apiserver writes it, and after them.
            review(&format!(
                r#"{{{head}, "operation": "CREATE", "object": {OBJECT}}}"#
            )),
            review(&format!(
                r#"{{{head}, "object": {OBJECT}, "operation": "CREATE"}}"#
            )),
            review(&format!(
                r#"{{{head}, "operation": "UPDATE", "object": {OBJECT}, "oldObject": {OBJECT}}}"#
            )),
            review(&format!(
                r#"{{"oldObject": {OBJECT}, {head}, "object": {OBJECT}, "operation": "UPDATE"}}"#
            )),
            // Objects no decision reads, before and after the operation.
            review(&format!(
                r#"{{{head}, "operation": "DELETE", "oldObject": {OBJECT}}}"#
            )),
            review(&format!(
                r#"{{{head}, "oldObject": {OBJECT}, "operation": "CONNECT"}}"#
            )),
            // Null and absent objects, null optional fields.
            review(&format!(
                r#"{{{head}, "operation": "UPDATE", "object": null, "namespace": null}}"#
            )),
            review(&format!(
                r#"{{{head}, "object": null, "oldObject": null, "operation": "CREATE",
                "name": "n", "namespace": "ns", "dryRun": true}}"#
            )),
            // Deep, yet within the recursion limit counted from the body's root.
            review(&format!(
                r#"{{{head}, "operation": "CREATE", "object": {deep}}}"#
            )),
            // The envelope's keys in another order, escaped, and keys no one reads.
            format!(
                r#"{{"request": {{{head}, "operation": "CREATE", "object": {OBJECT}, "options": {{}}}},
                "junk": [1], "kind": "AdmissionReview", "apiVersion": "admission.k8s.io\/v1"}}"#
            ),
        ];
        for body in &bodies {
            for webhook in Webhook::ALL {
                let one_pass = open(body.as_bytes(), webhook).map(|r| seen(r, webhook));
                assert_eq!(
                    one_pass,
                    Some(step_by_step(body, webhook)),
                    "{webhook:?} {body}"
                );
            }
        }
    }

    /// Whatever one pass does not read is left to the step-by-step reading, which decodes an
    /// object nested to its limit from the object's root, or answers with its own message.
    #[test]
    fn the_rest_is_left_to_the_step_by_step_reading() {
        let head = r#""uid": "u-1", "kind": {"group": "", "kind": "Pod"}, "userInfo": {}"#;
        let deep = nested(126);
        let too_deep = review(&format!(
            r#"{{{head}, "operation": "CREATE", "object": {deep}}}"#
        ));
        assert!(open(too_deep.as_bytes(), Webhook::ValidatePod).is_none());
        let object = &step_by_step(&too_deep, Webhook::ValidatePod)["object"];
        assert_eq!(object, &serde_json::from_str::<Value>(&deep).unwrap());
        let mut not_utf8 = review(&format!(
            r#"{{{head}, "operation": "DELETE", "oldObject": {{"a": "?"}}}}"#
        ))
        .into_bytes();
        let question_mark = not_utf8.iter().rposition(|&b| b == b'?').unwrap();
        not_utf8[question_mark] = 0xff;
        let refused = [
            review(&format!(
                r#"{{{head}, "operation": "CREATE", "uid": "again"}}"#
            ))
            .into_bytes(),
            review(r#"{"kind": {"kind": "Pod"}, "operation": "CREATE", "userInfo": {}}"#)
                .into_bytes(),
            review(&format!(r#"{{{head}, "operation": "CREATE"}}"#))
                .replace("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
                .into_bytes(),
            review(&format!(r#"[{{{head}, "operation": "CREATE"}}]"#)).into_bytes(),
            not_utf8,
        ];
        for body in refused {
            assert!(open(&body, Webhook::ValidatePod).is_none(), "{body:?}");
            assert!(envelope::open(&body).is_err(), "{body:?}");
        }
    }
}
