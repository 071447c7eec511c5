//! The cluster listed once, for `audit`: one paged list of each kind the decisions read, through
//! the same client construction as the watches, read-only and without a watch. Scoped as the
//! watches are (MeshIdentities in the system namespace only), so the RBAC the server is granted
//! is enough.

use kube::api::{Api, DynamicObject, ListParams};

use super::watch::api_resource;
use super::{Object, Snapshot};
use crate::api::Kind;

/// Objects asked for per page. The API server's own default page for kubectl is 500: large
/// enough that a 50 000-pod cluster takes a hundred requests, small enough that one page of pods
/// (a few MiB of JSON) does not weigh on the API server or on us.
pub const PAGE_SIZE: u32 = 500;

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("finding the Kubernetes API: {0}")]
    Config(#[from] kube::config::InferConfigError),
    #[error("creating the Kubernetes client: {0}")]
    Client(kube::Error),
    /// Includes `410 Gone` for a continue token that expired while paging: the list is no longer
    /// one consistent view, so nothing is judged from it.
    #[error("listing {plural}: {source}")]
    List {
        plural: &'static str,
        source: kube::Error,
    },
}

/// What the listing reports as it goes, for the command's stderr.
#[derive(Debug)]
pub enum Progress {
    /// A page arrived: objects of `plural` so far.
    Page { plural: &'static str, seen: usize },
    /// An object that does not decode, left out as the watches leave it out of the served state.
    Skipped {
        plural: &'static str,
        name: String,
        error: String,
    },
}

/// What to list.
#[derive(Debug, Clone)]
pub struct ListScope {
    /// MeshIdentities are only valid (and only granted) here.
    pub system_namespace: String,
    pub pods: PodScope,
}

/// Whose pods to list, as kubectl reads `-A` and `--namespace`.
#[derive(Debug, Clone)]
pub enum PodScope {
    All,
    Namespace(String),
    /// The namespace the kubeconfig context names (`default` without one).
    Context,
}

/// The cluster (as kubeconfig or the in-cluster environment names it) listed once, and the
/// namespace its context names.
pub async fn list_cluster(
    scope: &ListScope,
    progress: &mut dyn FnMut(Progress),
) -> Result<(Snapshot, String), ListError> {
    let config = kube::Config::infer().await?;
    let context_namespace = config.default_namespace.clone();
    let pod_namespace = match &scope.pods {
        PodScope::All => None,
        PodScope::Namespace(ns) => Some(ns.as_str()),
        PodScope::Context => Some(context_namespace.as_str()),
    };
    let client = kube::Client::try_from(config).map_err(ListError::Client)?;
    let mut snapshot = Snapshot::default();
    for kind in Kind::ALL {
        let resource = api_resource(kind);
        let namespace = match kind {
            Kind::MeshIdentity => Some(scope.system_namespace.as_str()),
            Kind::Pod => pod_namespace,
            Kind::Mesh | Kind::Namespace => None,
        };
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
            None => Api::all_with(client.clone(), &resource),
        };
        list_kind(&api, kind, &mut snapshot, progress).await?;
    }
    Ok((snapshot, context_namespace))
}

/// Every object of one kind, page by page, into `snapshot`.
async fn list_kind(
    api: &Api<DynamicObject>,
    kind: Kind,
    snapshot: &mut Snapshot,
    progress: &mut dyn FnMut(Progress),
) -> Result<(), ListError> {
    let plural = kind.plural();
    let mut params = ListParams::default().limit(PAGE_SIZE);
    let mut seen = 0;
    loop {
        let page = api
            .list(&params)
            .await
            .map_err(|source| ListError::List { plural, source })?;
        seen += page.items.len();
        for item in page.items {
            let name = item.metadata.name.clone().unwrap_or_default();
            let decoded = serde_json::to_value(item)
                .map_err(|e| e.to_string())
                .and_then(|value| Object::decode(kind, value).map_err(|e| e.to_string()));
            match decoded {
                Ok(object) => snapshot.insert(object),
                Err(error) => progress(Progress::Skipped {
                    plural,
                    name,
                    error,
                }),
            }
        }
        progress(Progress::Page { plural, seen });
        match page.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(()),
        }
    }
}
