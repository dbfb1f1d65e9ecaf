//! Ids the gateway mints, and the rules for idempotency keys, written once for every endpoint
//! that commits (`POST /v1/messages`, `POST /v1/surveys`).
//!
//! Minted ids are UUIDv7 in lowercase hex behind a prefix (`gw-` for messages, `sv-` for survey
//! versions): unique across nodes without coordination, and ordered by time.

use schemas::{JointCaseId, MessageId, Sha256Hex, SurveyId};
use sha2::{Digest, Sha256};

/// A new stable message id, `gw-` and 32 hex digits: what every receiver sees for one event.
pub fn mint_message_id() -> MessageId {
    // `gw-` + 32 hex digits is always a valid message id (1-64 of `[A-Za-z0-9._:/-]`).
    MessageId::parse(&format!("gw-{}", uuid::Uuid::now_v7().simple()))
        .expect("a minted gw- id is a valid message id")
}

/// `text` as a message id of the gateway's own minting (`gw-` and 32 lowercase hex digits), or
/// `None`: how an operator's lookup tells a message id from a case id.
pub fn gateway_message_id(text: &str) -> Option<MessageId> {
    let hex = text.strip_prefix("gw-")?;
    let minted = hex.len() == 32 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    minted.then(|| MessageId::parse(text).ok()).flatten()
}

/// The id of the joint case a flow opens for a window's case: `jc-` and the first 32 hex digits
/// of SHA-256(flow, window, case id), the same on every node, so a joint case is opened once.
pub fn joint_case_id(flow: &str, window: &str, case_id: &str) -> JointCaseId {
    let digest = Sha256::digest(format!("{flow}\n{window}\n{case_id}").as_bytes());
    JointCaseId::parse(&format!("jc-{}", &hex(&digest)[..32]))
        .expect("jc- and 32 hex digits is a joint case id")
}

/// The message id of a notice the flows send, derived from what it is (see
/// [`IdempotencyKey::for_flow_notice`]): `gw-` and 32 hex digits of SHA-256(`what`).
pub fn flow_notice_id(what: &str) -> MessageId {
    let digest = Sha256::digest(what.as_bytes());
    MessageId::parse(&format!("gw-{}", &hex(&digest)[..32]))
        .expect("gw- and 32 hex digits is a message id")
}

/// A new survey version id, `sv-` and 32 hex digits.
pub fn mint_survey_id() -> SurveyId {
    SurveyId::parse(&format!("sv-{}", uuid::Uuid::now_v7().simple()))
        .expect("a minted sv- id is a valid survey id")
}

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> Sha256Hex {
    digest_hex(&Sha256::digest(bytes))
}

/// A finished SHA-256 digest (32 bytes) as [`Sha256Hex`].
pub fn digest_hex(digest: &[u8]) -> Sha256Hex {
    Sha256Hex::parse(&hex(digest)).expect("a SHA-256 digest is 64 hex digits")
}

/// The survey id under which a survey's notices are filed as the sender's own message id.
pub fn survey_source_id(survey: &SurveyId) -> MessageId {
    // `sv-` + 32 hex digits is a valid message id too.
    MessageId::parse(survey.as_str()).expect("a survey id is a valid message id")
}

/// Most characters an `Idempotency-Key` header may have.
pub const MAX_KEY_LEN: usize = 128;

/// The key under which a sender's commit is remembered: the same (sender, key) again gets the
/// first answer and writes nothing. Stored with a prefix that says where it came from, so a
/// key a sender chose can never collide with one the gateway derived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey(String);

/// Why an `Idempotency-Key` header is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Idempotency-Key must be 1-{MAX_KEY_LEN} visible ASCII characters")]
pub struct InvalidKey;

impl IdempotencyKey {
    /// The sender's own key, from the `Idempotency-Key` header: 1 to 128 visible ASCII
    /// characters (no spaces, no control characters), on every endpoint alike.
    pub fn from_header(value: &[u8]) -> Result<Self, InvalidKey> {
        let valid = !value.is_empty()
            && value.len() <= MAX_KEY_LEN
            && value.iter().all(u8::is_ascii_graphic);
        let key = std::str::from_utf8(value).map_err(|_| InvalidKey)?;
        valid.then(|| Self(format!("key:{key}"))).ok_or(InvalidKey)
    }

    /// A key derived from the message ids the sender's own format gave its events, so a bureau
    /// re-sending the same message is recognized even without the header.
    pub fn from_source_ids<'a>(ids: impl IntoIterator<Item = &'a str>) -> Self {
        let joined: Vec<&str> = ids.into_iter().collect();
        Self(format!(
            "ids:{:x}",
            Sha256::digest(joined.join("\n").as_bytes())
        ))
    }

    /// A key derived from the digest of a survey publication's content (its metadata and its
    /// files' hashes), so the same publication sent again is recognized.
    pub fn from_publication_digest(digest: &[u8]) -> Self {
        Self(format!("survey:{}", hex(digest)))
    }

    /// A key derived from the digest of a credit-list upload, so the same upload sent again is
    /// recognized.
    pub fn for_credit_upload(digest: &[u8]) -> Self {
        Self(format!("credit:{}", hex(digest)))
    }

    /// The key of a notice the one-stop flows send (`what` names it: the joint case and its
    /// version, or the case and its deadline notice), so a step committed twice (two nodes, or
    /// a retry) writes it once.
    pub fn for_flow_notice(what: &str) -> Self {
        Self(format!("flow:{what}"))
    }

    /// The stored form.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn hex(bytes: &[u8]) -> String {
    // No `format!` per byte: every audit entry hashes twice, on the store writer's thread.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_are_valid_and_distinct() {
        let (a, b) = (mint_message_id(), mint_message_id());
        assert!(a.as_str().starts_with("gw-") && a.as_str().len() == 35);
        assert_ne!(a, b);
        let survey = mint_survey_id();
        assert!(survey.as_str().starts_with("sv-"));
        assert_eq!(survey_source_id(&survey).as_str(), survey.as_str());
        assert_eq!(
            sha256(b"abc").as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn header_keys_follow_one_rule() {
        assert_eq!(
            IdempotencyKey::from_header(b"batch-42").map(|k| k.0),
            Ok("key:batch-42".to_owned())
        );
        for bad in [
            &b""[..],
            b"has space",
            b"tab\t",
            "中文".as_bytes(),
            &[b'a'; 129],
        ] {
            assert_eq!(IdempotencyKey::from_header(bad), Err(InvalidKey), "{bad:?}");
        }
        assert!(IdempotencyKey::from_header(&[b'a'; 128]).is_ok());
    }

    #[test]
    fn derived_keys_depend_on_their_content_only() {
        let one = IdempotencyKey::from_source_ids(["a", "b"]);
        assert_eq!(one, IdempotencyKey::from_source_ids(["a", "b"]));
        assert_ne!(one, IdempotencyKey::from_source_ids(["a", "c"]));
        assert!(one.as_str().starts_with("ids:"));
        let survey = IdempotencyKey::from_publication_digest(&[0xab, 0x01]);
        assert_eq!(survey.as_str(), "survey:ab01");
    }
}
