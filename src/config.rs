//! Settings the decisions depend on. The CLI fills these from flags and environment variables;
//! decision functions only ever see this struct.

/// How the workload label requirement reacts to pods that would break.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Enforcement {
    /// Refuse the request.
    #[default]
    Deny,
    /// Admit it, with a warning for each finding.
    Warn,
}

/// Where a pod's workload comes from when none of the workload labels is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum WorkloadFallback {
    /// No fallback: the pod has no workload.
    #[default]
    None,
    /// Upstream Kuma's behaviour: the service account name.
    ServiceAccount,
}

/// The Kuma major version the cluster runs: the rules that depend on `Mesh.spec.meshServices`
/// exist only in Kuma 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KumaVersion {
    /// Kuma 2.x (2.12+): MeshIdentities need `meshServices.mode: Exclusive`.
    #[default]
    #[value(name = "2")]
    V2,
    /// Kuma 3.x: `meshServices` is gone from the Mesh (kumahq/kuma#17476) and MeshIdentities are
    /// initialised in every mesh.
    #[value(name = "3")]
    V3,
}

impl KumaVersion {
    /// Whether a MeshIdentity's mesh must be in `Exclusive` MeshServices mode, and so may not
    /// leave it while identities exist.
    pub fn requires_exclusive_mesh_services(self) -> bool {
        self == Self::V2
    }
}

/// Users (from `userInfo.username`) that bypass the placement rules, as in upstream Kuma: the
/// garbage collector and storage migration must be able to act on misplaced objects.
pub const DEFAULT_PRIVILEGED_USERS: [&str; 2] = [
    "system:serviceaccount:kube-system:generic-garbage-collector",
    "system:serviceaccount:kube-system:storage-version-migrator-controller",
];

#[derive(Debug, Clone)]
pub struct Settings {
    /// Namespace MeshIdentities must live in (`KUMA_STORE_KUBERNETES_SYSTEM_NAMESPACE`).
    pub system_namespace: String,
    /// This zone's name (`KUMA_MULTIZONE_ZONE_NAME`), used for `.Zone` and `kuma.io/zone`.
    pub zone: String,
    /// Pod labels whose first non-empty value is the workload, in priority order.
    pub workload_labels: Vec<String>,
    pub workload_fallback: WorkloadFallback,
    pub enforcement: Enforcement,
    pub privileged_users: Vec<String>,
    pub kuma_version: KumaVersion,
    pub inject: crate::inject::InjectConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            system_namespace: "kuma-system".to_owned(),
            zone: "default".to_owned(),
            workload_labels: Vec::new(),
            workload_fallback: WorkloadFallback::None,
            enforcement: Enforcement::Deny,
            privileged_users: DEFAULT_PRIVILEGED_USERS.map(str::to_owned).to_vec(),
            kuma_version: KumaVersion::V2,
            inject: crate::inject::InjectConfig::default(),
        }
    }
}
