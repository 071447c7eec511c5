//! The one AdmissionReview builder of the tests: a review as kube-apiserver sends it, for any
//! object, with the few things tests vary.

use serde_json::{json, Value};

use kuma_identity_webhook::api::Kind;

/// An AdmissionReview v1 under construction.
#[derive(Debug, Clone)]
pub struct Review {
    uid: String,
    kind: Kind,
    /// The request's kind, when a test sends an object to the wrong endpoint.
    claimed_kind: Option<String>,
    operation: String,
    namespace: Option<String>,
    name: String,
    username: String,
    object: Option<Value>,
    old_object: Option<Value>,
    dry_run: bool,
}

impl Review {
    /// A CREATE of `object`, whose `kind` (MeshIdentity when it names none), name and namespace
    /// the request repeats; uid `u-1`, user `admin`.
    pub fn create(object: Value) -> Self {
        let text = |pointer: &str| {
            object
                .pointer(pointer)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let kind = text("/kind")
            .and_then(|kind| Kind::from_name(&kind))
            .unwrap_or(Kind::MeshIdentity);
        Self {
            uid: "u-1".to_owned(),
            kind,
            claimed_kind: None,
            operation: "CREATE".to_owned(),
            namespace: text("/metadata/namespace"),
            name: text("/metadata/name").unwrap_or_default(),
            username: "admin".to_owned(),
            object: Some(object),
            old_object: None,
            dry_run: false,
        }
    }

    /// A CREATE of a MeshIdentity in `kuma-system`.
    pub fn meshidentity(object: Value) -> Self {
        let mut review = Self::create(object);
        review.kind = Kind::MeshIdentity;
        review.namespace = Some("kuma-system".to_owned());
        if review.name.is_empty() {
            review.name = "x".to_owned();
        }
        review
    }

    pub fn uid(mut self, uid: impl Into<String>) -> Self {
        self.uid = uid.into();
        self
    }

    pub fn operation(mut self, operation: impl Into<String>) -> Self {
        self.operation = operation.into();
        self
    }

    pub fn namespace(mut self, namespace: Option<String>) -> Self {
        self.namespace = namespace;
        self
    }

    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = username.into();
        self
    }

    pub fn object(mut self, object: Option<Value>) -> Self {
        self.object = object;
        self
    }

    pub fn old_object(mut self, old_object: Option<Value>) -> Self {
        self.old_object = old_object;
        self
    }

    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Claims another kind in `request.kind` than the object's (a misrouted request).
    pub fn claim_kind(mut self, kind: &str) -> Self {
        self.claimed_kind = Some(kind.to_owned());
        self
    }

    pub fn json(&self) -> Value {
        let (group, version) = (self.kind.group(), self.kind.version());
        let kind = self.claimed_kind.as_deref().unwrap_or(self.kind.name());
        let gvk = json!({"group": group, "version": version, "kind": kind});
        let gvr = json!({"group": group, "version": version, "resource": self.kind.plural()});
        let mut request = json!({
            "uid": self.uid,
            "kind": gvk,
            "resource": gvr,
            "requestKind": gvk,
            "requestResource": gvr,
            "name": self.name,
            "operation": self.operation,
            "userInfo": {
                "username": self.username,
                "groups": ["system:masters", "system:authenticated"]
            },
            "object": self.object,
            "oldObject": self.old_object,
            "dryRun": self.dry_run,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}
        });
        if let Some(namespace) = &self.namespace {
            request["namespace"] = json!(namespace);
        }
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
    }

    pub fn bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.json()).unwrap()
    }
}
