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
//! `encoding`, `malformed`, `dtd`, `content_type`, `too_large` (rejected as a whole); with
//! `error malformed`, a `path` line is the element path the refusal must name (mixed content,
//! a forbidden character).

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use schemas::{
    BranchStatus, BureauId, CanonicalField, Event, FigureName, Item, JointNotice, JointStatus,
    ShanghaiDate, SurveyFigure, SurveyId, SurveyNotice,
};

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
    check_batch_round_trip(adapter);
    check_survey_notices(adapter);
    check_canonical_rules(adapter);
    check_hostile_inputs(adapter, &valid[0].1);
    let documents = strictness_documents(adapter, &valid);
    match adapter.format().syntax {
        Syntax::Json => json_strictness::check(adapter, &documents),
        Syntax::Xml { encoding } => xml_strictness::check(adapter, encoding, &documents),
    }
    check_mutations_never_panic(adapter, valid.iter().map(|(_, b)| b.clone()).collect());
}

/// The documents the syntax checks mutate: the valid samples, a generated case event and a
/// generated survey notice, in the bureau's format, as text.
fn strictness_documents(adapter: &dyn Adapter, valid: &[(PathBuf, Vec<u8>)]) -> Vec<String> {
    let decode = |body: &[u8]| match adapter.format().syntax {
        Syntax::Json => String::from_utf8(body.to_vec()).expect("JSON is UTF-8"),
        Syntax::Xml { encoding } => encoding.decode_without_bom_handling(body).0.into_owned(),
    };
    let mut rng = fastrand::Rng::with_seed(99);
    let mut documents: Vec<String> = valid.iter().map(|(_, body)| decode(body)).collect();
    documents.push(decode(&adapter.sample(&mut rng).body));
    for event in [
        crate::sample::survey_event(&mut rng),
        crate::sample::joint_event(&mut rng),
        crate::sample::deadline_event(&mut rng),
        crate::sample::credit_event(&mut rng),
        crate::sample::credit_match_event(&mut rng),
    ] {
        let written = adapter.encode(&event).expect("a notice encodes");
        documents.push(decode(&written.body));
    }
    documents
}

/// Whether `result` is a refusal with an error at `path` (and, when given, a problem `problem`
/// accepts).
fn refused_at(
    result: &Result<Vec<Event>, DecodeError>,
    path: &str,
    problem: impl Fn(&schemas::Problem) -> bool,
) -> bool {
    match result {
        Err(DecodeError::Invalid(errors)) => {
            errors.iter().any(|e| e.path == path && problem(&e.problem))
        }
        Err(DecodeError::Malformed { path: at, .. }) => at == path,
        _ => false,
    }
}

/// Full-width forms of printable ASCII (`A` → `Ａ`, `.` → `．`): what a Chinese input method
/// types, and what `schemas::text::clean` folds back.
fn widen(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(u32::from(c) + 0xFEE0).unwrap_or(c),
            other => other,
        })
        .collect()
}

/// JSON syntax read exactly: duplicate keys, JSON types, `null`, integer bounds, full-width.
mod json_strictness {
    use schemas::{CanonicalField, Problem};
    use serde_json::Value;

    use super::{refused_at, widen};
    use crate::adapter::Adapter;
    use crate::json::pointer;

