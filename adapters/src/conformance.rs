//! The conformance kit: what every adapter must do, checked with one call, [`check`].
//!
//! Besides the bureau's own samples, the kit hands every adapter the same survey notices that
//! break a rule of the canonical model (`schemas::rules`: version 1 naming a superseded
//! version, a later version naming none, a version superseding itself, a figure given twice),
//! written in the bureau's format by [`Adapter::write`]; each must be refused under the same
//! canonical field by every adapter, and refused by [`Adapter::encode`].
//!
//! Sample files are discovered, not listed: `schemas/bureaus/<id>/valid/*` must decode, and
//! every `schemas/bureaus/<id>/invalid/<name>` must fail as its sidecar `<name>.expect` says.
//! An `.expect` file holds lines `path <native path>` and optionally `field <canonical field>`
//! (the message is rejected for that value), or one line `error <kind>` with kind one of
//! `encoding`, `malformed`, `dtd`, `content_type`, `too_large` (rejected as a whole).

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use schemas::{CanonicalField, Event, FigureName, SurveyFigure, SurveyId, SurveyNotice};

use crate::adapter::{Adapter, DecodeError, Syntax, parse_content_type};

/// The folder of a bureau's schema and samples in this repository.
pub fn samples_dir(adapter: &dyn Adapter) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../schemas/bureaus")
        .join(adapter.bureau().as_str())
}

/// Runs every conformance check on `adapter`, panicking with a description of the first failure.
pub fn check(adapter: &dyn Adapter) {
    let dir = samples_dir(adapter);
    let valid = read_samples(&dir.join("valid"));
    assert!(!valid.is_empty(), "no valid samples in {}", dir.display());
    for (path, body) in &valid {
        let events = decode_ok(adapter, body, &path.display().to_string());
        for event in &events {
            check_round_trip(adapter, event);
        }
    }
    check_invalid_samples(adapter, &dir.join("invalid"));
    check_generated_samples(adapter);
    check_survey_notices(adapter);
    check_canonical_rules(adapter);
    check_hostile_inputs(adapter, &valid[0].1);
    check_mutations_never_panic(adapter, valid.iter().map(|(_, b)| b.clone()).collect());
}

fn read_samples(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut samples: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext != "expect"))
        .map(|path| {
            let body = std::fs::read(&path).expect("sample file");
            (path, body)
        })
        .collect();
    samples.sort();
    samples
}

fn decode_ok(adapter: &dyn Adapter, body: &[u8], what: &str) -> Vec<Event> {
    let events = adapter
        .decode(body, adapter.format().media_type)
        .unwrap_or_else(|e| panic!("{what} of {} does not decode: {e:#?}", adapter.bureau()));
    assert!(!events.is_empty(), "{what} decodes to no events");
    if !adapter.format().batch {
        assert_eq!(
            events.len(),
            1,
            "{what}: a single-case format gave several events"
        );
    }
    events
}

/// decode(encode(e)) == [e]
fn check_round_trip(adapter: &dyn Adapter, event: &Event) {
    let encoded = adapter
        .encode(event)
        .unwrap_or_else(|e| panic!("cannot encode {}: {e}", event.message_id.as_str()));
    let back = decode_ok(adapter, &encoded.body, "an encoded event");
    assert_eq!(
        back,
        vec![event.clone()],
        "{}: decode(encode(e)) differs from e; encoded:\n{}",
        adapter.bureau(),
        String::from_utf8_lossy(&encoded.body)
    );
}

fn check_invalid_samples(adapter: &dyn Adapter, dir: &Path) {
    let invalid = read_samples(dir);
    assert!(
        !invalid.is_empty(),
        "no invalid samples in {}",
        dir.display()
    );
    for (path, body) in invalid {
        let mut expect_path = path.clone().into_os_string();
        expect_path.push(".expect");
        let expect = std::fs::read_to_string(&expect_path)
            .unwrap_or_else(|e| panic!("{}: missing .expect file: {e}", path.display()));
        let mut want_path = None;
        let mut want_field = None;
        let mut want_error = None;
        for line in expect.lines().map(str::trim).filter(|l| !l.is_empty()) {
            match line.split_once(' ') {
                Some(("path", v)) => want_path = Some(v.trim()),
                Some(("field", v)) => want_field = Some(v.trim()),
                Some(("error", v)) => want_error = Some(v.trim()),
                _ => panic!("{}: bad line {line:?}", expect_path.to_string_lossy()),
            }
        }
        let result = adapter.decode(&body, adapter.format().media_type);
        let name = path.display();
        match (result, want_error) {
            (Ok(_), _) => panic!("{name} was accepted"),
            (Err(DecodeError::Invalid(errors)), None) => {
                let want_path = want_path.unwrap_or_else(|| panic!("{name}: .expect has no path"));
                assert!(
                    errors
                        .iter()
                        .any(|e| e.path == want_path
                            && want_field.is_none_or(|f| e.field.as_str() == f)),
                    "{name}: no error at {want_path} (field {want_field:?}); got {errors:#?}"
                );
                for error in &errors {
                    assert!(!error.path.is_empty(), "{name}: an error without a path");
                }
            }
            (Err(error), Some(kind)) => assert_eq!(error_kind(&error), kind, "{name}: {error}"),
            (Err(error), None) => panic!("{name}: expected field errors, got {error}"),
        }
    }
}

