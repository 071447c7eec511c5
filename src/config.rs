//! Settings the decisions depend on, and their defaults, written once. The command line fills
//! them from flags and environment variables (upstream Kuma's names where it has one); decision
//! functions only ever see these structs.

use std::fmt;
use std::str::FromStr;

/// Where MeshIdentities live (`KUMA_STORE_KUBERNETES_SYSTEM_NAMESPACE`), as in Kuma.
pub const DEFAULT_SYSTEM_NAMESPACE: &str = "kuma-system";
/// The zone name a single-zone Kuma uses (`KUMA_MULTIZONE_ZONE_NAME`).
pub const DEFAULT_ZONE: &str = "default";
/// Where Kuma mounts the SPIRE agent socket directory by default.
pub const DEFAULT_SPIRE_MOUNT_PATH: &str = "/run/spire/sockets";
/// The socket's file name in that directory, as the SPIRE agent names it by default.
pub const DEFAULT_SPIRE_SOCKET_FILE_NAME: &str = "socket";
/// Users (from `userInfo.username`) that bypass the placement rules, as in upstream Kuma: the
/// garbage collector and storage migration must be able to act on misplaced objects.
pub const DEFAULT_PRIVILEGED_USERS: [&str; 2] = [
    "system:serviceaccount:kube-system:generic-garbage-collector",
    "system:serviceaccount:kube-system:storage-version-migrator-controller",
];

/// A setting's value that is not one of its choices.
#[derive(Debug, thiserror::Error)]
#[error("unknown value {value:?}; expected one of: {choices}")]
pub struct UnknownChoice {
    value: String,
    choices: &'static str,
}

/// Settings with a fixed set of spellings.
macro_rules! choices {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The spelling flags and environment variables use.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownChoice;

            fn from_str(value: &str) -> Result<Self, UnknownChoice> {
                match value {
                    $($text => Ok(Self::$variant),)+
                    _ => Err(UnknownChoice {
                        value: value.to_owned(),
                        choices: concat!($($text, ", "),+).trim_end_matches(", "),
                    }),
                }
            }
        }
    };
}

choices! {
    /// How the workload label requirement reacts to pods that would break.
    Enforcement {
        /// Refuse the request.
        #[default]
        Deny = "deny",
        /// Admit it, with a warning for each finding.
        Warn = "warn",
    }
}

choices! {
    /// Where a pod's workload comes from when none of the workload labels is set.
    WorkloadFallback {
        /// No fallback: the pod has no workload.
        #[default]
        None = "none",
        /// Upstream Kuma's behaviour: the service account name.
        ServiceAccount = "service-account",
    }
}

choices! {
    /// The Kuma major version the cluster runs: the rules that depend on
    /// `Mesh.spec.meshServices` exist only in Kuma 2.
    KumaVersion {
        /// Kuma 2.x (2.12+): MeshIdentities need `meshServices.mode: Exclusive`.
        #[default]
        V2 = "2",
        /// Kuma 3.x: `meshServices` is gone from the Mesh (kumahq/kuma#17476) and
        /// MeshIdentities are initialised in every mesh.
        V3 = "3",
    }
}

impl KumaVersion {
    /// Whether a MeshIdentity's mesh must be in `Exclusive` MeshServices mode, and so may not
    /// leave it while identities exist.
    pub fn requires_exclusive_mesh_services(self) -> bool {
        self == Self::V2
    }
}

/// Everything decisions read.
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
    pub inject: InjectConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            system_namespace: DEFAULT_SYSTEM_NAMESPACE.to_owned(),
            zone: DEFAULT_ZONE.to_owned(),
            workload_labels: Vec::new(),
            workload_fallback: WorkloadFallback::default(),
            enforcement: Enforcement::default(),
            privileged_users: DEFAULT_PRIVILEGED_USERS.map(str::to_owned).to_vec(),
            kuma_version: KumaVersion::default(),
            inject: InjectConfig::default(),
        }
    }
}

/// The SPIRE socket injection's settings.
#[derive(Debug, Clone)]
pub struct InjectConfig {
    /// From KUMA_RUNTIME_KUBERNETES_INJECTOR_SPIRE_ENABLED: inject into every pod unless it
    /// opts out.
    pub enabled_by_default: bool,
    /// Where the socket directory is mounted in target containers.
    pub mount_path: String,
    /// File name of the agent socket inside `mount_path`.
    pub socket_file_name: String,
}

impl Default for InjectConfig {
    fn default() -> Self {
        Self {
            enabled_by_default: false,
            mount_path: DEFAULT_SPIRE_MOUNT_PATH.to_owned(),
            socket_file_name: DEFAULT_SPIRE_SOCKET_FILE_NAME.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn choices_read_their_spellings_and_name_them_when_refusing() {
        assert_eq!("warn".parse::<Enforcement>().unwrap(), Enforcement::Warn);
        assert_eq!(
            "service-account".parse::<WorkloadFallback>().unwrap(),
            WorkloadFallback::ServiceAccount
        );
        assert_eq!("3".parse::<KumaVersion>().unwrap(), KumaVersion::V3);
        let refused = "Deny".parse::<Enforcement>().unwrap_err().to_string();
        assert_eq!(
            refused,
            "unknown value \"Deny\"; expected one of: deny, warn"
        );
        assert_eq!(KumaVersion::default().to_string(), "2");
    }
}
