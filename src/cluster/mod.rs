//! The cluster as decisions see it: a read-only [`ClusterView`], immutable [`Snapshot`]s of it,
//! the [`StateHandle`] the server reads the current one from, and where snapshots come from (a
//! file, or the Kubernetes API through [`watch`]).

mod snapshot;
pub mod watch;

pub use snapshot::{ClusterView, Snapshot, StateHandle};
