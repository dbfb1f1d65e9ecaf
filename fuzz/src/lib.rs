//! What every fuzz target checks, for one adapter and one input:
//!
//! - `decode` returns (an `Err` is fine) and never panics;
//! - every event it accepts survives delivery in *every* bureau's format:
//!   `decode(encode(e)) == [e]` for each adapter that can encode it (the architecture's
//!   round-trip invariant, for events the generator would never draw).
//!
//! A violation panics, which libFuzzer records as a crash with the input that caused it.

#![forbid(unsafe_code)]

use adapters::{ALL, Adapter};

/// Runs the checks on `data` as a message for `adapter`.
pub fn check(adapter: &dyn Adapter, data: &[u8]) {
    let media_type = adapter.format().media_type;
    let Ok(events) = adapter.decode(data, media_type) else {
        return;
    };
    for event in &events {
        for target in ALL {
            // An encoder may refuse a value its format cannot hold; that is not a bug.
            let Ok(encoded) = target.encode(event) else {
                continue;
            };
            match target.decode(&encoded.body, &encoded.content_type) {
                Ok(back) => assert!(
                    back.len() == 1 && back[0] == *event,
                    "{} accepted an event that {} does not read back unchanged:\n{event:#?}\n{back:#?}",
                    adapter.bureau(),
                    target.bureau()
                ),
                Err(error) => panic!(
                    "{} accepted an event that {} refuses after encoding it: {error}\n{event:#?}\n{}",
                    adapter.bureau(),
                    target.bureau(),
                    String::from_utf8_lossy(&encoded.body)
                ),
            }
        }
    }
}
