//! The read-only view of the cluster that every decision is made against.
//!
//! Decisions take `&dyn ClusterView`, so the same rules run against a file loaded at start-up
//! (quickstart, tests, the offline CLI) or against caches fed by Kubernetes watches.

use crate::api::{Labels, Mesh, MeshIdentity, PodInfo};
use crate::gotemplate::Template;
use crate::identity::render::{parse_template, ParsedTemplates, TemplateError};

/// Lookups decisions need. Implementations must answer from memory: no call may reach the
/// Kubernetes API while an admission request is being handled.
pub trait ClusterView: Send + Sync {
    fn mesh(&self, name: &str) -> Option<&Mesh>;
    /// Every MeshIdentity of `mesh`, in no particular order.
    fn identities_in_mesh(&self, mesh: &str) -> Vec<&MeshIdentity>;
    /// The parsed templates of `identity`, when it is one this view holds (one
    /// [`identities_in_mesh`](Self::identities_in_mesh) returned), parsed once when it was stored.
    fn templates_of(&self, identity: &MeshIdentity) -> Option<&ParsedTemplates>;
    /// `source` as parsed, when a stored identity has a template of exactly this text (what
    /// parsing it again would give).
    fn parsed_template(&self, source: &str) -> Option<&Result<Template, TemplateError>>;
    /// `source` parsed: a stored identity's parse of the same text when there is one, else
    /// parsed now.
    fn template(&self, source: &str) -> Result<Template, TemplateError> {
        self.parsed_template(source)
            .cloned()
            .unwrap_or_else(|| parse_template(source))
    }
    fn namespace_labels(&self, namespace: &str) -> Option<&Labels>;
    /// Every known pod.
    fn pods(&self) -> Box<dyn Iterator<Item = &PodInfo> + '_>;
    /// The pods whose own label `key` is `value` (derived dataplane labels are not indexed).
    fn pods_labelled(&self, key: &str, value: &str) -> Box<dyn Iterator<Item = &PodInfo> + '_>;
    /// [`pods`](Self::pods), each with its group: pods of one group differ only by name, so any
    /// decision about one (which never reads a pod's name) holds for all of them.
    fn pods_grouped(&self) -> Box<dyn Iterator<Item = (&PodInfo, usize)> + '_>;
    /// [`pods_labelled`](Self::pods_labelled), each with its group.
    fn pods_labelled_grouped(
        &self,
        key: &str,
        value: &str,
    ) -> Box<dyn Iterator<Item = (&PodInfo, usize)> + '_>;
    /// Group numbers are below this.
    fn pod_group_bound(&self) -> usize;
}
