//! The committed canonical schema files equal what the Rust types generate.
//! Run with `BLESS=1` to rewrite them after changing the model.

use std::path::PathBuf;

use schemas::schema_files::{canonical_schema_files, render};

#[test]
fn committed_schema_files_match_the_types() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("canonical");
    let bless = std::env::var_os("BLESS").is_some();
    let mut stale = Vec::new();
    for file in canonical_schema_files() {
        let path = dir.join(file.file_name);
        let expected = render(&file);
        if bless {
            std::fs::write(&path, &expected).unwrap();
            continue;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != expected {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "schema files differ from the Rust types (run `BLESS=1 cargo test -p schemas` and review the diff): {stale:?}"
    );
}
