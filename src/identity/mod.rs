//! Which MeshIdentity a pod gets and the SPIFFE ID it renders: the pod seen as a dataplane, the
//! winner among the mesh's identities, the templates rendered, the ID checked.

pub mod dataplane;
pub mod render;
pub mod select;
pub mod spiffe;
