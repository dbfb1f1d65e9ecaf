//! JSON reading shared by the JSON adapters: envelope checks, then typed access to fields that
//! reports problems with their JSON pointer (RFC 6901).

use schemas::BureauId;
use schemas::{CanonicalField, FigureSet, NativeValue, Normalizer, Problem};
use serde::Serialize;
use serde_json::{Map, Value};

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
    serde_json::from_slice(body).map_err(|e| DecodeError::Malformed {
        path: format!("line {} column {}", e.line(), e.column()),
        message: e.to_string(),
    })
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
    for c in key.chars() {
        match c {
            '~' => out.push_str("~0"),
            '/' => out.push_str("~1"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON object being read, with its pointer for error reports.
pub(crate) struct Obj<'a> {
    pub(crate) map: &'a Map<String, Value>,
    pub(crate) pointer: String,
}

/// The text of a scalar: strings as they are, whole numbers in digits. Other numbers are refused
/// because a float may already have lost the digits the sender meant.
fn scalar_text(value: &Value) -> Result<std::borrow::Cow<'_, str>, Problem> {
    match value {
        Value::String(s) => Ok(s.as_str().into()),
        Value::Number(n) if n.is_u64() => Ok(n.to_string().into()),
        _ => Err(Problem::WrongType {
            expected: "a string (or a whole number)",
        }),
    }
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

    /// Reads and parses a required scalar field.
    pub(crate) fn take<T>(
        &self,
        n: &mut Normalizer,
        field: CanonicalField,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        let path = || pointer(&self.pointer, key);
        match self.map.get(key) {
            None | Some(Value::Null) => n.field(field, path, None, parse),
            Some(value) => match scalar_text(value) {
                Ok(text) => n.field(field, path, Some(&text), parse),
                Err(problem) => {
                    n.reject(field, path(), value_text(value), problem);
                    None
                }
            },
        }
    }

    /// Reads and parses an optional scalar field (absent or `null` is `Some(None)`).
    pub(crate) fn take_opt<T>(
        &self,
        n: &mut Normalizer,
        field: CanonicalField,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<Option<T>> {
        match self.map.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(_) => self.take(n, field, key, parse).map(Some),
        }
    }

    /// Reads a required field the format types as a JSON string; any other JSON type is
    /// refused (for formats that write every value as text).
    pub(crate) fn string<T>(
        &self,
        n: &mut Normalizer,
        field: CanonicalField,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        self.typed(n, field, key, Value::is_string, "a JSON string", parse)
    }

    /// Reads an optional field the format types as a JSON string: absent is `Some(None)`,
    /// `null` is refused (such formats omit a key that has no value).
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

    /// Reads a required field the format types as a JSON integer.
    pub(crate) fn integer<T>(
        &self,
        n: &mut Normalizer,
        field: CanonicalField,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        // A fraction or a sign is refused by `take` itself.
        self.typed(n, field, key, Value::is_number, "a JSON integer", parse)
    }

    fn typed<T>(
        &self,
        n: &mut Normalizer,
        field: CanonicalField,
        key: &str,
        is_type: fn(&Value) -> bool,
        expected: &'static str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        match self.map.get(key) {
            Some(value) if !is_type(value) => {
                n.reject(
                    field,
                    pointer(&self.pointer, key),
                    value_text(value),
                    Problem::WrongType { expected },
                );
                None
            }
            _ => self.take(n, field, key, parse),
        }
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
            a.take(&mut n, CanonicalField::Sequence, "b", |t| Ok(t.to_owned()))
                .is_none()
        );
        assert!(
            a.take(&mut n, CanonicalField::CaseId, "missing", |t| Ok(
                t.to_owned()
            ))
            .is_none()
        );
        root.check_keys(&["a"], &mut n);
        let paths: Vec<_> = n.errors().iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/a/b", "/a/missing", "/z"]);
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
