//! `spin:variables/variables@3.0.0`: a component's variables, resolved at start (`variables`).

use wasmtime::component::{Accessor, HasData};

use crate::bindings::variables_wit::{self, Error as VariablesError};
use crate::host_state::InstanceState;

/// Marker type through which the linker reaches the variables of an instance.
pub struct Variables;

impl HasData for Variables {
    type Data<'a> = &'a mut InstanceState;
}

impl variables_wit::Host for InstanceState {}

impl variables_wit::HostWithStore<InstanceState> for Variables {
    async fn get(accessor: &Accessor<InstanceState, Self>, name: String) -> Result<String, VariablesError> {
        accessor.with(|mut access| access.get().component().variables.get(&name))
    }
}
