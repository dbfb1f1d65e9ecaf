//! The contract every bureau adapter implements ([`Adapter`]), the types it speaks in, and the
//! envelope checks (size, content type) every format shares. It knows the canonical model and
//! no bureau; the bureau modules and the registry in the crate root build on it.

use schemas::{BureauId, Event, NormalizeError};

use crate::sample;

/// How a bureau's native messages are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// XML in the given character encoding, declared in the document's prolog.
    Xml {
        /// The encoding the format's specification requires.
        encoding: &'static encoding_rs::Encoding,
    },
    /// JSON (always UTF-8, RFC 8259).
    Json,
}

/// What an adapter reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NativeFormat {
    /// The media type of its messages, e.g. `application/xml`.
    pub media_type: &'static str,
    /// XML (in which encoding) or JSON.
    pub syntax: Syntax,
    /// Whether one message may carry many cases.
    pub batch: bool,
    /// The largest message accepted, in bytes.
    pub max_message_bytes: usize,
}

/// A native message ready to send: its bytes and the content type that names its dialect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    /// The `Content-Type` to send it with.
    pub content_type: String,
    /// The message.
    pub body: Vec<u8>,
}

/// Why a native message was refused. Every variant is the sender's fault: sending the same
/// bytes again cannot succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The message exceeds the format's size limit.
    #[error("message is {size} bytes; this format accepts at most {limit}")]
    TooLarge {
        /// The message's size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The content type does not name this bureau's format.
    #[error("content type {got:?} is not this bureau's format ({expected})")]
    UnsupportedContentType {
        /// What was sent.
        got: String,
        /// What the format uses.
        expected: &'static str,
    },
    /// The declared character encoding is not the format's, or the bytes are not valid in it.
    #[error("character encoding: {0}")]
    Encoding(String),
    /// DOCTYPE and entity declarations are refused: they enable entity-expansion bombs and
    /// external fetches, and no bureau format needs them.
    #[error("DOCTYPE and entity declarations are not accepted")]
    DtdForbidden,
    /// The bytes are not well-formed XML or JSON, or nest deeper than the format allows.
    #[error("not well-formed at {path}: {message}")]
    Malformed {
        /// Where parsing stopped (element path or byte offset).
        path: String,
        /// The parser's account of the problem.
        message: String,
    },
    /// The message is well-formed but values in it are invalid: every one is listed.
    #[error("{} invalid field(s); first: {}", .0.len(), .0.first().map(ToString::to_string).unwrap_or_default())]
    Invalid(Vec<NormalizeError>),
}

/// Why a canonical event could not be written in a bureau's format. This is the gateway's
/// problem, not the sender's: the event was valid when accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode {field} for {bureau}: {reason}")]
pub struct EncodeError {
    /// The bureau whose format cannot hold the value.
    pub bureau: BureauId,
    /// The canonical field.
    pub field: &'static str,
    /// Why.
    pub reason: String,
}

/// One bureau's native format, both ways.
///
/// Implementations must be pure: no I/O, no clocks, no global state. Decoding is strict (see
/// the `schemas` crate): a value that does not parse exactly is rejected, never guessed, and
/// every rejected value is reported with its native path.
pub trait Adapter: Send + Sync {
    /// The bureau this adapter speaks for.
    fn bureau(&self) -> BureauId;

    /// The format it reads and writes.
    fn format(&self) -> NativeFormat;

    /// Decodes one native message into the canonical events it carries (one, or many for a
    /// batch format). The content type selects the dialect.
    fn decode(&self, body: &[u8], content_type: &str) -> Result<Vec<Event>, DecodeError>;

    /// Encodes one canonical event as a native message, for delivery to this bureau. A value
    /// that breaks a rule of the canonical model (`schemas::rules`: survey versioning, a figure
    /// given twice ...) is refused, since this bureau's decoder would refuse it; everything
    /// else is [`write`](Self::write)'s.
    fn encode(&self, event: &Event) -> Result<Encoded, EncodeError> {
        check_rules(self.bureau(), event)?;
        self.write(event)
    }

    /// Writes one canonical event in the native format as it is, without the canonical rules'
    /// checks of [`encode`](Self::encode). Delivery calls `encode`; the conformance kit calls
    /// this to hand the decoder values that break the rules, written the bureau's way.
    fn write(&self, event: &Event) -> Result<Encoded, EncodeError>;

    /// Encodes several events as one message, for a pull feed. Batch formats write their own
    /// batch document; the default is `multipart/mixed` (RFC 2046), one part per event in the
    /// format's single-event encoding, each part carrying its `Message-Id`.
    fn encode_batch(&self, batch_id: &str, events: &[Event]) -> Result<Encoded, EncodeError> {
        let parts = events
            .iter()
            .map(|event| {
                let warning = schemas::credit::warning_header(&event.credit_warnings);
                Ok((event.message_id.as_str(), warning, self.encode(event)?))
            })
            .collect::<Result<Vec<_>, EncodeError>>()?;
        Ok(multipart(batch_id, &parts))
    }

