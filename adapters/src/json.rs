//! JSON reading shared by the JSON adapters: envelope checks, a parse that refuses a key given
//! twice, then typed access to fields that reports problems with their JSON pointer (RFC 6901).
//!
//! Each accessor of [`Obj`] names the JSON types its field may have, exactly as the format's
//! schema file says (`string`, `string_opt`, `nullable_string_opt`, `integer`,
//! `string_or_integer`), and integers carry the schema's bounds ([`Bounds`]). There is no
//! accessor that takes "any scalar": a number where a string belongs, or a `null` where the
//! schema allows none, is refused.

use std::cell::RefCell;
use std::fmt;

use schemas::BureauId;
use schemas::{CanonicalField, FigureSet, NativeValue, NormalizeError, Normalizer, Problem};
use serde::Serialize;
use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::adapter::{DecodeError, EncodeError, Encoded, NativeFormat, check_envelope};
use crate::xml::truncate;

/// Checks the envelope of a JSON message and parses it.
pub(crate) fn decode_value(
    format: &NativeFormat,
    body: &[u8],
    content_type: &str,
) -> Result<Value, DecodeError> {
    if let Some(charset) = check_envelope(format, body, content_type)?
        && charset != "utf-8"
        && charset != "utf8"
    {
        return Err(DecodeError::Encoding(format!(
            "content type says charset={charset}; JSON is UTF-8 (RFC 8259)"
        )));
    }
    if body.starts_with(b"\xEF\xBB\xBF") {
        return Err(DecodeError::Encoding(
            "byte order mark before JSON (RFC 8259 forbids it)".into(),
        ));
    }
    if std::str::from_utf8(body).is_err() {
        return Err(DecodeError::Encoding("bytes are not valid UTF-8".into()));
    }
    parse_strict(body)
}

/// Where a key was given a second time: the pointer's segments, innermost first (they are
/// collected while the parse unwinds, so the happy path builds no pointer at all).
#[derive(Default)]
struct Duplicate {
    segments: Vec<String>,
    text: String,
}

/// Reads one JSON value into a `serde_json::Value`, as serde_json would, except that an object
/// giving a key twice is an error (serde_json keeps the last value, which would be a guess).
/// serde_json's own limits (nesting depth) still apply: this only supplies the visitor.
#[derive(Clone, Copy)]
struct StrictValue<'d> {
    duplicate: &'d RefCell<Option<Duplicate>>,
}

impl StrictValue<'_> {
    /// Records `segment` on the way out of a failed nested value, if it failed on a duplicate.
    fn unwind(&self, segment: impl fmt::Display) {
        if let Some(duplicate) = self.duplicate.borrow_mut().as_mut() {
            duplicate.segments.push(segment.to_string());
        }
    }
}

