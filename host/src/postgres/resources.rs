//! The host side of the guest's Postgres resources, which the bindings name (`with:`): apart from
//! the interface's implementation, so that the bindings do not depend on it.

use std::sync::Arc;

use super::pool::PooledConnection;

/// The host side of a guest's `connection` resource: one pooled connection, held until the
/// guest drops the resource. Shared with queries still streaming rows when it is dropped.
pub struct PostgresConnection {
    pub(super) connection: Arc<PooledConnection>,
}

/// The host side of a guest's `connection-builder` resource.
pub struct PostgresConnectionBuilder {
    pub(super) address: String,
}