    pub(super) fn check(adapter: &dyn Adapter, documents: &[String]) {
        let bureau = adapter.bureau();
        let media_type = adapter.format().media_type;
        let decode = |value: &Value| adapter.decode(value.to_string().as_bytes(), media_type);
        for text in documents {
            let doc: Value = serde_json::from_str(text).expect("a valid JSON document");
            let original = adapter
                .decode(text.as_bytes(), media_type)
                .expect("decodes");
            let mut members = Vec::new();
            collect(&doc, String::new(), &mut members);

            for (path, value) in &members {
                // A key given twice, even with the same value, at the second occurrence.
                let mut twice = String::new();
                write_twice(&doc, "", path, &mut twice);
                let result = adapter.decode(twice.as_bytes(), media_type);
                assert!(
                    matches!(&result, Err(crate::DecodeError::Invalid(errors))
                        if errors.iter().any(|e| e.path == *path && e.field == CanonicalField::Document)),
                    "{bureau}: key {path} given twice is not refused there: {result:?}"
                );

                // `null` is refused, unless the schema allows it: then it is the key's absence.
                let mut nulled = doc.clone();
                *nulled.pointer_mut(path).expect("member") = Value::Null;
                let result = decode(&nulled);
                let mut absent = doc.clone();
                remove(&mut absent, path);
                let same_as_absent = result.is_ok() && result == decode(&absent);
                assert!(
                    same_as_absent
                        || refused_at(&result, path, |p| matches!(p, Problem::WrongType { .. })),
                    "{bureau}: null at {path} is neither refused as a wrong type nor read as absent: {result:?}"
                );

                match value {
                    // A number where the schema says string: refused, unless the string was
                    // digits and the number reads as the same value.
                    Value::String(s) => {
                        let digits = !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
                        let number = if digits {
                            s.parse::<u64>().map(Value::from).unwrap_or(Value::from(1))
                        } else {
                            Value::from(1)
                        };
                        let mut typed = doc.clone();
                        *typed.pointer_mut(path).expect("member") = number;
                        let result = decode(&typed);
                        let same = digits && result.as_ref().ok() == Some(&original);
                        assert!(
                            same || refused_at(&result, path, |p| matches!(
                                p,
                                Problem::WrongType { .. }
                            )),
                            "{bureau}: a number at {path} (a string in the format) is not refused: {result:?}"
                        );
                    }
                    // No integer of any format's schema reaches 10^18, or is negative.
                    Value::Number(_) => {
                        for bad in [Value::from(1_000_000_000_000_000_000u64), Value::from(-1)] {
                            let mut out = doc.clone();
                            *out.pointer_mut(path).expect("member") = bad.clone();
                            let result = decode(&out);
                            assert!(
                                refused_at(&result, path, |p| matches!(
                                    p,
                                    Problem::OutOfRange { .. }
                                )),
                                "{bureau}: {bad} at {path} is not refused as out of range: {result:?}"
                            );
                        }
                    }
                    _ => {}
                }
            }

            // Every value typed in full-width forms reads as the same events.
            let mut wide = doc.clone();
            widen_strings(&mut wide);
            assert_eq!(
                decode(&wide).as_ref(),
                Ok(&original),
                "{bureau}: full-width values do not read as their ASCII forms:\n{wide}"
            );
        }
    }

    /// Every object member of the document, by JSON pointer, with its value.
    fn collect<'v>(value: &'v Value, at: String, out: &mut Vec<(String, &'v Value)>) {
        match value {
            Value::Object(map) => {
                for (key, member) in map {
                    let path = pointer(&at, key);
                    out.push((path.clone(), member));
                    collect(member, path, out);
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    collect(item, pointer(&at, &i.to_string()), out);
                }
            }
            _ => {}
        }
    }

