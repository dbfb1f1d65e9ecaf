//! XML reading and writing shared by the XML adapters, on quick-xml.
//!
//! Reading builds a small element tree after checking what every XML format must refuse: a
//! declared encoding other than the format's, bytes invalid in that encoding, any DOCTYPE (so no
//! entity declarations, no entity-expansion bombs, no external fetches), undeclared entities,
//! processing instructions, and nesting or element counts beyond fixed limits.
//!
//! Namespaces: a format without them ([`parse`]) refuses any namespace declaration or prefixed
//! name (but `xml:lang`, bound by XML itself); a format that declares them
//! ([`parse_namespaced`]) gets each element's namespace URI (resolved, so the prefix a sender
//! chose does not matter) and refuses an element with an undeclared prefix or in a namespace it
//! does not list. Attributes are read by their local names.

use std::borrow::Cow;

use encoding_rs::{Encoding, GB18030, GBK, UTF_8};
use quick_xml::XmlVersion;
use quick_xml::events::{BytesDecl, BytesStart, BytesText, Event};
use quick_xml::name::ResolveResult;
use quick_xml::reader::{NsReader, Reader};
use quick_xml::writer::Writer;
use schemas::{CanonicalField, Normalizer, Problem};

use crate::adapter::{DecodeError, NativeFormat, Syntax, check_envelope};

/// Deepest element nesting any bureau format needs, with room to spare.
const MAX_DEPTH: usize = 12;
/// Most elements in one document: a 16 MiB batch of ~40-element cases stays far below it.
const MAX_ELEMENTS: usize = 1_000_000;

/// One element: its name, attributes, child elements and trimmed text content. Text borrows
/// from the decoded document unless references had to be resolved in it.
#[derive(Debug, Default)]
pub(crate) struct Element<'a> {
    pub(crate) name: String,
    /// The namespace URI its name is in (only with [`parse_namespaced`]; `None`: no namespace).
    pub(crate) namespace: Option<String>,
    pub(crate) attributes: Vec<(String, String)>,
    pub(crate) children: Vec<Element<'a>>,
    pub(crate) text: Cow<'a, str>,
}

impl<'a> Element<'a> {
    /// The first child element with this name.
    pub(crate) fn child(&self, name: &str) -> Option<&Element<'a>> {
        self.children.iter().find(|c| c.name == name)
    }

    /// The text of the first child element with this name.
    pub(crate) fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_ref())
    }

    /// The child elements with this name.
    pub(crate) fn children_named<'s>(
        &'s self,
        name: &'s str,
    ) -> impl Iterator<Item = &'s Element<'a>> + 's {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// An attribute's value.
    pub(crate) fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Rejects child elements the format does not define, and fields given twice (which of
    /// the two would be a guess). `repeated` lists the children that may occur many times.
    pub(crate) fn check_children(
        &self,
        path: &str,
        single: &[&str],
        repeated: &[&str],
        n: &mut Normalizer,
    ) {
        for (i, child) in self.children.iter().enumerate() {
            let name = child.name.as_str();
            if repeated.contains(&name) {
                continue;
            }
            if !single.contains(&name) {
                n.reject(
                    CanonicalField::Document,
                    format!("{path}/{name}"),
                    truncate(&child.text),
                    Problem::UnknownField,
                );
            } else if self.children[..i].iter().any(|c| c.name == name) {
                n.reject(
                    CanonicalField::Document,
                    format!("{path}/{name}"),
                    truncate(&child.text),
                    Problem::Inconsistent {
                        reason: "field given more than once",
                    },
                );
            }
        }
    }
}

impl Element<'_> {
    /// Rejects attributes the format does not define.
    pub(crate) fn check_attributes(&self, path: &str, allowed: &[&str], n: &mut Normalizer) {
        for (name, value) in &self.attributes {
            if !allowed.contains(&name.as_str()) {
                n.reject(
                    CanonicalField::Document,
                    format!("{path}/@{name}"),
                    truncate(value),
                    Problem::UnknownField,
                );
            }
        }
    }
}

/// At most 200 characters of a value, for error reports.
pub(crate) fn truncate(text: &str) -> String {
    text.chars().take(200).collect()
}

