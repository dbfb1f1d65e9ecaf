//! Bureau adapters: each turns one bureau's native message format into canonical events
//! ([`schemas::Event`]) and back.
//!
//! Every adapter implements [`Adapter`] and is registered once, in [`ALL`]. The gateway knows
//! adapters only through that trait; adapters know only the canonical model, never the store,
//! the queues or the network. An adapter reads and writes its own format only: canonical
//! values are assembled in one place (`assemble` for case events, `schemas::rules` for survey
//! notices), so a rule that is not about one format is written once, and [`Adapter::encode`]
//! checks those rules before the adapter's [`Adapter::write`]. Every adapter passes the same conformance kit
//! (`conformance::check`), which reads its valid and invalid sample messages from
//! `schemas/bureaus/<id>/`. `adapters/README.md` is the recipe for adding one.

use schemas::BureauId;

mod adapter;
mod assemble;
pub mod civil_defense;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod greenery;
pub mod housing;
mod json;
mod notices;
pub mod planning;
pub mod sample;
pub mod traffic_police;
pub mod transport;
mod vocabulary;
pub mod water;
mod xml;

/// Every adapter, one per bureau. This is the one place an adapter is registered.
pub static ALL: &[&dyn Adapter] = &[
    &planning::Planning,
    &water::Water,
    &transport::Transport,
    &traffic_police::TrafficPolice,
    &civil_defense::CivilDefense,
    &greenery::Greenery,
    &housing::Housing,
];

/// The adapter of a bureau (every bureau has one; `registry_is_complete` checks it).
pub fn for_bureau(bureau: BureauId) -> Option<&'static dyn Adapter> {
    ALL.iter()
        .copied()
        .find(|adapter| adapter.bureau() == bureau)
}

pub use adapter::{
    Adapter, DecodeError, EncodeError, Encoded, MAX_BATCH_PARTS, NativeFormat, Syntax,
};
pub use notices::{read_credit_upload, write_credit_upload};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::adapter::parse_content_type;
    use schemas::Event;

    #[test]
    fn registry_is_complete_and_in_bureau_order() {
        assert_eq!(ALL.len(), BureauId::ALL.len());
        for (adapter, bureau) in ALL.iter().zip(BureauId::ALL) {
            assert_eq!(adapter.bureau(), bureau);
            assert_eq!(for_bureau(bureau).map(|a| a.bureau()), Some(bureau));
        }
    }

    #[test]
    fn default_batches_are_multipart_with_one_part_per_event() {
        let adapter = for_bureau(BureauId::Transport).unwrap();
        let mut rng = fastrand::Rng::with_seed(5);
        let events: Vec<Event> = (0..3)
            .map(|_| sample::case_event(&mut rng, BureauId::Planning))
            .collect();
        let batch = adapter.encode_batch("b-1", &events).unwrap();
        let boundary = batch
            .content_type
            .split("boundary=\"")
            .nth(1)
            .and_then(|b| b.strip_suffix('"'))
            .unwrap()
            .to_owned();
        let text = String::from_utf8(batch.body).unwrap();
        let parts: Vec<&str> = text.split(&format!("--{boundary}")).collect();
        // preamble (empty), three parts, and the closing "--\r\n"
        assert_eq!(parts.len(), 5);
        for (part, event) in parts[1..4].iter().zip(&events) {
            let (headers, body) = part.split_once("\r\n\r\n").unwrap();
            assert!(headers.contains(&format!("Message-Id: {}", event.message_id.as_str())));
            let decoded = adapter
                .decode(body.trim_end_matches("\r\n").as_bytes(), "application/json")
                .unwrap();
            assert_eq!(decoded, vec![event.clone()]);
        }
        assert_eq!(parts[4], "--\r\n");
    }

    #[test]
    fn a_multipart_batch_decodes_part_by_part_and_checks_each_label() {
        let adapter = for_bureau(BureauId::Transport).unwrap();
        let mut rng = fastrand::Rng::with_seed(8);
        let events: Vec<Event> = (0..4)
            .map(|_| sample::case_event(&mut rng, BureauId::Planning))
            .collect();
        let batch = adapter.encode_batch("b-2", &events).unwrap();
        assert_eq!(
            adapter
                .decode_batch(&batch.body, &batch.content_type)
                .unwrap(),
            events
        );

        // A part labelled with another event's id is refused, naming the part.
        let text = String::from_utf8(batch.body.clone()).unwrap();
        let relabelled = text.replacen(
            &format!("Message-Id: {}", events[1].message_id.as_str()),
            &format!("Message-Id: {}", events[0].message_id.as_str()),
            1,
        );
        let error = adapter
            .decode_batch(relabelled.as_bytes(), &batch.content_type)
            .unwrap_err();
        assert!(
            matches!(&error, DecodeError::Malformed { path, .. } if path == "part[1]/Message-Id"),
            "{error:?}"
        );
        // A bad value inside a part is the part's adapter error, with every field named.
        let one = adapter.encode(&events[2]).unwrap();
        let broken = text.replacen(
            &String::from_utf8(one.body.clone()).unwrap(),
            "{\"not\": \"transport\"}",
            1,
        );
        assert!(
            adapter
                .decode_batch(broken.as_bytes(), &batch.content_type)
                .is_err()
        );
        // Not multipart at all.
        assert!(matches!(
            adapter.decode_batch(&one.body, &one.content_type),
            Err(DecodeError::UnsupportedContentType { .. })
        ));
    }

    #[test]
    fn content_types() {
        assert_eq!(
            parse_content_type("Application/XML; charset=\"GB18030\""),
            ("application/xml".into(), Some("gb18030".into()))
        );
        assert_eq!(
            parse_content_type("application/json"),
            ("application/json".into(), None)
        );
    }
}
