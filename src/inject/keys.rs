//! The names the injection reads and writes on pods.

/// Label or annotation that switches injection per pod.
pub const SPIRE_SUPPORT_KEY: &str = "k8s.kuma.io/spire-support";
/// Name of the CSI volume carrying the SPIRE agent socket.
pub const VOLUME_NAME: &str = "kuma-spire-agent-socket";
/// Set by the kubelet on mirror pods of static pods; those cannot be changed
/// through the API, so mutating them would only produce a confusing diff.
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";
