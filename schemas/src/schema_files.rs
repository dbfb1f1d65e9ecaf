//! The machine-readable JSON Schema files of the canonical model, generated from the Rust types.
//!
//! The files under `schemas/canonical/` are committed so that bureau developers can read and
//! validate against them without Rust; a test regenerates them and fails on any difference
//! (`BLESS=1` rewrites them), so they cannot drift from the types.

use schemars::generate::SchemaSettings;

use crate::model::Event;
use crate::survey::SurveyResult;

/// One canonical schema file: its name under `schemas/canonical/` and its content.
pub struct SchemaFile {
    /// The file name, e.g. `event.schema.json`.
    pub file_name: &'static str,
    /// The schema document.
    pub schema: serde_json::Value,
}

fn generate<T: schemars::JsonSchema>(id: &str) -> serde_json::Value {
    let generator = SchemaSettings::draft2020_12().into_generator();
    let mut schema = generator.into_root_schema_for::<T>().to_value();
    if let Some(object) = schema.as_object_mut() {
        object.insert("$id".into(), id.into());
    }
    schema
}

/// Every canonical schema file.
pub fn canonical_schema_files() -> Vec<SchemaFile> {
    vec![
        SchemaFile {
            file_name: "event.schema.json",
            schema: generate::<Event>("urn:sh-approval-exchange:canonical:event"),
        },
        SchemaFile {
            file_name: "survey-result.schema.json",
            schema: generate::<SurveyResult>("urn:sh-approval-exchange:canonical:survey-result"),
        },
    ]
}

/// Renders a schema file exactly as committed (pretty JSON, trailing newline).
pub fn render(file: &SchemaFile) -> String {
    let mut text = serde_json::to_string_pretty(&file.schema).unwrap_or_default();
    text.push('\n');
    text
}