/// Whether a declared encoding is acceptable for a format that requires `required`. GBK is the
/// subset of GB18030 older systems still declare; decoding it as GB18030 reads it exactly.
fn encoding_matches(declared: &'static Encoding, required: &'static Encoding) -> bool {
    declared == required || (required == GB18030 && declared == GBK)
}

/// The encoding named in the XML declaration, if the document has one.
fn declared_encoding(body: &[u8]) -> Result<Option<&'static Encoding>, DecodeError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    if !body.starts_with(b"<?xml") {
        return Ok(None);
    }
    // The declaration is ASCII in every encoding a bureau uses; read it alone so that the rest
    // is decoded only once we know how.
    let end = body
        .iter()
        .take(512)
        .position(|&b| b == b'>')
        .ok_or_else(|| malformed("/", "XML declaration is not closed"))?;
    let prolog = std::str::from_utf8(&body[..=end])
        .ok()
        .filter(|p| p.is_ascii())
        .ok_or_else(|| DecodeError::Encoding("XML declaration is not ASCII".into()))?;
    let mut reader = Reader::from_str(prolog);
    let Ok(Event::Decl(decl)) = reader.read_event() else {
        return Err(malformed("/", "XML declaration cannot be read"));
    };
    match decl.encoding() {
        None => Ok(None),
        Some(Err(e)) => Err(malformed("/", &e.to_string())),
        Some(Ok(label)) => Encoding::for_label(label.trim().as_bytes())
            .map(Some)
            .ok_or_else(|| DecodeError::Encoding(format!("unknown encoding {label:?}"))),
    }
}

fn malformed(path: &str, message: &str) -> DecodeError {
    DecodeError::Malformed {
        path: path.to_owned(),
        message: message.to_owned(),
    }
}

/// Checks the envelope and encoding of an XML message and decodes it to text (borrowed when
/// the message is already UTF-8). Parse the text with [`parse`].
pub(crate) fn decode_text<'b>(
    format: &NativeFormat,
    body: &'b [u8],
    content_type: &str,
) -> Result<Cow<'b, str>, DecodeError> {
    let charset = check_envelope(format, body, content_type)?;
    let Syntax::Xml { encoding: required } = format.syntax else {
        unreachable!("decode_text is only called by XML adapters");
    };
    // XML without an encoding declaration is UTF-8 (XML 1.0 §4.3.3).
    let declared = declared_encoding(body)?.unwrap_or(UTF_8);
    if !encoding_matches(declared, required) {
        return Err(DecodeError::Encoding(format!(
            "document declares {} but this format is {}",
            declared.name(),
            required.name()
        )));
    }
    if let Some(charset) = charset {
        let matches = Encoding::for_label(charset.as_bytes())
            .is_some_and(|label| encoding_matches(label, required));
        if !matches {
            return Err(DecodeError::Encoding(format!(
                "content type says charset={charset} but this format is {}",
                required.name()
            )));
        }
    }
    let body = if required == UTF_8 {
        body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
    } else {
        body
    };
    required
        .decode_without_bom_handling_and_without_replacement(body)
        .ok_or_else(|| DecodeError::Encoding(format!("bytes are not valid {}", required.name())))
}

fn path_of(stack: &[Element<'_>]) -> String {
    let mut path = String::new();
    for element in stack {
        path.push('/');
        path.push_str(&element.name);
    }
    if path.is_empty() {
        path.push('/');
    }
    path
}

/// Counts one more element and reads its start tag, refusing a document that nests deeper or
/// holds more elements than any bureau format needs.
fn open_element<'a>(
    start: &BytesStart<'_>,
    stack: &[Element<'_>],
    count: &mut usize,
    namespace: Option<String>,
    namespaces: Option<&[&str]>,
) -> Result<Element<'a>, DecodeError> {
    *count += 1;
    if stack.len() >= MAX_DEPTH || *count > MAX_ELEMENTS {
        return Err(malformed(
            &path_of(stack),
            "document nests too deep or too wide",
        ));
    }
    let mut element = start_element(start, stack, namespaces.is_some())?;
    let path = || child_path(stack, start);
    match (namespaces, &namespace) {
        (None, Some(uri)) => {
            return Err(malformed(
                &path(),
                &format!("namespaces are not part of this format (the element is in {uri})"),
            ));
        }
        (Some(allowed), Some(uri)) if !allowed.contains(&uri.as_str()) => {
            // Paths of a namespaced format name elements by their local names, as its decoder
            // does: the prefix is the sender's choice.
            let parent = if stack.is_empty() {
                String::new()
            } else {
                path_of(stack)
            };
            return Err(malformed(
                &format!("{parent}/{}", element.name),
                &format!(
                    "namespace {uri} is not this format's (expected {})",
                    allowed.join(" or ")
                ),
            ));
        }
        _ => {}
    }
    element.namespace = namespace;
    Ok(element)
}

