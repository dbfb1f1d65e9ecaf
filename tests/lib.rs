//! Cross-crate tests of the exchange, one integration-test binary per concern under `tests/`:
//!
//! - `gateway`, `surveys`, `postgres`: the end-to-end suites of the service (real TLS, HTTP,
//!   SQLite and PostgreSQL; simulated bureaus from `gateway::sim`);
//! - `schema_files`: every schema file in `schemas/` checked with validators that share no code
//!   with the gateway (`xmllint` for XSD, Python's `jsonschema` for JSON Schema), against the
//!   bureaus' sample messages and against what the adapters actually write;
//! - `hardening`: hostile clients (limits, timeouts, bodies before identity, revocation, memory);
//! - `faults`: nodes SIGKILLed and PostgreSQL restarted under load, every receipt accounted for;
//! - `layout`: the layering and no-cycle rules of `ARCHITECTURE.md`, read off the source.