impl<'de> DeserializeSeed<'de> for StrictValue<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for StrictValue<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // JSON has no NaN or infinity, so serde_json never hands one over.
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        loop {
            match seq.next_element_seed(self) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => return Ok(Value::Array(items)),
                Err(e) => {
                    self.unwind(items.len());
                    return Err(e);
                }
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            let value = match access.next_value_seed(self) {
                Ok(value) => value,
                Err(e) => {
                    self.unwind(json_pointer_segment(&key));
                    return Err(e);
                }
            };
            if map.contains_key(&key) {
                *self.duplicate.borrow_mut() = Some(Duplicate {
                    segments: vec![json_pointer_segment(&key)],
                    text: value_text(&value),
                });
                return Err(A::Error::custom("a key is given twice"));
            }
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

/// Parses a whole JSON document (nothing but white space after the value), refusing duplicate
/// keys: a key given twice is reported at the JSON pointer of its second occurrence.
/// Parses one JSON value of the gateway's own API (UTF-8, no byte order mark), as strictly as
/// every format.
pub(crate) fn parse_upload(body: &[u8]) -> Result<Value, DecodeError> {
    if std::str::from_utf8(body).is_err() {
        return Err(DecodeError::Encoding("bytes are not valid UTF-8".into()));
    }
    parse_strict(body)
}

fn parse_strict(body: &[u8]) -> Result<Value, DecodeError> {
    let duplicate = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed = StrictValue {
        duplicate: &duplicate,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match (parsed, duplicate.into_inner()) {
        (Ok(value), _) => Ok(value),
        (Err(_), Some(duplicate)) => {
            let mut path = String::new();
            for segment in duplicate.segments.iter().rev() {
                path.push('/');
                path.push_str(segment);
            }
            Err(DecodeError::Invalid(vec![NormalizeError {
                field: CanonicalField::Document,
                path,
                text: duplicate.text,
                problem: Problem::Inconsistent {
                    reason: "key given more than once",
                },
            }]))
        }
        (Err(e), None) => Err(DecodeError::Malformed {
            path: format!("line {} column {}", e.line(), e.column()),
            message: e.to_string(),
        }),
    }
}

/// Bounds of a JSON integer, as the format's schema file states them (`minimum`, `maximum`),
/// with their digits for the error report. Write them with [`bounds!`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub(crate) min: u64,
    pub(crate) max: u64,
    pub(crate) min_text: &'static str,
    pub(crate) max_text: &'static str,
}

/// `bounds!(1, 365)`: the [`Bounds`] `1..=365`.
macro_rules! bounds {
    ($min:literal, $max:literal) => {
        $crate::json::Bounds {
            min: $min,
            max: $max,
            min_text: stringify!($min),
            max_text: stringify!($max),
        }
    };
}
pub(crate) use bounds;

impl Bounds {
    fn out_of_range(self) -> Problem {
        Problem::OutOfRange {
            min: self.min_text,
            max: self.max_text,
        }
    }

    /// The digits of a JSON integer within these bounds.
    fn check(self, number: &Number) -> Result<String, Problem> {
        match number.as_u64() {
            Some(v) if (self.min..=self.max).contains(&v) => Ok(v.to_string()),
            Some(_) => Err(self.out_of_range()),
            // Negative, or beyond u64 (serde_json reads those as floats).
            None if number.is_i64() || number.as_f64().is_some_and(|f| f.abs() >= 1.8e19) => {
                Err(self.out_of_range())
            }
            None => Err(Problem::WrongType {
                expected: "a JSON integer (no fraction or exponent)",
            }),
        }
    }
}

/// How a JSON format ends its document: some write a final newline, some do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FinalNewline {
    Yes,
    No,
}

/// Writes a native JSON document (pretty-printed) of `bureau`'s format.
pub(crate) fn encode_pretty(
    bureau: BureauId,
    format: &NativeFormat,
    message: &impl Serialize,
    final_newline: FinalNewline,
) -> Result<Encoded, EncodeError> {
    let mut body = serde_json::to_vec_pretty(message).map_err(|e| EncodeError {
        bureau,
        field: "document",
        reason: e.to_string(),
    })?;
    if final_newline == FinalNewline::Yes {
        body.push(b'\n');
    }
    Ok(Encoded {
        content_type: format.media_type.to_owned(),
        body,
    })
}

/// Appends a key to a JSON pointer, escaping `~` and `/`.
pub(crate) fn pointer(base: &str, key: &str) -> String {
    let mut out = String::with_capacity(base.len() + key.len() + 1);
    out.push_str(base);
    out.push('/');
    push_escaped(&mut out, key);
    out
}

/// One reference token of a JSON pointer: `key` with `~` and `/` escaped.
fn json_pointer_segment(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    push_escaped(&mut out, key);
    out
}

fn push_escaped(out: &mut String, key: &str) {
    for c in key.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
}

/// A JSON object being read, with its pointer for error reports.
pub(crate) struct Obj<'a> {
    pub(crate) map: &'a Map<String, Value>,
    pub(crate) pointer: String,
}

/// A value as text for error reports (strings unquoted), at most 200 characters.
pub(crate) fn value_text(value: &Value) -> String {
    match value {
        Value::String(s) => truncate(s),
        other => truncate(&other.to_string()),
    }
}

