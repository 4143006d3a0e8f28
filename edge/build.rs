//! Chooses the feature spec compiled into the worker: `FRESHET_FEATURES`
//! (a path, relative to this crate or absolute) or the example `../features.toml`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=FRESHET_FEATURES");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let chosen = std::env::var("FRESHET_FEATURES").unwrap_or_else(|_| "../features.toml".into());
    let path = manifest.join(chosen);
    println!("cargo:rerun-if-changed={}", path.display());
    let path = if path.is_file() {
        path
    } else {
        // Refusing to build would break every workspace build while the spec
        // is missing; an empty spec instead makes the worker answer
        // `misconfigured`, and a unit test fails loudly.
        println!(
            "cargo:warning=feature spec {} not found; compiling an empty spec",
            path.display()
        );
        let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default()).join("empty.toml");
        if let Err(e) = std::fs::write(&out, "") {
            println!("cargo:warning=cannot write {}: {e}", out.display());
        }
        out
    };
    println!("cargo:rustc-env=FRESHET_SPEC_PATH={}", path.display());
}
