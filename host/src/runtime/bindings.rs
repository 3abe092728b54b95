//! Host-side bindings of the `onething:scenario` world, generated from
//! `wit/` by wasmtime's `bindgen!`. Nothing outside `runtime` uses them: the
//! runtime converts to and from the host's own types at the boundary.

#![allow(missing_docs)]

wasmtime::component::bindgen!({
    path: "../wit",
    world: "plugin",
    imports: { default: async },
    exports: { default: async },
});

pub use onething::scenario::types as wit;