impl<'a> Obj<'a> {
    /// The root of a document, which must be an object.
    pub(crate) fn root(value: &'a Value, n: &mut Normalizer) -> Option<Self> {
        Self::of(value, String::new(), n)
    }

    fn of(value: &'a Value, pointer: String, n: &mut Normalizer) -> Option<Self> {
        match value {
            Value::Object(map) => Some(Self { map, pointer }),
            other => {
                n.reject(
                    CanonicalField::Document,
                    if pointer.is_empty() {
                        "/".into()
                    } else {
                        pointer
                    },
                    value_text(other),
                    Problem::WrongType {
                        expected: "an object",
                    },
                );
                None
            }
        }
    }

    /// A nested object; missing or of another type is recorded against `field`.
    pub(crate) fn object(
        &self,
        key: &str,
        field: CanonicalField,
        n: &mut Normalizer,
    ) -> Option<Obj<'a>> {
        match self.map.get(key) {
            Some(value) => Self::of(value, pointer(&self.pointer, key), n),
            None => {
                n.reject(field, pointer(&self.pointer, key), "", Problem::Missing);
                None
            }
        }
    }

    /// The elements of a required array whose elements are objects. `None` when the key is
    /// missing or holds no array; an element that is not an object is `None` in the list. Each
    /// of these is recorded against `field`, at its pointer.
    pub(crate) fn objects(
        &self,
        key: &str,
        field: CanonicalField,
        n: &mut Normalizer,
    ) -> Option<Vec<Option<Obj<'a>>>> {
        let path = pointer(&self.pointer, key);
        let items = match self.map.get(key) {
            Some(Value::Array(items)) => items,
            Some(other) => {
                n.reject(
                    field,
                    path,
                    value_text(other),
                    Problem::WrongType {
                        expected: "a JSON array",
                    },
                );
                return None;
            }
            None => {
                n.reject(field, path, "", Problem::Missing);
                return None;
            }
        };
        let objects = items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let item_path = pointer(&path, &i.to_string());
                match item {
                    Value::Object(map) => Some(Obj {
                        map,
                        pointer: item_path,
                    }),
                    other => {
                        n.reject(
                            field,
                            item_path,
                            value_text(other),
                            Problem::WrongType {
                                expected: "an object",
                            },
                        );
                        None
                    }
                }
            })
            .collect();
        Some(objects)
    }

    /// The survey figures of the array at `key` (objects, under `survey.figures`), each read by
    /// `read` into one [`FigureSet`]; a missing array or an element that is no object leaves
    /// the set incomplete.
    pub(crate) fn figures(
        &self,
        key: &str,
        n: &mut Normalizer,
        mut read: impl FnMut(&Obj<'a>, &mut FigureSet, &mut Normalizer),
    ) -> FigureSet {
        let mut figures = FigureSet::new();
        match self.objects(key, CanonicalField::SurveyFigure, n) {
            Some(items) => {
                for item in items {
                    match item {
                        Some(figure) => read(&figure, &mut figures, n),
                        None => figures.push_unreadable(),
                    }
                }
            }
            None => figures.push_unreadable(),
        }
        figures
    }

    /// The path and text of `key` in this object (empty text when it is absent), for a rule
    /// of `schemas::rules` that finds fault with it.
    pub(crate) fn native(&self, key: &str) -> NativeValue {
        let text = self.map.get(key).map(value_text).unwrap_or_default();
        NativeValue::new(pointer(&self.pointer, key), text)
    }

    fn wrong_type(
        &self,
        n: &mut Normalizer,
        field: CanonicalField,
        key: &str,
        value: &Value,
        expected: &'static str,
    ) {
        n.reject(
            field,
            pointer(&self.pointer, key),
            value_text(value),
            Problem::WrongType { expected },
        );
    }

    /// Reads a required field the format's schema types as a JSON string (`"type": "string"`):
    /// any other JSON type, `null` included, is refused.
    pub(crate) fn string<T>(
        &self,
        n: &mut Normalizer,
        field: CanonicalField,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        let path = || pointer(&self.pointer, key);
        match self.map.get(key) {
            None => n.field(field, path, None, parse),
            Some(Value::String(text)) => n.field(field, path, Some(text), parse),
            Some(other) => {
                self.wrong_type(n, field, key, other, "a JSON string");
                None
            }
        }
    }

    /// Reads an optional field the format's schema types as a JSON string: absent is
    /// `Some(None)`; `null` is refused (the schema does not allow it: the format omits a key
    /// that has no value).
    pub(crate) fn string_opt<T>(
        &self,
        n: &mut Normalizer,
        field: CanonicalField,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<Option<T>> {
        match self.map.get(key) {
            None => Some(None),
            Some(_) => self.string(n, field, key, parse).map(Some),
        }
    }

    /// Reads an optional field the format's schema types as a string or `null`
    /// (`"type": ["string", "null"]`): absent and `null` are `Some(None)`.
    pub(crate) fn nullable_string_opt<T>(
        &self,
        n: &mut Normalizer,
        field: CanonicalField,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<Option<T>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(_) => self.string(n, field, key, parse).map(Some),
        }
    }

    /// Reads a required field the format's schema types as a JSON boolean
    /// (`"type": "boolean"`): any other JSON type, `null` and the strings `"true"` and
    /// `"false"` included, is refused.
    pub(crate) fn boolean(
        &self,
        n: &mut Normalizer,
        field: CanonicalField,
        key: &str,
    ) -> Option<bool> {
        match self.map.get(key) {
            Some(Value::Bool(yes)) => Some(*yes),
            None => {
                n.reject(field, pointer(&self.pointer, key), "", Problem::Missing);
                None
            }
            Some(other) => {
                self.wrong_type(n, field, key, other, "a JSON boolean");
                None
            }
        }
    }

    /// Reads a required field the format's schema types as a JSON integer within `bounds`
    /// (`"type": "integer"`, `minimum`, `maximum`); `parse` gets its digits.
    pub(crate) fn integer<T>(
        &self,
        n: &mut Normalizer,
        field: CanonicalField,
        key: &str,
        bounds: Bounds,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        self.number(n, field, key, bounds, false, parse)
    }

    /// Reads a required field the format's schema types as a string or an integer within
    /// `bounds` (`anyOf` of the two); `parse` gets the string, or the integer's digits.
    pub(crate) fn string_or_integer<T>(
        &self,
        n: &mut Normalizer,
        field: CanonicalField,
        key: &str,
        bounds: Bounds,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        self.number(n, field, key, bounds, true, parse)
    }

    fn number<T>(
        &self,
        n: &mut Normalizer,
        field: CanonicalField,
        key: &str,
        bounds: Bounds,
        or_string: bool,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        let path = || pointer(&self.pointer, key);
        match self.map.get(key) {
            None => n.field(field, path, None, parse),
            Some(Value::String(text)) if or_string => n.field(field, path, Some(text), parse),
            Some(value @ Value::Number(number)) => match bounds.check(number) {
                Ok(digits) => n.field(field, path, Some(&digits), parse),
                Err(problem) => {
                    n.reject(field, path(), value_text(value), problem);
                    None
                }
            },
            Some(other) => {
                let expected = if or_string {
                    "a JSON string or integer"
                } else {
                    "a JSON integer"
                };
                self.wrong_type(n, field, key, other, expected);
                None
            }
        }
    }

    /// The keys of `bodies` this document carries, in `bodies`' order. A document carries one
    /// body: a second is rejected at its pointer under `document` (`reason` says which bodies
    /// the format has) and `None` returned.
    pub(crate) fn bodies<'k>(
        &self,
        bodies: &[&'k str],
        reason: &'static str,
        n: &mut Normalizer,
    ) -> Option<Option<&'k str>> {
        let present: Vec<&'k str> = bodies
            .iter()
            .copied()
            .filter(|key| self.map.contains_key(*key))
            .collect();
        if let [_, second, ..] = present[..] {
            n.reject(
                CanonicalField::Document,
                pointer(&self.pointer, second),
                value_text(&self.map[second]),
                Problem::Inconsistent { reason },
            );
            return None;
        }
        Some(present.first().copied())
    }

    /// Rejects keys the format does not define.
    pub(crate) fn check_keys(&self, known: &[&str], n: &mut Normalizer) {
        for (key, value) in self.map {
            if !known.contains(&key.as_str()) {
                n.reject(
                    CanonicalField::Document,
                    pointer(&self.pointer, key),
                    value_text(value),
                    Problem::UnknownField,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_escape_per_rfc_6901() {
        assert_eq!(pointer("/a", "b/c~d"), "/a/b~1c~0d");
    }

    #[test]
    fn reports_wrong_types_missing_and_unknown_keys_with_pointers() {
        let value: Value = serde_json::from_str(r#"{"a": {"b": 1.5, "c": true}, "z": 1}"#).unwrap();
        let mut n = Normalizer::new();
        let root = Obj::root(&value, &mut n).unwrap();
        let a = root.object("a", CanonicalField::Document, &mut n).unwrap();
        assert!(
            a.integer(
                &mut n,
                CanonicalField::Sequence,
                "b",
                bounds!(0, 9),
                |t| Ok(t.to_owned())
            )
            .is_none()
        );
        assert!(
            a.string(&mut n, CanonicalField::CaseId, "missing", |t| Ok(
                t.to_owned()
            ))
            .is_none()
        );
        root.check_keys(&["a"], &mut n);
        let paths: Vec<_> = n.errors().iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/a/b", "/a/missing", "/z"]);
    }

    fn duplicate_at(body: &str) -> Option<String> {
        match parse_strict(body.as_bytes()) {
            Err(DecodeError::Invalid(errors)) => {
                assert_eq!(errors.len(), 1);
                assert_eq!(errors[0].field, CanonicalField::Document);
                Some(errors[0].path.clone())
            }
            _ => None,
        }
    }

    #[test]
    fn a_key_given_twice_is_refused_at_its_second_occurrence() {
        for (body, path) in [
            (r#"{"sender": "A", "x": 1, "sender": "B"}"#, "/sender"),
            (r#"{"a": {"b": 1, "b": 1}}"#, "/a/b"),
            (r#"{"l": [{"k": 1}, {"k": 1, "k": 2}]}"#, "/l/1/k"),
            (r#"{"a/b": {"~": [], "~": []}}"#, "/a~1b/~0"),
            (r#"{"a": [[{"x": null, "x": null}]]}"#, "/a/0/0/x"),
        ] {
            assert_eq!(duplicate_at(body).as_deref(), Some(path), "{body}");
        }
        // The same key in different objects is no duplicate.
        let value =
            parse_strict(br#"{"a": {"k": 1}, "b": {"k": 1}, "l": [{"k": 1}, {"k": 2}]}"#).unwrap();
        assert_eq!(value["l"][1]["k"], 2);
    }

    #[test]
    fn the_strict_parse_reads_what_serde_json_reads() {
        let text = r#"{"s": "a\u00e9\"", "i": -3, "u": 18446744073709551615, "f": 1.5,
            "b": [true, false, null], "o": {}}"#;
        let ours = parse_strict(text.as_bytes()).unwrap();
        let theirs: Value = serde_json::from_str(text).unwrap();
        assert_eq!(ours, theirs);
        for bad in ["", "{", "{} x", "[1,]", r#"{"a" 1}"#] {
            assert!(
                matches!(
                    parse_strict(bad.as_bytes()),
                    Err(DecodeError::Malformed { .. })
                ),
                "{bad}"
            );
        }
        // serde_json's nesting limit still holds: deep input is refused, not a stack overflow.
        let deep = "[".repeat(100_000);
        assert!(matches!(
            parse_strict(deep.as_bytes()),
            Err(DecodeError::Malformed { .. })
        ));
    }

    #[test]
    fn json_types_and_bounds_are_the_schemas() {
        let value = parse_strict(
            br#"{"name": 12, "id": null, "big": 366, "neg": -1, "frac": 2.0, "huge": 1e30,
                "str": "7", "ok": 365, "either": 12, "opt": null, "nul": null}"#,
        )
        .unwrap();
        let mut n = Normalizer::new();
        let root = Obj::root(&value, &mut n).unwrap();
        let text = |t: &str| Ok(t.to_owned());
        let days = bounds!(1, 365);
        let f = CanonicalField::Document;
        assert!(root.string(&mut n, f, "name", text).is_none());
        assert!(root.string_opt(&mut n, f, "id", text).is_none());
        assert!(root.integer(&mut n, f, "big", days, text).is_none());
        assert!(root.integer(&mut n, f, "neg", days, text).is_none());
        assert!(root.integer(&mut n, f, "frac", days, text).is_none());
        assert!(root.integer(&mut n, f, "huge", days, text).is_none());
        assert!(root.integer(&mut n, f, "str", days, text).is_none());
        assert_eq!(
            root.integer(&mut n, f, "ok", days, text).as_deref(),
            Some("365")
        );
        assert_eq!(
            root.string_or_integer(&mut n, f, "either", days, text)
                .as_deref(),
            Some("12")
        );
        assert_eq!(
            root.string_or_integer(&mut n, f, "str", days, text)
                .as_deref(),
            Some("7")
        );
        assert_eq!(root.nullable_string_opt(&mut n, f, "nul", text), Some(None));
        assert_eq!(root.string_opt(&mut n, f, "absent", text), Some(None));
        let found: Vec<_> = n
            .errors()
            .iter()
            .map(|e| (e.path.as_str(), e.problem.clone()))
            .collect();
        let range = Problem::OutOfRange {
            min: "1",
            max: "365",
        };
        assert_eq!(
            found,
            [
                (
                    "/name",
                    Problem::WrongType {
                        expected: "a JSON string"
                    }
                ),
                (
                    "/id",
                    Problem::WrongType {
                        expected: "a JSON string"
                    }
                ),
                ("/big", range.clone()),
                ("/neg", range.clone()),
                (
                    "/frac",
                    Problem::WrongType {
                        expected: "a JSON integer (no fraction or exponent)"
                    }
                ),
                ("/huge", range),
                (
                    "/str",
                    Problem::WrongType {
                        expected: "a JSON integer"
                    }
                ),
            ]
        );
    }

    #[test]
    fn arrays_of_objects_report_each_element_that_is_not_one() {
        let value: Value = serde_json::from_str(r#"{"l": [{"x": 1}, 2], "s": "x"}"#).unwrap();
        let mut n = Normalizer::new();
        let root = Obj::root(&value, &mut n).unwrap();
        let items = root
            .objects("l", CanonicalField::SurveyFigure, &mut n)
            .unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].as_ref().map(|o| o.pointer.as_str()), Some("/l/0"));
        assert!(items[1].is_none());
        assert!(
            root.objects("s", CanonicalField::SurveyFile, &mut n)
                .is_none()
        );
        assert!(
            root.objects("m", CanonicalField::SurveyFile, &mut n)
                .is_none()
        );
        let found: Vec<_> = n
            .errors()
            .iter()
            .map(|e| (e.path.as_str(), e.field, e.problem.clone()))
            .collect();
        assert_eq!(
            found,
            [
                (
                    "/l/1",
                    CanonicalField::SurveyFigure,
                    Problem::WrongType {
                        expected: "an object"
                    }
                ),
                (
                    "/s",
                    CanonicalField::SurveyFile,
                    Problem::WrongType {
                        expected: "a JSON array"
                    }
                ),
                ("/m", CanonicalField::SurveyFile, Problem::Missing),
            ]
        );
    }
}
