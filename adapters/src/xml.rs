//! XML reading and writing shared by the XML adapters, on quick-xml.
//!
//! Reading builds a small element tree after checking what every XML format must refuse: a
//! declared encoding other than the format's, bytes invalid in that encoding, any DOCTYPE (so no
//! entity declarations, no entity-expansion bombs, no external fetches), undeclared entities,
//! processing instructions, and nesting or element counts beyond fixed limits.

use std::borrow::Cow;

use encoding_rs::{Encoding, GB18030, GBK, UTF_8};
use quick_xml::XmlVersion;
use quick_xml::events::{BytesDecl, BytesStart, BytesText, Event};
use quick_xml::reader::Reader;
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
) -> Result<Element<'a>, DecodeError> {
    *count += 1;
    if stack.len() >= MAX_DEPTH || *count > MAX_ELEMENTS {
        return Err(malformed(
            &path_of(stack),
            "document nests too deep or too wide",
        ));
    }
    start_element(start, stack)
}

fn start_element<'a>(
    start: &BytesStart<'_>,
    stack: &[Element<'_>],
) -> Result<Element<'a>, DecodeError> {
    let name = start.local_name().as_ref().to_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| malformed(&path_of(stack), &e.to_string()))?;
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| malformed(&path_of(stack), &e.to_string()))?;
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

/// Parses a decoded document into its root element.
pub(crate) fn parse(text: &str) -> Result<Element<'_>, DecodeError> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let event = reader
            .read_event()
            .map_err(|e| malformed(&path_of(&stack), &e.to_string()))?;
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
                let element = open_element(&start, &stack, &mut count)?;
                stack.push(element);
            }
            Event::Empty(start) => {
                let element = open_element(&start, &stack, &mut count)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let Some(mut element) = stack.pop() else {
                    return Err(malformed("/", "unexpected end tag"));
                };
                element.text = match element.text {
                    Cow::Borrowed(text) => Cow::Borrowed(text.trim()),
                    Cow::Owned(text) if text.trim().len() == text.len() => Cow::Owned(text),
                    Cow::Owned(text) => Cow::Owned(text.trim().to_owned()),
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(text) => {
                let content = text.xml10_content();
                match stack.last_mut() {
                    Some(current) if current.text.is_empty() => current.text = content,
                    Some(current) => current.text.to_mut().push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err(malformed("/", "text outside the root element")),
                }
            }
            Event::CData(cdata) => match stack.last_mut() {
                Some(current) => current.text.to_mut().push_str(&cdata.xml10_content()),
                None => return Err(malformed("/", "CDATA outside the root element")),
            },
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => c,
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
                match stack.last_mut() {
                    Some(current) => current.text.to_mut().push(resolved),
                    None => return Err(malformed("/", "reference outside the root element")),
                }
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
}