/// The path of the element `start` opens, under `stack`.
fn child_path(stack: &[Element<'_>], start: &BytesStart<'_>) -> String {
    let parent = if stack.is_empty() {
        String::new()
    } else {
        path_of(stack)
    };
    format!("{parent}/{}", element_name(start))
}

/// An element's name as written (with its prefix), for paths in errors.
fn element_name(start: &BytesStart<'_>) -> String {
    start.name().as_ref().to_owned()
}

fn start_element<'a>(
    start: &BytesStart<'_>,
    stack: &[Element<'_>],
    namespaced: bool,
) -> Result<Element<'a>, DecodeError> {
    let name = start.local_name().as_ref().to_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| malformed(&path_of(stack), &e.to_string()))?;
        // A namespace declaration is not data: resolved into the elements' namespaces where the
        // format has them, refused where it has none.
        if attribute.key.as_namespace_binding().is_some() {
            if namespaced {
                continue;
            }
            return Err(malformed(
                &child_path(stack, start),
                "namespace declarations are not part of this format",
            ));
        }
        // `xml:` (xml:lang, xml:space) is bound by XML itself, in every document.
        if !namespaced && attribute.key.prefix().is_some_and(|p| p.as_ref() != "xml") {
            return Err(malformed(
                &child_path(stack, start),
                "prefixed names are not part of this format",
            ));
        }
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| malformed(&path_of(stack), &e.to_string()))?;
        // Raw characters were checked over the whole document; this catches references.
        if let Some(c) = value.chars().find(|&c| !is_xml_char(c)) {
            return Err(forbidden_char(stack, c));
        }
        attributes.push((
            attribute.key.local_name().as_ref().to_owned(),
            value.into_owned(),
        ));
    }
    Ok(Element {
        name,
        attributes,
        ..Element::default()
    })
}

/// Whether `c` is a character XML 1.0 allows (production `Char`, §2.2): tab, line feed,
/// carriage return, and U+0020 and above except the surrogates (which a Rust string cannot hold)
/// and U+FFFE, U+FFFF.
pub(crate) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// The byte offset of the first character XML 1.0 forbids, if any. A byte scan: in UTF-8 the
/// forbidden characters are the C0 controls other than tab, LF and CR (one byte each) and
/// U+FFFE/U+FFFF (`EF BF BE`, `EF BF BF`).
fn first_forbidden_char(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    bytes.iter().enumerate().find_map(|(i, &b)| {
        let forbidden = match b {
            b'\t' | b'\n' | b'\r' => false,
            0..0x20 => true,
            0xEF => matches!(bytes.get(i + 1..i + 3), Some([0xBF, 0xBE | 0xBF])),
            _ => false,
        };
        forbidden.then_some(i)
    })
}

