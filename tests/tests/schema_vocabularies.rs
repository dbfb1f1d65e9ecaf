//! The bureaus' schema files list bureaus and items in enumerations of their own (a sender, a
//! branch's bureau, an item code). Those lists are written by hand, so they are checked here
//! against the shared tables the adapters spell from (`schemas::BureauId::names`,
//! `schemas::Item`): every enumeration that names bureaus (or items) in a format's spelling
//! names all of them, and nothing else. A new bureau or item left out of one fails with the
//! file, the enumeration and the missing value.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use schemas::{BureauId, Item};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// How one format spells bureaus and items (as its adapter does; `None`: the format keeps its
/// own catalogue, checked by its adapter's tests).
struct Spelling {
    bureau: BureauId,
    file: &'static str,
    bureaus: fn(BureauId) -> String,
    items: Option<fn(Item) -> String>,
}

fn formats() -> [Spelling; 6] {
    [
        Spelling {
            bureau: BureauId::Planning,
            file: "message.xsd",
            bureaus: |b| b.names().department_code.to_owned(),
            items: Some(|i| i.code().to_ascii_uppercase()),
        },
        Spelling {
            bureau: BureauId::Water,
            file: "message.xsd",
            bureaus: |b| b.names().short_zh.to_owned(),
            items: Some(|i| i.name_zh().to_owned()),
        },
        Spelling {
            bureau: BureauId::Transport,
            file: "message.schema.json",
            bureaus: |b| b.as_str().to_ascii_uppercase(),
            items: Some(|i| i.code().to_owned()),
        },
        Spelling {
            bureau: BureauId::TrafficPolice,
            file: "message.schema.json",
            bureaus: |b| b.names().initials.to_owned(),
            items: None,
        },
        Spelling {
            bureau: BureauId::CivilDefense,
            file: "message.xsd",
            bureaus: |b| b.as_str().to_owned(),
            items: Some(|i| i.code().to_owned()),
        },
        Spelling {
            bureau: BureauId::Greenery,
            file: "message.schema.json",
            bureaus: |b| b.names().short_zh_simplified.to_owned(),
            items: Some(|i| i.name_zh_simplified().to_owned()),
        },
    ]
}

/// Every enumeration of an XSD: (where, its values), one per `xs:restriction` holding
/// `xs:enumeration`s, named by the enclosing named type when there is one.
fn xsd_enumerations(text: &str) -> Vec<(String, BTreeSet<String>)> {
    let mut out = Vec::new();
    let mut type_name = String::from("(anonymous)");
    for (line_no, line) in text.lines().enumerate() {
        if let Some(rest) = line.split("<xs:simpleType name=\"").nth(1) {
            type_name = rest.split('"').next().unwrap_or_default().to_owned();
        }
        if line.contains("<xs:restriction") {
            out.push((
                format!("{type_name} (line {})", line_no + 1),
                BTreeSet::new(),
            ));
        }
        for piece in line.split("<xs:enumeration value=\"").skip(1) {
            let value = piece.split('"').next().unwrap_or_default().to_owned();
            if let Some((_, values)) = out.last_mut() {
                values.insert(value);
            }
        }
    }
    out.retain(|(_, values)| !values.is_empty());
    out
}

/// Every `enum` of strings in a JSON Schema: (its JSON pointer, its values).
fn json_enumerations(value: &Value, at: &str, out: &mut Vec<(String, BTreeSet<String>)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let here = format!("{at}/{key}");
                if key == "enum"
                    && let Some(values) = child.as_array()
                {
                    let strings: BTreeSet<String> = values
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect();
                    if !strings.is_empty() {
                        out.push((here.clone(), strings));
                    }
                }
                json_enumerations(child, &here, out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                json_enumerations(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// The problems of the enumerations that name at least two of `all`'s spellings: each must
/// name every one, and nothing else.
fn check(
    file: &str,
    what: &str,
    enumerations: &[(String, BTreeSet<String>)],
    all: &[(String, String)],
) -> (usize, Vec<String>) {
    let spellings: BTreeSet<&str> = all.iter().map(|(_, s)| s.as_str()).collect();
    let mut found = 0;
    let mut problems = Vec::new();
    for (name, values) in enumerations {
        let named = values
            .iter()
            .filter(|v| spellings.contains(v.as_str()))
            .count();
        if named < 2 {
            continue;
        }
        found += 1;
        for (value, spelling) in all {
            if !values.contains(spelling) {
                problems.push(format!(
                    "{file}: the {what} enumeration {name} lacks {spelling:?} ({value})"
                ));
            }
        }
        for extra in values.iter().filter(|v| !spellings.contains(v.as_str())) {
            problems.push(format!(
                "{file}: the {what} enumeration {name} names {extra:?}, which is no {what}"
            ));
        }
    }
    (found, problems)
}

#[test]
fn every_bureau_and_item_enumeration_of_the_schema_files_is_complete() {
    let mut problems = Vec::new();
    for format in formats() {
        let file = format!("schemas/bureaus/{}/{}", format.bureau.as_str(), format.file);
        let text = std::fs::read_to_string(repo().join(&file)).expect("the schema file");
        let enumerations = if format.file.ends_with(".xsd") {
            xsd_enumerations(&text)
        } else {
            let mut out = Vec::new();
            let value: Value = serde_json::from_str(&text).expect("a JSON Schema");
            json_enumerations(&value, "", &mut out);
            out
        };
        let bureaus: Vec<(String, String)> = BureauId::ALL
            .iter()
            .map(|b| (b.as_str().to_owned(), (format.bureaus)(*b)))
            .collect();
        let (found, mut bad) = check(&file, "bureau", &enumerations, &bureaus);
        assert!(found >= 1, "{file}: no enumeration of bureaus was found");
        problems.append(&mut bad);
        if let Some(spell) = format.items {
            let items: Vec<(String, String)> = Item::ALL
                .iter()
                .map(|i| (i.code().to_owned(), spell(*i)))
                .collect();
            let (found, mut bad) = check(&file, "item", &enumerations, &items);
            assert!(found >= 1, "{file}: no enumeration of items was found");
            problems.append(&mut bad);
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_check_names_the_file_the_enumeration_and_the_missing_value() {
    let xsd = "<xs:simpleType name=\"Sender\">\n<xs:restriction base=\"xs:string\">\n\
               <xs:enumeration value=\"planning\"/><xs:enumeration value=\"water\"/>\n\
               <xs:enumeration value=\"nobody\"/>\n</xs:restriction>\n</xs:simpleType>\n";
    let all: Vec<(String, String)> = BureauId::ALL
        .iter()
        .map(|b| (b.as_str().to_owned(), b.as_str().to_owned()))
        .collect();
    let (found, problems) = check("x.xsd", "bureau", &xsd_enumerations(xsd), &all);
    assert_eq!(found, 1);
    assert!(
        problems.contains(
            &"x.xsd: the bureau enumeration Sender (line 2) lacks \"transport\" (transport)"
                .to_owned()
        ),
        "{problems:?}"
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("names \"nobody\", which is no bureau")),
        "{problems:?}"
    );
    let json: Value = serde_json::json!({"$defs": {"Sender": {"enum": ["planning", "water"]}}});
    let mut out = Vec::new();
    json_enumerations(&json, "", &mut out);
    let (_, problems) = check("x.json", "bureau", &out, &all);
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("x.json: the bureau enumeration /$defs/Sender/enum lacks")),
        "{problems:?}"
    );
}
