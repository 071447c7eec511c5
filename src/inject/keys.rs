//! The names the injection writes on pods (the keys it reads are in `crate::api`, since the
//! stored pods keep them).

pub use crate::api::{MIRROR_ANNOTATION, SPIRE_SUPPORT_KEY};

/// Name of the CSI volume carrying the SPIRE agent socket.
pub const VOLUME_NAME: &str = "kuma-spire-agent-socket";
