//! The bureaus' schema files list bureaus and items in enumerations of their own (a sender, a
//! branch's bureau, an item code). Those lists are written by hand, so they are checked here
//! against the shared tables the adapters spell from (`schemas::BureauId::names`,
//! `schemas::Item`): every enumeration that names bureaus (or items) in a format's spelling
//! names all of them, and nothing else. A new bureau or item left out of one fails with the
//! file, the enumeration and the missing value; `BLESS=1 cargo test -p tests --test
//! schema_vocabularies` adds what is lacking, in each file's layout (review the diff).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use schemas::{BureauId, Item};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// How one format spells bureaus and items (as its adapter does).
struct Spelling {
    bureau: BureauId,
    file: &'static str,
    bureaus: fn(BureauId) -> String,
    items: fn(Item) -> String,
}

fn formats() -> [Spelling; 7] {
    [
        Spelling {
            bureau: BureauId::Planning,
            file: "message.xsd",
            bureaus: |b| b.names().department_code.to_owned(),
            items: |i| i.code().to_ascii_uppercase(),
        },
        Spelling {
            bureau: BureauId::Water,
            file: "message.xsd",
            bureaus: |b| b.names().short_zh.to_owned(),
            items: |i| i.name_zh().to_owned(),
        },
        Spelling {
            bureau: BureauId::Transport,
            file: "message.schema.json",
            bureaus: |b| b.as_str().to_ascii_uppercase(),
            items: |i| i.code().to_owned(),
        },
        Spelling {
            bureau: BureauId::TrafficPolice,
            file: "message.schema.json",
            bureaus: |b| b.names().initials.to_owned(),
            // The corps numbers the items in the catalogue's order.
            items: |i| {
                let number = Item::ALL.iter().position(|x| *x == i).unwrap_or(0) + 1;
                format!("SX{number:02}")
            },
        },
        Spelling {
            bureau: BureauId::CivilDefense,
            file: "message.xsd",
            bureaus: |b| b.as_str().to_owned(),
            items: |i| i.code().to_owned(),
        },
        Spelling {
            bureau: BureauId::Greenery,
            file: "message.schema.json",
            bureaus: |b| b.names().short_zh_simplified.to_owned(),
            items: |i| i.name_zh_simplified().to_owned(),
        },
        Spelling {
            bureau: BureauId::Housing,
            file: "message.xsd",
            bureaus: |b| b.names().department_code.to_owned(),
            items: |i| i.code().to_owned(),
        },
    ]
}

/// One enumeration of a schema file: where it is, its values in the file's order, and (XSD) the
/// index of the line of its last value, after which a new value goes.
struct Enumeration {
    name: String,
    values: Vec<String>,
    last_line: Option<usize>,
}

/// Every enumeration of an XSD, one per `xs:restriction` holding `xs:enumeration`s, named by
/// the enclosing named type when there is one.
fn xsd_enumerations(text: &str) -> Vec<Enumeration> {
    let mut out: Vec<Enumeration> = Vec::new();
    let mut type_name = String::from("(anonymous)");
    for (line_no, line) in text.lines().enumerate() {
        if let Some(rest) = line.split("<xs:simpleType name=\"").nth(1) {
            type_name = rest.split('"').next().unwrap_or_default().to_owned();
        }
        if line.contains("<xs:restriction") {
            out.push(Enumeration {
                name: format!("{type_name} (line {})", line_no + 1),
                values: Vec::new(),
                last_line: None,
            });
        }
        for piece in line.split("<xs:enumeration value=\"").skip(1) {
            let value = piece.split('"').next().unwrap_or_default().to_owned();
            if let Some(enumeration) = out.last_mut() {
                enumeration.values.push(value);
                enumeration.last_line = Some(line_no);
            }
        }
    }
    out.retain(|e| !e.values.is_empty());
    out
}