    /// Writes the document with the member at `target` given twice.
    fn write_twice(value: &Value, at: &str, target: &str, out: &mut String) {
        match value {
            Value::Object(map) => {
                out.push('{');
                let mut first = true;
                for (key, member) in map {
                    let path = pointer(at, key);
                    for _ in 0..if path == target { 2 } else { 1 } {
                        if !first {
                            out.push(',');
                        }
                        first = false;
                        out.push_str(&Value::from(key.as_str()).to_string());
                        out.push(':');
                        write_twice(member, &path, target, out);
                    }
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_twice(item, &pointer(at, &i.to_string()), target, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }

    fn remove(doc: &mut Value, path: &str) {
        let (parent, key) = path.rsplit_once('/').expect("a member's pointer");
        let key = key.replace("~1", "/").replace("~0", "~");
        if let Some(Value::Object(map)) = doc.pointer_mut(parent) {
            map.remove(&key);
        }
    }

    fn widen_strings(value: &mut Value) {
        match value {
            Value::String(s) => *s = widen(s),
            Value::Array(items) => items.iter_mut().for_each(widen_strings),
            Value::Object(map) => map.values_mut().for_each(widen_strings),
            _ => {}
        }
    }
}

/// XML content read exactly: duplicate elements, mixed content, stray text, CDATA, characters
/// XML 1.0 forbids, full-width values.
mod xml_strictness {
    use encoding_rs::Encoding;
    use quick_xml::events::{BytesStart, BytesText, Event};
    use quick_xml::reader::Reader;
    use quick_xml::writer::Writer;

    use super::{refused_at, widen};
    use crate::adapter::{Adapter, DecodeError};

    /// An element of a document, by byte offsets into its text.
    struct Site {
        path: String,
        /// Where its start tag begins and its end tag ends.
        outer: (usize, usize),
        /// Its text content, for an element without children.
        text: Option<(usize, usize)>,
        /// Where its first child ends, for an element with children.
        after_first_child: Option<usize>,
        /// Whether no sibling has its name.
        unique: bool,
    }

    fn sites(text: &str) -> Vec<Site> {
        struct Open {
            name: String,
            start: usize,
            content: usize,
            children: Vec<String>,
            after_first_child: Option<usize>,
        }
        let mut reader = Reader::from_str(text);
        let mut stack: Vec<Open> = Vec::new();
        let mut out: Vec<Site> = Vec::new();
        let mut pos = 0usize;
        loop {
            let event = reader.read_event().expect("well-formed");
            let end = reader.buffer_position() as usize;
            let path_of = |stack: &[Open], name: &str| {
                let mut path = String::new();
                for open in stack {
                    path.push('/');
                    path.push_str(&open.name);
                }
                path.push('/');
                path.push_str(name);
                path
            };
            match event {
                Event::Start(start) => {
                    let name = start.local_name().as_ref().to_owned();
                    stack.push(Open {
                        name,
                        start: pos,
                        content: end,
                        children: Vec::new(),
                        after_first_child: None,
                    });
                }
                Event::Empty(start) => {
                    let name = start.local_name().as_ref().to_owned();
                    let path = path_of(&stack, &name);
                    if let Some(parent) = stack.last_mut() {
                        parent.children.push(name);
                        parent.after_first_child.get_or_insert(end);
                    }
                    out.push(Site {
                        path,
                        outer: (pos, end),
                        text: None,
                        after_first_child: None,
                        unique: true,
                    });
                }
                Event::End(_) => {
                    let open = stack.pop().expect("balanced");
                    let path = path_of(&stack, &open.name);
                    let leaf = open.children.is_empty();
                    if let Some(parent) = stack.last_mut() {
                        parent.children.push(open.name.clone());
                        parent.after_first_child.get_or_insert(end);
                    }
                    let close = text[..end].rfind("</").expect("an end tag");
                    out.push(Site {
                        path,
                        outer: (open.start, end),
                        text: leaf.then_some((open.content, close)),
                        after_first_child: open.after_first_child,
                        unique: true,
                    });
                }
                Event::Eof => break,
                _ => {}
            }
            pos = end;
        }
        // An element is unique when its path occurs once.
        let counts: std::collections::HashMap<String, usize> =
            out.iter().fold(Default::default(), |mut m, s| {
                *m.entry(s.path.clone()).or_default() += 1;
                m
            });
        for site in &mut out {
            site.unique = counts[&site.path] == 1;
        }
        out
    }

    fn splice(text: &str, at: usize, insert: &str) -> String {
        format!("{}{insert}{}", &text[..at], &text[at..])
    }

    pub(super) fn check(adapter: &dyn Adapter, encoding: &'static Encoding, documents: &[String]) {
        let bureau = adapter.bureau();
        let media_type = adapter.format().media_type;
        let decode = |text: &str| adapter.decode(&encoding.encode(text).0, media_type);
        for text in documents {
            let original = decode(text).expect("decodes");
            let sites = sites(text);
            for site in &sites {
                let (start, end) = site.outer;
                // An element the document holds once, given twice.
                if site.unique
                    && site.after_first_child.is_none()
                    && site.path.matches('/').count() > 1
                {
                    let twice = splice(text, end, &text[start..end]);
                    let result = decode(&twice);
                    let name = site.path.rsplit('/').next().unwrap_or("");
                    assert!(
                        matches!(&result, Err(DecodeError::Invalid(errors))
                            if errors.iter().any(|e| e.path.ends_with(&format!("/{name}")))),
                        "{bureau}: {} given twice is not refused there: {result:?}",
                        site.path
                    );
                }
                if let Some((from, to)) = site.text {
                    let content = &text[from..to];
                    if content.trim().is_empty() || content.contains('&') {
                        continue;
                    }
                    // A child element inside a text field, and characters XML 1.0 forbids.
                    let middle = from
                        + content
                            .char_indices()
                            .nth(content.chars().count() / 2)
                            .map_or(0, |(i, _)| i);
                    for (at, insert, what) in [
                        (middle, "<X>injected</X>", "an element inside its text"),
                        (from, "\u{B}", "a raw U+000B"),
                        (to, "\u{FFFE}", "a raw U+FFFE"),
                        (from, "&#xB;", "the reference &#xB;"),
                        (middle, "&#x1;", "the reference &#x1;"),
                    ] {
                        let result = decode(&splice(text, at, insert));
                        assert!(
                            refused_at(&result, &site.path, |_| true),
                            "{bureau}: {what} in {} is not refused there: {result:?}",
                            site.path
                        );
                    }
                }
                // Stray text, and a CDATA block, beside child elements.
                if let Some(at) = site.after_first_child {
                    for (insert, what) in [
                        ("junk".to_owned(), "stray text"),
                        (format!("<![CDATA[{}]]>", "x".repeat(4096)), "a CDATA block"),
                        ("&amp;".to_owned(), "a reference"),
                    ] {
                        let result = decode(&splice(text, at, &insert));
                        assert!(
                            refused_at(&result, &site.path, |_| true),
                            "{bureau}: {what} among the children of {} is not refused there: {result:?}",
                            site.path
                        );
                    }
                }
            }
            // Every value typed in full-width forms reads as the same events.
            let wide = widen_document(text);
            assert_eq!(
                decode(&wide).as_ref(),
                Ok(&original),
                "{bureau}: full-width values do not read as their ASCII forms:\n{wide}"
            );
        }
    }

    /// The document with every text and attribute value in full-width forms.
    fn widen_document(text: &str) -> String {
        let mut reader = Reader::from_str(text);
        let mut writer = Writer::new(Vec::new());
        loop {
            let event = reader.read_event().expect("well-formed");
            let out = match event {
                Event::Eof => break,
                Event::Start(start) => Event::Start(widen_attributes(&start)),
                Event::Empty(start) => Event::Empty(widen_attributes(&start)),
                Event::Text(t) if !t.xml10_content().trim().is_empty() => {
                    Event::Text(BytesText::new(&widen(&t.xml10_content())).into_owned())
                }
                other => other,
            };
            writer.write_event(out).expect("writing to a Vec");
        }
        String::from_utf8(writer.into_inner()).expect("UTF-8")
    }

    fn widen_attributes(start: &BytesStart<'_>) -> BytesStart<'static> {
        let name = start.name().as_ref().to_owned();
        let mut out = BytesStart::new(name);
        for attribute in start.attributes() {
            let attribute = attribute.expect("well-formed attribute");
            let key = attribute.key.as_ref().to_owned();
            let value = attribute
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .expect("attribute value")
                .into_owned();
            let value = if key.starts_with("xmlns") {
                value
            } else {
                widen(&value)
            };
            out.push_attribute((key.as_str(), value.as_str()));
        }
        out
    }
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
            (Err(error), Some(kind)) => {
                assert_eq!(error_kind(&error), kind, "{name}: {error}");
                // A document refused whole may still say where: then it must be there.
                if let (Some(want), DecodeError::Malformed { path, .. }) = (want_path, &error) {
                    assert_eq!(path, want, "{name}: refused at another path: {error}");
                }
            }
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

/// decode_batch(encode_batch(events)) == events, for the events of every bureau (what a batch
/// push or a pull feed carries), survey notices among them.
fn check_batch_round_trip(adapter: &dyn Adapter) {
    let mut rng = fastrand::Rng::with_seed(21);
    let mut events: Vec<Event> = BureauId::ALL
        .iter()
        .map(|&source| crate::sample::case_event(&mut rng, source))
        .collect();
    events.push(crate::sample::survey_event(&mut rng));
    events.push(crate::sample::joint_event(&mut rng));
    events.push(crate::sample::deadline_event(&mut rng));
    events.push(crate::sample::credit_event(&mut rng));
    events.push(crate::sample::credit_match_event(&mut rng));
    for size in [1, events.len()] {
        let batch = adapter
            .encode_batch("conformance-1", &events[..size])
            .unwrap_or_else(|e| panic!("{}: cannot encode a batch: {e}", adapter.bureau()));
        let back = adapter
            .decode_batch(&batch.body, &batch.content_type)
            .unwrap_or_else(|e| {
                panic!(
                    "{}: its own batch of {size} does not decode: {e:#?}",
                    adapter.bureau()
                )
            });
        assert_eq!(
            back,
            events[..size],
            "{}: decode_batch(encode_batch(events)) differs",
            adapter.bureau()
        );
    }
}

/// Every adapter delivers survey notices (multi-survey-in-one), joint-case notices and
/// deadline notices in its own format, exactly.
fn check_survey_notices(adapter: &dyn Adapter) {
    let mut rng = fastrand::Rng::with_seed(77);
    for _ in 0..32 {
        check_round_trip(adapter, &crate::sample::survey_event(&mut rng));
        check_round_trip(adapter, &crate::sample::joint_event(&mut rng));
        check_round_trip(adapter, &crate::sample::deadline_event(&mut rng));
        check_round_trip(adapter, &crate::sample::credit_event(&mut rng));
        check_round_trip(adapter, &crate::sample::credit_match_event(&mut rng));
    }
}

/// Joint-case and deadline notices that break a rule of `schemas::joint`, each with the
/// canonical field every adapter must refuse it under.
fn rule_breaking_joint_events() -> Vec<(&'static str, Event, CanonicalField)> {
    let mut rng = fastrand::Rng::with_seed(2026);
    let base = crate::sample::joint_event(&mut rng);
    let with = |change: &dyn Fn(&mut JointNotice)| {
        let mut notice = base.joint().expect("a joint event").clone();
        change(&mut notice);
        Event::for_joint(base.message_id.clone(), base.occurred_at, notice)
    };
    let credit = crate::sample::credit_event(&mut rng);
    let credit_with = |change: &dyn Fn(&mut schemas::CreditEntry)| {
        let mut entry = credit.credit().expect("a credit event").clone();
        change(&mut entry);
        Event::for_credit(
            credit.message_id.clone(),
            credit.source,
            credit.occurred_at,
            entry,
        )
    };
    let deadline = crate::sample::deadline_event(&mut rng);
    let mut foreign = deadline.deadline().expect("a deadline event").clone();
    foreign.item = Item::ALL
        .into_iter()
        .find(|item| item.bureau() != deadline.source)
        .expect("another bureau's item");
    vec![
        (
            "a branch named twice",
            with(&|n| n.branches.push(n.branches[0].clone())),
            CanonicalField::JointBranchItem,
        ),
        (
            "a waiting branch naming a case",
            with(&|n| {
                n.branches[0].status = BranchStatus::Waiting;
                n.branches[0].case_id = Some(base.case_id.clone());
            }),
            CanonicalField::JointBranchCaseId,
        ),
        (
            "version 1 deciding the joint case",
            with(&|n| {
                n.version = 1;
                n.status = JointStatus::Approved;
            }),
            CanonicalField::JointVersion,
        ),
        (
            "a credit entry ending before it starts",
            credit_with(&|entry| {
                entry.removal = None;
                entry.valid_to = entry.valid_from.get().pred_opt().map(ShanghaiDate::new);
            }),
            CanonicalField::CreditValidTo,
        ),
        (
            "a credit entry removed before it starts",
            credit_with(&|entry| {
                entry.valid_to = None;
                entry.removal = Some(schemas::CreditRemoval {
                    on: ShanghaiDate::new(entry.valid_from.get() - chrono::Duration::days(3)),
                    reason: schemas::CreditText::parse("信用修复").expect("a reason"),
                });
            }),
            CanonicalField::CreditRemovedOn,
        ),
        (
            "a deadline notice about another bureau's item",
            Event::for_deadline(
                deadline.message_id.clone(),
                deadline.source,
                deadline.case_id.clone(),
                deadline.sequence,
                deadline.occurred_at,
                foreign,
            ),
            CanonicalField::DeadlineItem,
        ),
    ]
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
    let mut breaking = Vec::new();
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
        breaking.push((what, event, field));
    }
    breaking.extend(rule_breaking_joint_events());
    for (what, event, field) in breaking {
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