fn forbidden_char(stack: &[Element<'_>], c: char) -> DecodeError {
    malformed(
        &path_of(stack),
        &format!(
            "character U+{:04X} is not allowed in XML 1.0 (production Char)",
            u32::from(c)
        ),
    )
}

/// Refuses content that mixes text and child elements. Every bureau format is element-only
/// or text-only (no XSD declares `mixed`): text beside child elements (stray text, a CDATA
/// block, a reference) or a child element inside a text field would be dropped or glued
/// together silently, which is guessing.
fn mixed_content(stack: &[Element<'_>], what: &str) -> DecodeError {
    malformed(
        &path_of(stack),
        &format!("mixed content: {what}; an element holds either child elements or text"),
    )
}

/// Adds text (or a resolved reference) to the element being read. White space beside child
/// elements is indentation and dropped; anything else there is mixed content.
fn push_text<'a>(
    stack: &mut [Element<'a>],
    content: Cow<'a, str>,
    what: &str,
) -> Result<(), DecodeError> {
    let blank = content.trim_matches(XML_SPACE).is_empty();
    match stack.last_mut() {
        Some(current) if !current.children.is_empty() => {
            if blank {
                Ok(())
            } else {
                Err(mixed_content(
                    stack,
                    &format!("{what} beside child elements"),
                ))
            }
        }
        Some(current) if current.text.is_empty() => {
            current.text = content;
            Ok(())
        }
        Some(current) => {
            current.text.to_mut().push_str(&content);
            Ok(())
        }
        None if blank => Ok(()),
        None => Err(malformed("/", &format!("{what} outside the root element"))),
    }
}

/// White space as XML 1.0 defines it (production `S`): the only characters trimmed from text.
const XML_SPACE: [char; 4] = [' ', '\t', '\n', '\r'];

/// Makes `element` a child of the element being read (or the root). A child inside text is
/// mixed content; white space before the first child is indentation.
fn attach<'a>(
    stack: &mut [Element<'a>],
    root: &mut Option<Element<'a>>,
    element: Element<'a>,
) -> Result<(), DecodeError> {
    match stack.last_mut() {
        Some(parent) => {
            if !parent.text.is_empty() {
                if !parent.text.trim_matches(XML_SPACE).is_empty() {
                    let what = format!("element <{}> inside text", element.name);
                    return Err(mixed_content(stack, &what));
                }
                parent.text = Cow::Borrowed("");
            }
            parent.children.push(element);
        }
        None => *root = Some(element),
    }
    Ok(())
}

/// Parses a decoded document into its root element.
///
/// Besides well-formedness, it refuses what no bureau format allows: a DOCTYPE, processing
/// instructions, undeclared entities, characters outside XML 1.0's `Char` production (raw or as
/// character references), mixed content (see [`mixed_content`]), and nesting or element counts
/// beyond fixed limits. Text is trimmed of XML white space only (a vertical tab is refused,
/// not trimmed).
pub(crate) fn parse(text: &str) -> Result<Element<'_>, DecodeError> {
    parse_with(text, None)
}

/// [`parse`] for a format whose elements are in the namespaces `allowed` (or in none): each
/// element carries its namespace URI, whatever prefix names it; an undeclared prefix or another
/// namespace is refused at the element's path.
pub(crate) fn parse_namespaced<'t>(
    text: &'t str,
    allowed: &[&str],
) -> Result<Element<'t>, DecodeError> {
    parse_with(text, Some(allowed))
}