/// Every `enum` of strings in a JSON Schema, named by its JSON pointer.
fn json_enumerations(value: &Value, at: &str, out: &mut Vec<Enumeration>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let here = format!("{at}/{key}");
                if key == "enum"
                    && let Some(values) = child.as_array()
                {
                    let strings: Vec<String> = values
                        .iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect();
                    if !strings.is_empty() {
                        out.push(Enumeration {
                            name: here.clone(),
                            values: strings,
                            last_line: None,
                        });
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

/// The spellings of `all` an enumeration lacks, when it names at least two of them (so it is an
/// enumeration of that table); `None` for an enumeration of something else.
fn lacking<'a>(
    enumeration: &Enumeration,
    all: &'a [(String, String)],
) -> Option<Vec<&'a (String, String)>> {
    let named = all
        .iter()
        .filter(|(_, spelling)| enumeration.values.contains(spelling))
        .count();
    (named >= 2).then(|| {
        all.iter()
            .filter(|(_, spelling)| !enumeration.values.contains(spelling))
            .collect()
    })
}

/// The problems of the enumerations that name at least two of `all`'s spellings: each must
/// name every one, and nothing else.
fn check(
    file: &str,
    what: &str,
    enumerations: &[Enumeration],
    all: &[(String, String)],
) -> (usize, Vec<String>) {
    let spellings: BTreeSet<&str> = all.iter().map(|(_, s)| s.as_str()).collect();
    let mut found = 0;
    let mut problems = Vec::new();
    for enumeration in enumerations {
        let Some(lacks) = lacking(enumeration, all) else {
            continue;
        };
        found += 1;
        let name = &enumeration.name;
        for (value, spelling) in lacks {
            problems.push(format!(
                "{file}: the {what} enumeration {name} lacks {spelling:?} ({value})"
            ));
        }
        for extra in enumeration
            .values
            .iter()
            .filter(|v| !spellings.contains(v.as_str()))
        {
            problems.push(format!(
                "{file}: the {what} enumeration {name} names {extra:?}, which is no {what}"
            ));
        }
    }
    (found, problems)
}

/// `text` with `missing` added after the last value of an XSD enumeration, one line each in
/// the layout of that line (a comment beside it names the value's id).
fn add_to_xsd(text: &str, enumeration: &Enumeration, missing: &[&(String, String)]) -> String {
    let Some(last) = enumeration.last_line else {
        return text.to_owned();
    };
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let model = lines[last].clone();
    let indent = &model[..model.len() - model.trim_start().len()];
    let added = missing.iter().rev().map(|(id, spelling)| {
        let comment = if model.contains("<!--") {
            format!("<!-- {} -->", id.replace('_', " "))
        } else {
            String::new()
        };
        format!("{indent}<xs:enumeration value=\"{spelling}\"/>{comment}")
    });
    for line in added {
        lines.insert(last + 1, line);
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// `text` with `missing` added after the last value of every JSON array spelling exactly the
/// enumeration's values, inline or one per line as that array is written.
fn add_to_json(text: &str, enumeration: &Enumeration, missing: &[&(String, String)]) -> String {
    let quoted = |value: &str| serde_json::to_string(value).expect("a JSON string");
    let Some(last) = enumeration.values.last().map(|v| quoted(v)) else {
        return text.to_owned();
    };
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(&last) {
        let end = at + last.len();
        let closes = rest[end..].trim_start().starts_with(']');
        let open = rest[..at].rfind('[');
        let array = open.and_then(|open| {
            serde_json::from_str::<Vec<String>>(&format!("{}{last}]", &rest[open..at])).ok()
        });
        out.push_str(&rest[..end]);
        if closes && array.as_ref() == Some(&enumeration.values) {
            let line_start = rest[..at].rfind('\n').map_or(0, |n| n + 1);
            let one_per_line = rest[open.unwrap_or(at)..at].contains('\n')
                && rest[line_start..at].trim().is_empty();
            let indent = &rest[line_start..at];
            for (_, spelling) in missing {
                if one_per_line {
                    out.push_str(&format!(",\n{indent}{}", quoted(spelling)));
                } else {
                    out.push_str(&format!(", {}", quoted(spelling)));
                }
            }
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

fn enumerations_of(file: &str, text: &str) -> Vec<Enumeration> {
    if file.ends_with(".xsd") {
        xsd_enumerations(text)
    } else {
        let mut out = Vec::new();
        let value: Value = serde_json::from_str(text).expect("a JSON Schema");
        json_enumerations(&value, "", &mut out);
        out
    }
}

/// With `BLESS=1`, first adds to each enumeration the bureaus and items it lacks (a new bureau
/// or item, added in every format's spelling), one enumeration at a time; review the diff.
#[test]
fn every_bureau_and_item_enumeration_of_the_schema_files_is_complete() {
    let bless = std::env::var_os("BLESS").is_some();
    let mut problems = Vec::new();
    for format in formats() {
        let file = format!("schemas/bureaus/{}/{}", format.bureau.as_str(), format.file);
        let path = repo().join(&file);
        let bureaus: Vec<(String, String)> = BureauId::ALL
            .iter()
            .map(|b| (b.as_str().to_owned(), (format.bureaus)(*b)))
            .collect();
        let items: Vec<(String, String)> = Item::ALL
            .iter()
            .map(|i| (i.code().to_owned(), (format.items)(*i)))
            .collect();
        let mut text = std::fs::read_to_string(&path).expect("the schema file");
        if bless {
            // Each addition moves the lines after it: find the enumerations again after each.
            for all in [&bureaus, &items] {
                while let Some((enumeration, missing)) = enumerations_of(&file, &text)
                    .into_iter()
                    .find_map(|e| lacking(&e, all).filter(|m| !m.is_empty()).map(|m| (e, m)))
                {
                    let before = text.clone();
                    text = if file.ends_with(".xsd") {
                        add_to_xsd(&text, &enumeration, &missing)
                    } else {
                        add_to_json(&text, &enumeration, &missing)
                    };
                    assert_ne!(
                        text, before,
                        "{file}: could not add to {}",
                        enumeration.name
                    );
                }
            }
            std::fs::write(&path, &text).expect("rewrite the schema file");
        }
        let enumerations = enumerations_of(&file, &text);
        let (found, mut bad) = check(&file, "bureau", &enumerations, &bureaus);
        assert!(found >= 1, "{file}: no enumeration of bureaus was found");
        problems.append(&mut bad);
        let (found, mut bad) = check(&file, "item", &enumerations, &items);
        assert!(found >= 1, "{file}: no enumeration of items was found");
        problems.append(&mut bad);
    }
    assert!(
        problems.is_empty(),
        "{}\n(BLESS=1 cargo test -p tests --test schema_vocabularies adds what is lacking)",
        problems.join("\n")
    );
}

#[test]
fn blessing_adds_a_lacking_value_in_the_files_own_layout() {
    let all: Vec<(String, String)> = BureauId::ALL
        .iter()
        .map(|b| (b.as_str().to_owned(), b.names().initials.to_owned()))
        .collect();
    let xsd = "<xs:simpleType name=\"Sender\">\n  <xs:restriction base=\"xs:string\">\n    \
               <xs:enumeration value=\"GHZY\"/><!-- planning -->\n    \
               <xs:enumeration value=\"SWJ\"/><!-- water -->\n  </xs:restriction>\n\
               </xs:simpleType>\n";
    let enumeration = &xsd_enumerations(xsd)[0];
    let missing = lacking(enumeration, &all).expect("an enumeration of bureaus");
    let blessed = add_to_xsd(xsd, enumeration, &missing[..1]);
    assert!(
        blessed.contains(
            "<xs:enumeration value=\"SWJ\"/><!-- water -->\n    \
             <xs:enumeration value=\"JTW\"/><!-- transport -->\n  </xs:restriction>"
        ),
        "{blessed}"
    );
    let json = "{\"a\": {\"enum\": [\"GHZY\", \"SWJ\"]},\n \"b\": {\"enum\": [\n    \"GHZY\",\n    \"SWJ\"\n  ]}}";
    let mut found = Vec::new();
    json_enumerations(&serde_json::from_str(json).unwrap(), "", &mut found);
    let blessed = add_to_json(json, &found[0], &missing[..1]);
    assert!(
        blessed.contains("[\"GHZY\", \"SWJ\", \"JTW\"]"),
        "{blessed}"
    );
    assert!(
        blessed.contains("    \"SWJ\",\n    \"JTW\"\n  ]"),
        "{blessed}"
    );
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
