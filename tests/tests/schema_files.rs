//! Every bureau schema file and the canonical event schema, checked by independent validators
//! against real messages: the committed samples, what each adapter encodes, and generated
//! traffic. This keeps the published schema files from drifting from what the adapters read and
//! write.
//!
//! The validators are external programs: `xmllint` (Debian `libxml2-utils`) and Python's
//! `jsonschema`. On a developer machine without them the test says it skipped and why; under CI
//! (`CI` set) a missing validator fails the test.

use std::path::{Path, PathBuf};
use std::process::Command;

use adapters::{Adapter, Syntax};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A fresh scratch folder for one test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("exchange-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch folder");
    dir
}

/// Whether a validator is available; without it the check is skipped loudly, except in CI.
fn available(program: &str, probe: &[&str], install: &str) -> bool {
    let ok = Command::new(program)
        .args(probe)
        .output()
        .is_ok_and(|out| out.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is required in CI ({install})"
        );
        eprintln!("SKIPPED: schema validation with {program}: not installed ({install})");
    }
    ok
}

fn run(command: &mut Command) {
    let output = command.output().expect("validator runs");
    assert!(
        output.status.success(),
        "validator rejected files:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Writes every message the adapter reads or writes into `dir`: its valid samples, the encoding
/// of every event they carry, 30 generated messages, 20 survey notices and 20 each of joint-case
/// and deadline notices.
fn messages_of(adapter: &dyn Adapter, dir: &Path, extension: &str) -> Vec<PathBuf> {
    let samples = repo()
        .join("schemas/bureaus")
        .join(adapter.bureau().as_str())
        .join("valid");
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    for entry in std::fs::read_dir(&samples).expect("valid samples") {
        let body = std::fs::read(entry.expect("entry").path()).expect("sample");
        for event in adapter
            .decode(&body, adapter.format().media_type)
            .expect("valid sample decodes")
        {
            bodies.push(adapter.encode(&event).expect("encodes").body);
        }
        bodies.push(body);
    }
    let mut rng = fastrand::Rng::with_seed(2022);
    for _ in 0..30 {
        bodies.push(adapter.sample(&mut rng).body);
    }
    // Survey notices (multi-survey-in-one), in the bureau's own format.
    let mut rng = fastrand::Rng::with_seed(2023);
    for _ in 0..20 {
        let event = adapters::sample::survey_event(&mut rng);
        bodies.push(adapter.encode(&event).expect("survey notice encodes").body);
    }
    // Joint-case, deadline, credit-list and credit-match notices, in the bureau's own format.
    let mut rng = fastrand::Rng::with_seed(2024);
    for _ in 0..20 {
        for event in [
            adapters::sample::joint_event(&mut rng),
            adapters::sample::deadline_event(&mut rng),
            adapters::sample::credit_event(&mut rng),
            adapters::sample::credit_match_event(&mut rng),
        ] {
            bodies.push(adapter.encode(&event).expect("notice encodes").body);
        }
    }
    bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let path = dir.join(format!("{}-{i:03}.{extension}", adapter.bureau()));
            std::fs::write(&path, body).expect("write message");
            path
        })
        .collect()
}

#[test]
fn bureau_messages_validate_against_their_xsd() {
    if !available("xmllint", &["--version"], "apt-get install libxml2-utils") {
        return;
    }
    let dir = scratch("xsd");
    let mut checked = 0;
    for adapter in adapters::ALL {
        if !matches!(adapter.format().syntax, Syntax::Xml { .. }) {
            continue;
        }
        let schema = repo()
            .join("schemas/bureaus")
            .join(adapter.bureau().as_str())
            .join("message.xsd");
        let files = messages_of(*adapter, &dir, "xml");
        run(Command::new("xmllint")
            .args(["--noout", "--schema"])
            .arg(&schema)
            .args(&files));
        checked += 1;
    }
    assert!(checked >= 1, "no XML adapter checked");
}

#[test]
fn bureau_messages_validate_against_their_json_schema() {
    if !available(
        "python3",
        &["-c", "import jsonschema"],
        "pip install jsonschema",
    ) {
        return;
    }
    let dir = scratch("json-schema");
    for adapter in adapters::ALL {
        if adapter.format().syntax != Syntax::Json {
            continue;
        }
        let schema = repo()
            .join("schemas/bureaus")
            .join(adapter.bureau().as_str())
            .join("message.schema.json");
        let files = messages_of(*adapter, &dir, "json");
        run(Command::new("python3")
            .arg(repo().join("tests/validate_json.py"))
            .arg(&schema)
            .args(&files));
    }
}