fn parse_with<'t>(text: &'t str, namespaces: Option<&[&str]>) -> Result<Element<'t>, DecodeError> {
    let forbidden_at = first_forbidden_char(text);
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let (resolved, event) = reader
            .read_resolved_event()
            .map_err(|e| malformed(&path_of(&stack), &e.to_string()))?;
        let namespace = match resolved {
            ResolveResult::Unbound => None,
            ResolveResult::Bound(ns) => Some(ns.as_ref().to_owned()),
            ResolveResult::Unknown(prefix) => {
                return Err(malformed(
                    &path_of(&stack),
                    &format!("namespace prefix {prefix:?} is not declared"),
                ));
            }
        };
        if let Some(at) = forbidden_at
            && reader.buffer_position() > at as u64
        {
            let c = text[at..].chars().next().unwrap_or('\0');
            let message = format!(
                "character U+{:04X} is not allowed in XML 1.0 (production Char)",
                u32::from(c)
            );
            // In a tag (an attribute value), the path names the tag's element.
            return Err(match &event {
                Event::Start(start) | Event::Empty(start) => {
                    let mut path = if stack.is_empty() {
                        String::new()
                    } else {
                        path_of(&stack)
                    };
                    path.push('/');
                    path.push_str(start.local_name().as_ref());
                    malformed(&path, &message)
                }
                _ => malformed(&path_of(&stack), &message),
            });
        }
        match event {
            Event::DocType(_) => return Err(DecodeError::DtdForbidden),
            Event::PI(_) => {
                return Err(malformed(
                    &path_of(&stack),
                    "processing instructions are not accepted",
                ));
            }
            Event::Decl(_) | Event::Comment(_) => {}
            Event::Start(start) | Event::Empty(start) if root.is_some() => {
                let _ = start;
                return Err(malformed("/", "content after the root element"));
            }
            Event::Start(start) => {
                let element = open_element(&start, &stack, &mut count, namespace, namespaces)?;
                if let Some(parent) = stack.last()
                    && !parent.text.trim_matches(XML_SPACE).is_empty()
                {
                    let what = format!("element <{}> inside text", element.name);
                    return Err(mixed_content(&stack, &what));
                }
                stack.push(element);
            }
            Event::Empty(start) => {
                let element = open_element(&start, &stack, &mut count, namespace, namespaces)?;
                attach(&mut stack, &mut root, element)?;
            }
            Event::End(_) => {
                let Some(mut element) = stack.pop() else {
                    return Err(malformed("/", "unexpected end tag"));
                };
                element.text = match element.text {
                    Cow::Borrowed(text) => Cow::Borrowed(text.trim_matches(XML_SPACE)),
                    Cow::Owned(text) if text.trim_matches(XML_SPACE).len() == text.len() => {
                        Cow::Owned(text)
                    }
                    Cow::Owned(text) => Cow::Owned(text.trim_matches(XML_SPACE).to_owned()),
                };
                attach(&mut stack, &mut root, element)?;
            }
            Event::Text(text) => {
                let content = text.xml10_content();
                push_text(&mut stack, content, "text")?;
            }
            Event::CData(cdata) => {
                if stack.is_empty() {
                    return Err(malformed("/", "CDATA outside the root element"));
                }
                push_text(&mut stack, cdata.xml10_content(), "a CDATA section")?;
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) if is_xml_char(c) => c,
                    Ok(Some(c)) => return Err(forbidden_char(&stack, c)),
                    Ok(None) => match reference.as_ref() {
                        "lt" => '<',
                        "gt" => '>',
                        "amp" => '&',
                        "apos" => '\'',
                        "quot" => '"',
                        other => {
                            return Err(malformed(
                                &path_of(&stack),
                                &format!("undeclared entity &{other};"),
                            ));
                        }
                    },
                    Err(e) => return Err(malformed(&path_of(&stack), &e.to_string())),
                };
                if stack.is_empty() {
                    return Err(malformed("/", "reference outside the root element"));
                }
                let mut buf = [0u8; 4];
                let content = Cow::Owned(resolved.encode_utf8(&mut buf).to_owned());
                push_text(&mut stack, content, "a reference")?;
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(malformed(
            &path_of(&stack),
            "document ends inside an element",
        ));
    }
    root.ok_or_else(|| malformed("/", "no root element"))
}

/// The child elements of one element, read as fields at their paths (`<path>/<name>`), so that
/// each value of a format is read in one line.
pub(crate) struct Fields<'e, 'a> {
    pub(crate) element: &'e Element<'a>,
    pub(crate) path: Cow<'e, str>,
}

/// Stands in for an element a message lacks (its absence is reported once, where noticed).
static ABSENT: Element<'static> = Element {
    name: String::new(),
    namespace: None,
    attributes: Vec::new(),
    children: Vec::new(),
    text: Cow::Borrowed(""),
};

