//! The cluster as decisions see it: a read-only [`ClusterView`], immutable [`Snapshot`]s of it,
//! the [`StateHandle`] the server reads the current one from, and where snapshots come from: a
//! [`file`] of manifests, or the Kubernetes API through [`watch`] (or [`list`]ed once).

pub mod file;
mod handle;
pub mod list;
mod object;
mod pods;
mod snapshot;
mod view;
pub mod watch;

pub use file::LoadError;
pub use handle::StateHandle;
pub use object::{Object, ObjectError};
pub use snapshot::Snapshot;
pub use view::ClusterView;