#[test]
fn canonical_events_validate_against_the_canonical_schema() {
    if !available(
        "python3",
        &["-c", "import jsonschema"],
        "pip install jsonschema",
    ) {
        return;
    }
    let dir = scratch("canonical");
    let mut rng = fastrand::Rng::with_seed(9);
    let mut files = Vec::new();
    for adapter in adapters::ALL {
        let survey = adapters::sample::survey_event(&mut rng);
        let path = dir.join(format!("{}-survey.json", adapter.bureau()));
        std::fs::write(&path, serde_json::to_vec_pretty(&survey).expect("json")).expect("write");
        files.push(path);
        for i in 0..10 {
            let sample = adapter.sample(&mut rng);
            let events = adapter
                .decode(&sample.body, &sample.content_type)
                .expect("sample decodes");
            let path = dir.join(format!("{}-{i}.json", adapter.bureau()));
            std::fs::write(&path, serde_json::to_vec_pretty(&events[0]).expect("json"))
                .expect("write");
            files.push(path);
        }
    }
    run(Command::new("python3")
        .arg(repo().join("tests/validate_json.py"))
        .arg(repo().join("schemas/canonical/event.schema.json"))
        .args(&files));
}

/// The per-item results a batch receiver answers with (the gateway's own type, as the simulated
/// bureaus write it) validate against the published schema file, and a document the gateway
/// would refuse (an unknown key, no status) is refused by the validator too.
#[test]
fn batch_results_validate_against_their_schema_file() {
    use gateway::delivery::batch::{BatchResults, ItemResult};
    if !available(
        "python3",
        &["-c", "import jsonschema"],
        "pip install jsonschema",
    ) {
        return;
    }
    let dir = scratch("batch-results");
    let results = BatchResults {
        results: vec![
            ItemResult {
                message_id: "GH-20260216-0de2061a".into(),
                status: 200,
                detail: None,
            },
            ItemResult {
                message_id: "GH-20250819-251211a5".into(),
                status: 503,
                detail: Some("simulated outage of this item".into()),
            },
        ],
    };
    let good = dir.join("good.json");
    std::fs::write(&good, serde_json::to_vec(&results).expect("json")).expect("write");
    let schema = repo().join("schemas/api/batch-results.schema.json");
    run(Command::new("python3")
        .arg(repo().join("tests/validate_json.py"))
        .arg(&schema)
        .arg(&good));
    for (name, text) in [
        (
            "unknown-key",
            r#"{"results": [{"message_id": "a", "status": 200, "ok": true}]}"#,
        ),
        ("no-status", r#"{"results": [{"message_id": "a"}]}"#),
    ] {
        assert!(
            serde_json::from_str::<BatchResults>(text).is_err(),
            "the gateway reads {name}"
        );
        let path = dir.join(format!("{name}.json"));
        std::fs::write(&path, text).expect("write");
        let status = Command::new("python3")
            .arg(repo().join("tests/validate_json.py"))
            .arg(&schema)
            .arg(&path)
            .output()
            .expect("python3 runs")
            .status;
        assert!(!status.success(), "the schema accepts {name}");
    }
}

/// The validators are not vacuous: they reject a message that breaks the schema.
#[test]
fn validators_reject_a_message_that_breaks_the_schema() {
    if !available("xmllint", &["--version"], "apt-get install libxml2-utils") {
        return;
    }
    let dir = scratch("negative");
    let adapter = adapters::for_bureau(schemas::BureauId::Planning).expect("planning adapter");
    let mut rng = fastrand::Rng::with_seed(1);
    let body = String::from_utf8(adapter.sample(&mut rng).body).expect("UTF-8");
    let broken = body.replacen("<StageCode>", "<StageCode>9", 1);
    let path = dir.join("broken.xml");
    std::fs::write(&path, broken).expect("write");
    let status = Command::new("xmllint")
        .args(["--noout", "--schema"])
        .arg(repo().join("schemas/bureaus/planning/message.xsd"))
        .arg(&path)
        .output()
        .expect("xmllint runs")
        .status;
    assert!(!status.success(), "xmllint accepted a stage code 9x");
}

/// Invalid samples whose rule the bureau's own schema file states: the adapter and the external
/// validator must both refuse each one. Credit codes are upper case only (both sides), a key
/// given twice, `null` where the schema allows none, a number where it says string, integers
/// above its maximum, mixed content and characters XML 1.0 forbids. (Rules a schema cannot
/// state, such as check characters, are the adapters' alone; full-width forms, which the adapters
/// fold, are the one documented case where an adapter accepts what a pattern refuses.)
const REFUSED_BY_BOTH: &[(&str, &str)] = &[
    ("planning", "lower-case-credit-code.xml"),
    ("planning", "mixed-content-in-case-no.xml"),
    ("planning", "stray-text-between-elements.xml"),
    ("planning", "cdata-in-root.xml"),
    ("planning", "vertical-tab-in-case-no.xml"),
    ("planning", "character-reference-to-a-control.xml"),
    ("water", "lower-case-credit-code.xml"),
    ("water", "element-inside-project-name.xml"),
    ("water", "stray-text-in-header.xml"),
    ("water", "vertical-tab-reference-in-case-no.xml"),
    ("transport", "survey-agency-lower-case-credit-code.json"),
    ("transport", "survey-file-size-above-maximum.json"),
    ("transport", "sender-given-twice.json"),
    ("traffic_police", "lower-case-credit-code.json"),
    ("traffic_police", "sender-given-twice.json"),
    ("traffic_police", "sequence-given-twice-in-case.json"),
    ("civil_defense", "lower-case-credit-code.xml"),
    ("civil_defense", "cdata-in-batch.xml"),
    ("civil_defense", "element-inside-status.xml"),
    ("civil_defense", "noncharacter-in-project-name.xml"),
    ("greenery", "lower-case-credit-code.json"),
    ("greenery", "survey-supersedes-null.json"),
    ("greenery", "survey-agency-name-a-number.json"),
    ("greenery", "sender-given-twice.json"),
    ("housing", "lower-case-credit-code.xml"),
    ("housing", "case-report-in-no-namespace.xml"),
    ("housing", "attribute-on-a-value.xml"),
    ("housing", "unit-beside-an-indicator.xml"),
    ("housing", "two-operations-in-body.xml"),
    ("housing", "status-code-of-planning.xml"),
    ("transport", "credit-removal-without-reason.json"),
    ("traffic_police", "credit-removal-without-reason.json"),
    ("greenery", "credit-removal-without-reason.json"),
    ("greenery", "survey-version-above-maximum.json"),
];

#[test]
fn adapters_and_validators_refuse_the_same_schema_rules() {
    let xml = available("xmllint", &["--version"], "apt-get install libxml2-utils");
    let json = available(
        "python3",
        &["-c", "import jsonschema"],
        "pip install jsonschema",
    );
    for (bureau, file) in REFUSED_BY_BOTH {
        let adapter = adapters::ALL
            .iter()
            .find(|a| a.bureau().as_str() == *bureau)
            .expect("a bureau with an adapter");
        let folder = repo().join("schemas/bureaus").join(bureau);
        let path = folder.join("invalid").join(file);
        let body = std::fs::read(&path).expect("the invalid sample");
        assert!(
            adapter.decode(&body, adapter.format().media_type).is_err(),
            "{bureau} accepts {file}"
        );
        let mut command = match adapter.format().syntax {
            Syntax::Xml { .. } if xml => {
                let mut c = Command::new("xmllint");
                c.args(["--noout", "--schema"])
                    .arg(folder.join("message.xsd"))
                    .arg(&path);
                c
            }
            Syntax::Json if json => {
                let mut c = Command::new("python3");
                c.arg(repo().join("tests/validate_json.py"))
                    .arg(folder.join("message.schema.json"))
                    .arg(&path);
                c
            }
            _ => continue,
        };
        let output = command.output().expect("validator runs");
        assert!(
            !output.status.success(),
            "the {bureau} schema accepts {file}, which the adapter refuses:\n{}",
            String::from_utf8_lossy(&output.stdout)
        );
    }
}

#[test]
fn openapi_document_is_valid_openapi_3_1() {
    if !available(
        "python3",
        &["-c", "import openapi_spec_validator"],
        "pip install openapi-spec-validator",
    ) {
        return;
    }
    run(Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(repo().join("schemas/api/openapi.json")));
}
