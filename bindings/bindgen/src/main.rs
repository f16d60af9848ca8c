//! `uniffi-bindgen`, built from the same uniffi version as `fieldcast-ffi`, so that the generated
//! Kotlin and Swift always match the library's scaffolding (`make bindings`).

fn main() {
    uniffi::uniffi_bindgen_main()
}