fn error_kind(error: &DecodeError) -> &'static str {
    match error {
        DecodeError::TooLarge { .. } => "too_large",
        DecodeError::UnsupportedContentType { .. } => "content_type",
        DecodeError::Encoding(_) => "encoding",
        DecodeError::DtdForbidden => "dtd",
        DecodeError::Malformed { .. } => "malformed",
        DecodeError::Invalid(_) => "invalid",
    }
}

fn check_generated_samples(adapter: &dyn Adapter) {
    for seed in 0..64 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let sample = adapter.sample(&mut rng);
        assert_eq!(
            parse_content_type(&sample.content_type).0,
            adapter.format().media_type
        );
        let events = decode_ok(adapter, &sample.body, &format!("generated sample {seed}"));
        for event in &events {
            assert_eq!(
                event.source,
                adapter.bureau(),
                "a sample from another bureau"
            );
            check_round_trip(adapter, event);
        }
    }
}

/// Every adapter delivers survey notices (multi-survey-in-one) in its own format, exactly.
fn check_survey_notices(adapter: &dyn Adapter) {
    let mut rng = fastrand::Rng::with_seed(77);
    for _ in 0..32 {
        check_round_trip(adapter, &crate::sample::survey_event(&mut rng));
    }
}

/// Survey notices that break a rule of the canonical model (`schemas::rules`), each paired
/// with the canonical field every adapter must refuse it under.
fn rule_breaking_notices() -> Vec<(&'static str, SurveyNotice, CanonicalField)> {
    let mut rng = fastrand::Rng::with_seed(2022);
    let base = crate::sample::survey_notice(&mut rng);
    let other = SurveyId::parse("sv-0123456789abcdef0123456789abcdef").expect("a survey id");
    let with = |version: u32, supersedes: Option<SurveyId>| {
        let mut notice = base.clone();
        notice.result.version = version;
        notice.supersedes = supersedes;
        notice
    };
    let ratio = SurveyFigure {
        name: FigureName::GreeningRatio,
        quantity: FigureName::GreeningRatio
            .parse_value("35.5%")
            .expect("a ratio"),
    };
    let mut twice = with(1, None);
    twice.result.figures = vec![ratio, ratio];
    vec![
        (
            "version 1 naming a superseded version",
            with(1, Some(other.clone())),
            CanonicalField::SurveyVersion,
        ),
        (
            "version 2 naming none",
            with(2, None),
            CanonicalField::SurveyVersion,
        ),
        (
            "a version superseding itself",
            with(2, Some(base.survey_id.clone())),
            CanonicalField::SurveyVersion,
        ),
        ("a figure given twice", twice, CanonicalField::SurveyFigure),
    ]
}

/// The same rule-breaking notices, written in the bureau's format by its writer (which checks
/// nothing), are refused by its decoder under the same canonical field as by every other
/// adapter, and `encode` refuses to write them.
fn check_canonical_rules(adapter: &dyn Adapter) {
    let bureau = adapter.bureau();
    let valid = crate::sample::survey_event(&mut fastrand::Rng::with_seed(2022));
    for (what, notice, field) in rule_breaking_notices() {
        assert!(
            !notice.violations().is_empty(),
            "{what}: the kit's notice breaks no rule"
        );
        let event = Event::for_survey(
            valid.message_id.clone(),
            valid.source,
            valid.occurred_at,
            notice,
        );
        match adapter.encode(&event) {
            Err(error) => assert_eq!(error.field, field.as_str(), "{bureau}, {what}: {error}"),
            Ok(_) => panic!("{bureau} encodes {what}"),
        }
        let written = adapter
            .write(&event)
            .unwrap_or_else(|e| panic!("{bureau} cannot write {what}: {e}"));
        match adapter.decode(&written.body, &written.content_type) {
            Err(DecodeError::Invalid(errors)) => {
                assert!(
                    errors.len() == 1 && errors[0].field == field && !errors[0].path.is_empty(),
                    "{bureau}, {what}: expected one error under {field}, got {errors:#?}"
                );
            }
            other => panic!(
                "{bureau} does not refuse {what} under {field}: {other:?}\n{}",
                String::from_utf8_lossy(&written.body)
            ),
        }
    }
}