impl<'e, 'a> Fields<'e, 'a> {
    /// The required child `name`, parsed, under `field`.
    pub(crate) fn read<T>(
        &self,
        n: &mut Normalizer,
        field: CanonicalField,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<T> {
        n.field(
            field,
            || format!("{}/{name}", self.path),
            self.element.text_of(name),
            parse,
        )
    }

    /// The optional child `name`: `Some(None)` when absent.
    pub(crate) fn read_optional<T>(
        &self,
        n: &mut Normalizer,
        field: CanonicalField,
        name: &str,
        parse: impl FnOnce(&str) -> Result<T, Problem>,
    ) -> Option<Option<T>> {
        n.optional(
            field,
            || format!("{}/{name}", self.path),
            self.element.text_of(name),
            parse,
        )
    }

    /// The child element `name` as fields of its own; when it is absent, its absence is
    /// rejected under `field` and an empty element stands in (whose fields are then missing).
    pub(crate) fn child(&self, name: &str, field: CanonicalField, n: &mut Normalizer) -> Self {
        let path = format!("{}/{name}", self.path);
        let element = self.element.child(name).unwrap_or_else(|| {
            n.reject(field, path.clone(), "", Problem::Missing);
            &ABSENT
        });
        Fields {
            element,
            path: path.into(),
        }
    }
}

/// Writes a native XML document: declaration, indented elements, then the bytes in the format's
/// encoding.
pub(crate) struct XmlWriter {
    writer: Writer<Vec<u8>>,
    encoding: &'static Encoding,
}

impl XmlWriter {
    /// Starts a document whose declaration names `encoding`.
    pub(crate) fn new(encoding: &'static Encoding) -> Self {
        let mut writer = Writer::new_with_indent(Vec::with_capacity(2048), b' ', 2);
        // Writing to a Vec cannot fail.
        // encoding_rs names encodings in lower case; declarations use the IANA spelling.
        let label = encoding.name().to_ascii_uppercase();
        let _ = writer.write_event(Event::Decl(BytesDecl::new("1.0", Some(&label), None)));
        Self { writer, encoding }
    }

    /// Opens an element, with attributes.
    pub(crate) fn open(&mut self, name: &str, attributes: &[(&str, &str)]) {
        let start = BytesStart::new(name).with_attributes(attributes.iter().copied());
        let _ = self.writer.write_event(Event::Start(start));
    }

    /// Closes an element.
    pub(crate) fn close(&mut self, name: &str) {
        let _ = self
            .writer
            .write_event(Event::End(quick_xml::events::BytesEnd::new(name)));
    }

    /// Writes `<name>text</name>`.
    pub(crate) fn leaf(&mut self, name: &str, text: &str) {
        let _ = self
            .writer
            .create_element(name)
            .write_text_content(BytesText::new(text));
    }

    /// Writes `<name attr="value">text</name>`.
    pub(crate) fn leaf_with(&mut self, name: &str, attributes: &[(&str, &str)], text: &str) {
        let _ = self
            .writer
            .create_element(name)
            .with_attributes(attributes.iter().copied())
            .write_text_content(BytesText::new(text));
    }

    /// Writes `<name>text</name>` when there is a value.
    pub(crate) fn leaf_opt(&mut self, name: &str, text: Option<impl AsRef<str>>) {
        if let Some(text) = text {
            self.leaf(name, text.as_ref());
        }
    }