    /// Decodes a message written by [`encode_batch`](Self::encode_batch), as the bureau's
    /// system receives a batch push or reads a pull feed: the events in the batch's order. A
    /// batch format decodes its own document; the default reads `multipart/mixed`, decoding
    /// each part in the format's single-event encoding and checking that the part's
    /// `Message-Id` names its event.
    fn decode_batch(&self, body: &[u8], content_type: &str) -> Result<Vec<Event>, DecodeError> {
        if self.format().batch {
            return self.decode(body, content_type);
        }
        let parts = multipart_parts(body, content_type)?;
        let mut events = Vec::with_capacity(parts.len());
        for (index, part) in parts.iter().enumerate() {
            let mut decoded = self
                .decode(&part.body, &part.content_type)
                .map_err(|error| within_part(index, error))?;
            let event = match (decoded.pop(), decoded.is_empty()) {
                (Some(event), true) => event,
                _ => {
                    return Err(DecodeError::Malformed {
                        path: format!("part[{index}]"),
                        message: "a part must carry exactly one event".into(),
                    });
                }
            };
            if event.message_id.as_str() != part.message_id {
                return Err(DecodeError::Malformed {
                    path: format!("part[{index}]/Message-Id"),
                    message: format!(
                        "the part is labelled {:?} but carries event {}",
                        part.message_id,
                        event.message_id.as_str()
                    ),
                });
            }
            events.push(event);
        }
        Ok(events)
    }

    /// The HTTP headers a message of this format travels with besides its `Content-Type`, as
    /// (name, value): SOAP 1.1's `SOAPAction`, which names the operation, say. None by default.
    /// Push delivery sends them with each message; ingest refuses a message whose request does
    /// not carry them ([`check_message_headers`](Self::check_message_headers)).
    fn message_headers(&self, _event: &Event) -> Vec<(&'static str, &'static str)> {
        Vec::new()
    }

    /// Refuses a received message whose request headers (`header(name)`) do not carry what
    /// [`message_headers`](Self::message_headers) gives for each of its events: an error at
    /// `header <name>` with what was sent and what is expected.
    fn check_message_headers(
        &self,
        events: &[Event],
        header: &dyn Fn(&str) -> Option<String>,
    ) -> Result<(), DecodeError> {
        let mut errors = Vec::new();
        for event in events {
            for (name, expected) in self.message_headers(event) {
                let sent = header(name);
                if sent.as_deref().map(str::trim) != Some(expected) {
                    errors.push(NormalizeError {
                        field: schemas::CanonicalField::Document,
                        path: format!("header {name}"),
                        text: sent.unwrap_or_default(),
                        problem: schemas::Problem::BadFormat { expected },
                    });
                }
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            errors.dedup();
            Err(DecodeError::Invalid(errors))
        }
    }

    /// A realistic native message as this bureau's system would send it, drawn from `rng`: for
    /// the demo, tests and benchmarks.
    fn sample(&self, rng: &mut fastrand::Rng) -> Encoded {
        let event = sample::case_event(rng, self.bureau());
        match self.encode(&event) {
            Ok(encoded) => encoded,
            // The generator only draws values every format can hold; `conformance` checks it.
            Err(error) => unreachable!("sample event not encodable: {error}"),
        }
    }
}

/// Refuses an event that breaks a rule of the canonical model (the first one it breaks).
pub(crate) fn check_rules(bureau: BureauId, event: &Event) -> Result<(), EncodeError> {
    let refuse = |field: schemas::CanonicalField, problem: schemas::Problem| EncodeError {
        bureau,
        field: field.as_str(),
        reason: problem.to_string(),
    };
    if let Some(notice) = event.joint() {
        return match notice.violations().into_iter().next() {
            None => Ok(()),
            Some(violation) => Err(refuse(violation.field, violation.problem)),
        };
    }
    let credit = event
        .credit()
        .or(event.credit_match().map(|notice| &notice.entry));
    if let Some(entry) = credit {
        return match entry.violations().into_iter().next() {
            None => Ok(()),
            Some(violation) => Err(refuse(violation.field, violation.problem)),
        };
    }
    if let Some(notice) = event.deadline() {
        return match notice.violation(event.source) {
            None => Ok(()),
            Some((field, problem)) => Err(refuse(field, problem)),
        };
    }
    let Some(notice) = event.survey() else {
        return Ok(());
    };
    match notice.violations().into_iter().next() {
        None => Ok(()),
        Some(violation) => Err(EncodeError {
            bureau,
            field: violation.field.as_str(),
            reason: violation.problem.to_string(),
        }),
    }
}

/// Writes `multipart/mixed` with one part per encoded event. The boundary is derived from the
/// batch id and lengthened until no part contains it.
fn multipart(batch_id: &str, parts: &[(&str, Option<String>, Encoded)]) -> Encoded {
    let mut boundary = format!("=_exchange_batch_{batch_id}");
    while parts.iter().any(|(_, _, part)| {
        part.body
            .windows(boundary.len())
            .any(|w| w == boundary.as_bytes())
    }) {
        boundary.push('_');
    }
    let mut body = Vec::new();
    for (message_id, warning, part) in parts {
        // A listed applicant's case carries its warning on its own part.
        let warning = warning
            .as_ref()
            .map(|w| format!("{}: {w}\r\n", schemas::credit::WARNING_HEADER))
            .unwrap_or_default();
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Type: {}\r\nMessage-Id: {message_id}\r\n{warning}\r\n",
                part.content_type
            )
            .as_bytes(),
        );
        body.extend_from_slice(&part.body);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Encoded {
        content_type: format!("multipart/mixed; boundary=\"{boundary}\""),
        body,
    }
}

