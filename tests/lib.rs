//! Cross-crate tests of the exchange, one integration-test binary per concern under `tests/`.
//!
//! `schema_files` checks every schema file in `schemas/` with validators that share no code with
//! the gateway (`xmllint` for XSD, Python's `jsonschema` for JSON Schema), against the bureaus'
//! sample messages and against what the adapters actually write.