fn check_hostile_inputs(adapter: &dyn Adapter, valid: &[u8]) {
    let format = adapter.format();
    let media_type = format.media_type;

    // Over the size limit: refused before parsing.
    let mut big = valid.to_vec();
    big.resize(format.max_message_bytes + 1, b' ');
    assert!(
        matches!(
            adapter.decode(&big, media_type),
            Err(DecodeError::TooLarge { .. })
        ),
        "{}: oversized message not refused",
        adapter.bureau()
    );

    // Another format's content type.
    let other = if media_type == "application/json" {
        "application/xml"
    } else {
        "application/json"
    };
    assert!(matches!(
        adapter.decode(valid, other),
        Err(DecodeError::UnsupportedContentType { .. })
    ));

    match format.syntax {
        Syntax::Xml { encoding } => {
            let text = encoding.decode_without_bom_handling(valid).0.into_owned();
            let decl_end = text
                .find("?>")
                .expect("XML samples start with a declaration")
                + 2;
            let (decl, rest) = text.split_at(decl_end);

            // DOCTYPE with entity declarations: the billion-laughs shape, and an external one.
            for doctype in [
                "<!DOCTYPE r [<!ENTITY a \"aaaaaaaaaa\"><!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">]>",
                "<!DOCTYPE r SYSTEM \"file:///etc/passwd\">",
            ] {
                let hostile = format!("{decl}{doctype}{rest}");
                let hostile = hostile.as_str();
                let (bytes, _, _) = encoding.encode(hostile);
                assert_eq!(
                    adapter.decode(&bytes, media_type),
                    Err(DecodeError::DtdForbidden),
                    "{}: DOCTYPE not refused",
                    adapter.bureau()
                );
            }

            // A declaration naming another encoding than the format's.
            let wrong = if encoding == encoding_rs::UTF_8 {
                "GB18030"
            } else {
                "UTF-8"
            };
            // The declaration is ASCII, so lower-casing keeps byte offsets.
            let name = encoding.name().to_ascii_lowercase();
            let at = decl
                .to_ascii_lowercase()
                .find(&name)
                .unwrap_or_else(|| panic!("declaration does not name {}", encoding.name()));
            let relabelled = format!("{}{wrong}{}{rest}", &decl[..at], &decl[at + name.len()..]);
            let (bytes, _, _) = encoding.encode(&relabelled);
            assert!(
                matches!(
                    adapter.decode(&bytes, media_type),
                    Err(DecodeError::Encoding(_))
                ),
                "{}: wrong declared encoding not refused",
                adapter.bureau()
            );
        }
        Syntax::Json => {
            assert!(matches!(
                adapter.decode(valid, &format!("{media_type}; charset=gbk")),
                Err(DecodeError::Encoding(_))
            ));
            let text = String::from_utf8(valid.to_vec()).expect("JSON samples are UTF-8");
            if !text.is_ascii() {
                let (gbk, _, _) = encoding_rs::GBK.encode(&text);
                assert!(
                    matches!(
                        adapter.decode(&gbk, media_type),
                        Err(DecodeError::Encoding(_))
                    ),
                    "{}: GBK bytes accepted as JSON",
                    adapter.bureau()
                );
            }
        }
    }
}

/// Whatever the bytes, decode returns; it never panics.
fn check_mutations_never_panic(adapter: &dyn Adapter, valid: Vec<Vec<u8>>) {
    let media_type = adapter.format().media_type;
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = (
        proptest::sample::select(valid),
        proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..8),
    );
    runner
        .run(&strategy, |(mut body, edits)| {
            for (index, byte, op) in edits {
                if body.is_empty() {
                    body.push(byte);
                    continue;
                }
                let at = index.index(body.len());
                match op {
                    0 => body[at] = byte,
                    1 => body.insert(at, byte),
                    2 => {
                        body.remove(at);
                    }
                    _ => body.truncate(at),
                }
            }
            let _ = adapter.decode(&body, media_type);
            Ok(())
        })
        .unwrap_or_else(|e| {
            panic!(
                "{}: decode panicked on mutated input: {e}",
                adapter.bureau()
            )
        });
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..512), |body| {
            let _ = adapter.decode(&body, media_type);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{}: decode panicked on random bytes: {e}", adapter.bureau()));
}