/// Most parts a `multipart/mixed` batch may have (as many as the largest native batch).
pub const MAX_BATCH_PARTS: usize = 10_000;

/// One part of a `multipart/mixed` batch.
struct Part {
    content_type: String,
    message_id: String,
    body: Vec<u8>,
}

/// Reads the parts of a `multipart/mixed` body (RFC 2046) with mailparse: each part's content
/// type, `Message-Id` (required) and body.
fn multipart_parts(body: &[u8], content_type: &str) -> Result<Vec<Part>, DecodeError> {
    let (essence, _) = parse_content_type(content_type);
    if essence != "multipart/mixed" {
        return Err(DecodeError::UnsupportedContentType {
            got: content_type.to_owned(),
            expected: "multipart/mixed",
        });
    }
    let malformed = |path: String, message: String| DecodeError::Malformed { path, message };
    // mailparse reads a whole MIME entity: give it the content type as the entity's header.
    let mut entity = format!("Content-Type: {content_type}\r\n\r\n").into_bytes();
    entity.extend_from_slice(body);
    let parsed =
        mailparse::parse_mail(&entity).map_err(|e| malformed("multipart".into(), e.to_string()))?;
    if parsed.subparts.is_empty() {
        return Err(malformed(
            "multipart".into(),
            "the batch has no parts".into(),
        ));
    }
    if parsed.subparts.len() > MAX_BATCH_PARTS {
        return Err(DecodeError::Malformed {
            path: "multipart".into(),
            message: format!(
                "{} parts; a batch has at most {MAX_BATCH_PARTS}",
                parsed.subparts.len()
            ),
        });
    }
    let header = |part: &mailparse::ParsedMail<'_>, index: usize, name: &str| {
        part.headers
            .iter()
            .find(|h| h.get_key_ref().eq_ignore_ascii_case(name))
            .map(mailparse::MailHeader::get_value)
            .ok_or_else(|| malformed(format!("part[{index}]/{name}"), "missing".into()))
    };
    parsed
        .subparts
        .iter()
        .enumerate()
        .map(|(index, part)| {
            Ok(Part {
                content_type: header(part, index, "Content-Type")?,
                message_id: header(part, index, "Message-Id")?,
                body: part
                    .get_body_raw()
                    .map_err(|e| malformed(format!("part[{index}]"), e.to_string()))?,
            })
        })
        .collect()
}

/// Names the batch part a decoding error comes from.
fn within_part(index: usize, error: DecodeError) -> DecodeError {
    match error {
        DecodeError::Malformed { path, message } => DecodeError::Malformed {
            path: format!("part[{index}]/{path}"),
            message,
        },
        other => other,
    }
}

/// Splits a content type into its lower-cased essence and its `charset` parameter.
pub(crate) fn parse_content_type(content_type: &str) -> (String, Option<String>) {
    let mut parts = content_type.split(';');
    let essence = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let charset = parts.find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_ascii_lowercase())
    });
    (essence, charset)
}

/// Checks the size limit and content type shared by every format, returning the declared
/// charset parameter if any.
pub(crate) fn check_envelope(
    format: &NativeFormat,
    body: &[u8],
    content_type: &str,
) -> Result<Option<String>, DecodeError> {
    if body.len() > format.max_message_bytes {
        return Err(DecodeError::TooLarge {
            size: body.len(),
            limit: format.max_message_bytes,
        });
    }
    let (essence, charset) = parse_content_type(content_type);
    if essence != format.media_type {
        return Err(DecodeError::UnsupportedContentType {
            got: content_type.to_owned(),
            expected: format.media_type,
        });
    }
    Ok(charset)
}