    /// Ends the document and encodes it.
    pub(crate) fn finish(self) -> Vec<u8> {
        let mut bytes = self.writer.into_inner();
        bytes.push(b'\n');
        if self.encoding == UTF_8 {
            return bytes;
        }
        let text = String::from_utf8_lossy(&bytes);
        // GB18030 can encode every Unicode scalar value, so nothing is replaced.
        let (encoded, _, _) = self.encoding.encode(&text);
        match encoded {
            Cow::Borrowed(b) => b.to_vec(),
            Cow::Owned(b) => b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_document(
        format: &NativeFormat,
        body: &[u8],
        content_type: &str,
    ) -> Result<Element<'static>, DecodeError> {
        let text = decode_text(format, body, content_type)?.into_owned();
        // Leaked for the test's convenience: the tree borrows its text.
        parse(Box::leak(text.into_boxed_str()))
    }

    const UTF8_XML: NativeFormat = NativeFormat {
        media_type: "application/xml",
        syntax: Syntax::Xml { encoding: UTF_8 },
        batch: false,
        max_message_bytes: 4096,
    };

    #[test]
    fn parses_text_with_references_and_cdata() {
        let root = decode_document(
            &UTF8_XML,
            b"<?xml version=\"1.0\"?><a x=\"1&amp;2\"><b> A &amp; B &#x41; </b><c><![CDATA[<x>]]></c><d/></a>",
            "application/xml",
        )
        .unwrap();
        assert_eq!(root.attribute("x"), Some("1&2"));
        assert_eq!(root.text_of("b"), Some("A & B A"));
        assert_eq!(root.text_of("c"), Some("<x>"));
        assert_eq!(root.text_of("d"), Some(""));
    }

    #[test]
    fn refuses_dtd_entities_pi_and_bad_nesting() {
        let cases: [&[u8]; 6] = [
            b"<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>",
            b"<a>&e;</a>",
            b"<a><?php x?></a>",
            b"<a><b></a>",
            b"<a></a><b/>",
            b"<a><b><c><d><e><f><g><h><i><j><k><l><m/></l></k></j></i></h></g></f></e></d></c></b></a>",
        ];
        for body in cases {
            assert!(
                decode_document(&UTF8_XML, body, "application/xml").is_err(),
                "accepted {}",
                String::from_utf8_lossy(body)
            );
        }
    }

    fn refusal_path(body: &str) -> Option<String> {
        match decode_document(&UTF8_XML, body.as_bytes(), "application/xml") {
            Err(DecodeError::Malformed { path, .. }) => Some(path),
            _ => None,
        }
    }

    #[test]
    fn refuses_mixed_content_with_its_path() {
        let cases = [
            // A child element inside a text field (would read "ABCD").
            ("<a><b>AB<x>injected</x>CD</b></a>", "/a/b"),
            ("<a><b>AB<x/></b></a>", "/a/b"),
            // Stray text, a reference or a CDATA block between elements.
            ("<a><b>1</b>junk<c>2</c></a>", "/a"),
            ("<a><b>1</b>&amp;</a>", "/a"),
            ("<a><b>1</b><![CDATA[lots of data]]></a>", "/a"),
            ("<a><![CDATA[before]]><b>1</b></a>", "/a"),
            ("<a>text first<b>1</b></a>", "/a"),
        ];
        for (body, path) in cases {
            assert_eq!(refusal_path(body).as_deref(), Some(path), "{body}");
        }
        // Indentation between elements, and white space around text, are not content.
        let root = decode_document(
            &UTF8_XML,
            b"<a>\n  <b> 1 </b>\r\n\t<c><![CDATA[ ]]></c>\n</a>",
            "application/xml",
        )
        .unwrap();
        assert_eq!(root.text, "");
        assert_eq!(root.text_of("b"), Some("1"));
        assert_eq!(root.text_of("c"), Some(""));
    }

    #[test]
    fn refuses_characters_xml_forbids_raw_or_as_references() {
        for (body, path) in [
            ("<a><b>\u{B}AB</b></a>", "/a/b"),
            ("<a><b>A\u{1}B</b></a>", "/a/b"),
            ("<a><b>AB\u{FFFE}</b></a>", "/a/b"),
            ("<a x=\"\u{C}\"><b/></a>", "/a"),
            ("<a><b y=\"\u{FFFF}\"/></a>", "/a/b"),
            ("<a><b>&#xB;AB</b></a>", "/a/b"),
            ("<a><b>&#1;</b></a>", "/a/b"),
            ("<a><b>&#xFFFF;</b></a>", "/a/b"),
            ("<a x=\"&#x1F;\"><b/></a>", "/"),
        ] {
            assert_eq!(refusal_path(body).as_deref(), Some(path), "{body:?}");
        }
        // Tab, line feed and carriage return are characters; as references they are text.
        let root = decode_document(&UTF8_XML, b"<a>A&#9;B&#xD;</a>", "application/xml").unwrap();
        assert_eq!(root.text, "A\tB");
    }

    #[test]
    fn encodings_must_match_the_format() {
        let gb = NativeFormat {
            syntax: Syntax::Xml { encoding: GB18030 },
            ..UTF8_XML
        };
        let (bytes, _, _) = GB18030.encode("<?xml version=\"1.0\" encoding=\"GBK\"?><a>浦東</a>");
        assert_eq!(
            decode_document(&gb, &bytes, "application/xml")
                .unwrap()
                .text,
            "浦東"
        );
        // The same bytes declared UTF-8 are refused twice over: wrong label, invalid UTF-8.
        assert!(matches!(
            decode_document(&UTF8_XML, &bytes, "application/xml"),
            Err(DecodeError::Encoding(_))
        ));
        let utf8_declared_gb = "<?xml version=\"1.0\" encoding=\"GB18030\"?><a>浦東</a>";
        assert!(matches!(
            decode_document(&UTF8_XML, utf8_declared_gb.as_bytes(), "application/xml"),
            Err(DecodeError::Encoding(_))
        ));
        assert!(matches!(
            decode_document(&UTF8_XML, b"<a/>", "application/xml; charset=latin1"),
            Err(DecodeError::Encoding(_))
        ));
    }

    #[test]
    fn writer_round_trips_through_the_reader() {
        let mut w = XmlWriter::new(GB18030);
        w.open("根", &[("版本", "1")]);
        w.leaf("名稱", "A & <B> 浦東");
        w.close("根");
        let bytes = w.finish();
        let gb = NativeFormat {
            syntax: Syntax::Xml { encoding: GB18030 },
            ..UTF8_XML
        };
        let root = decode_document(&gb, &bytes, "application/xml").unwrap();
        assert_eq!(root.name, "根");
        assert_eq!(root.attribute("版本"), Some("1"));
        assert_eq!(root.text_of("名稱"), Some("A & <B> 浦東"));
    }

    #[test]
    fn a_format_without_namespaces_refuses_them() {
        for (doc, path) in [
            (r#"<a xmlns="urn:x"><b>1</b></a>"#, "/a"),
            (r#"<p:a xmlns:p="urn:x"><b>1</b></p:a>"#, "/p:a"),
            (r#"<a><b xmlns:q="urn:y">1</b></a>"#, "/a/b"),
            (r#"<a><b q:c="1">1</b></a>"#, "/a/b"),
            ("<a><q:b>1</q:b></a>", "/a"),
        ] {
            match parse(doc) {
                Err(DecodeError::Malformed { path: at, .. }) => {
                    assert_eq!(at, path, "{doc}");
                }
                other => panic!("{doc}: {other:?}"),
            }
        }
        assert!(parse("<a><b>1</b></a>").is_ok_and(|root| root.namespace.is_none()));
        // `xml:` is bound by XML itself.
        assert!(parse(r#"<a><b xml:lang="zh">1</b></a>"#).is_ok());
    }

    #[test]
    fn a_namespaced_format_reads_namespaces_by_uri_whatever_the_prefix() {
        const SOAP: &str = "http://schemas.xmlsoap.org/soap/envelope/";
        const OWN: &str = "urn:example:own";
        for doc in [
            r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><c:Case xmlns:c="urn:example:own" c:v="1"><c:Id>7</c:Id></c:Case></s:Body></s:Envelope>"#,
            r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns="urn:example:own"><soapenv:Body><Case v="1"><Id>7</Id></Case></soapenv:Body></soapenv:Envelope>"#,
        ] {
            let root = parse_namespaced(doc, &[SOAP, OWN]).unwrap();
            assert_eq!(
                (root.name.as_str(), root.namespace.as_deref()),
                ("Envelope", Some(SOAP))
            );
            assert!(
                root.attributes.is_empty(),
                "declarations are not attributes: {doc}"
            );
            let body = root.child("Body").unwrap();
            assert_eq!(body.namespace.as_deref(), Some(SOAP));
            let case = body.child("Case").unwrap();
            assert_eq!(case.namespace.as_deref(), Some(OWN), "{doc}");
            assert_eq!(case.attribute("v"), Some("1"));
            assert_eq!(case.child("Id").unwrap().namespace.as_deref(), Some(OWN));
        }
        // Another namespace, or a prefix never declared, is refused at the element.
        let other = r#"<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>"#;
        match parse_namespaced(other, &[SOAP, OWN]) {
            Err(DecodeError::Malformed { path: at, message }) => {
                assert_eq!(at, "/Envelope", "by its local name, as the decoder's paths");
                assert!(message.contains("soap-envelope"), "{message}");
            }
            got => panic!("{got:?}"),
        }
        let undeclared = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><x:Body/></s:Envelope>"#;
        assert!(matches!(
            parse_namespaced(undeclared, &[SOAP]),
            Err(DecodeError::Malformed { .. })
        ));
    }
}
