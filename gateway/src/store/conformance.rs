//! The store conformance suite: what every [`Store`] backend must do, written once and run
//! unchanged on each (see [`conformance_tests!`]). Backend-specific behaviour (group commit
//! counters, query plans, files, migrations, notifications) is tested beside each backend.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use schemas::{BureauCaseId, BureauId, Event, MessageId, Sha256Hex};

use super::{
    AfterFailure, Attempt, BureauState, CircuitState, CreditMatchRecord, DeadLetter, Delivery,
    DeliveryId, DeliveryState, IngestOutcome, Millis, MinuteCounts, NewEvent, NewMessage,
    NodeReport, Outcome, Pause, QueueStat, ReadOf, Receipt, ReplaySelector, Settled, Store,
    StoreError, TimelineKey,
};
use crate::ids::IdempotencyKey;

/// Expands one `#[tokio::test]` per conformance function for a backend. `$open` is an async
/// function `fn(&'static str) -> Option<(Guard, S)>`: a fresh, empty store (the guard cleans it
/// up when dropped, even when the test fails), or `None` to skip (backend not configured).
macro_rules! conformance_tests {
    ($open:path) => {
        $crate::store::conformance::conformance_tests!(
            @each $open,
            same_key_returns_the_first_receipt_and_writes_nothing,
            an_ingest_is_written_whole,
            a_failing_ingest_rolls_back_only_itself,
            only_the_head_of_each_case_is_leased,
            expired_leases_come_back_with_a_new_token,
            failures_retry_later_then_dead_letter_without_blocking_the_case,
            replay_by_subscriber_and_by_ids,
            feed_returns_unacknowledged_items_until_acknowledged,
            cleanup_deletes_only_old_delivered_rows,
            queue_stats_count_per_subscriber,
            concurrent_leases_never_overlap,
            surveys_are_stored_with_their_notices_and_reads_are_counted,
            an_ack_covers_only_what_was_fetched,
            a_restarted_node_takes_back_its_own_leases_at_once,
            a_paused_subscriber_keeps_its_deliveries_in_order_until_resumed,
            purge_deletes_only_dead_letters_and_keeps_the_record,
            a_timeline_finds_a_message_a_case_and_a_project,
            node_reports_replace_their_minutes_and_expire,
            a_shared_secret_is_the_first_one_stored,
            backlogs_count_what_waits_for_each_subscriber,
            a_failing_message_in_a_group_fails_alone,
            outcomes_are_recorded_together,
            every_change_is_in_the_trail_once,
            the_trail_tells_deliveries_the_cleanup_deleted,
            flow_steps_are_committed_whole_and_once,
            case_clocks_are_written_over_their_revision,
            credit_matches_are_recorded_once_with_their_notice,
        );
    };
    (@each $open:path, $($name:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some((_guard, store)) = $open(stringify!($name)).await else {
                    return;
                };
                let kept = store.clone();
                $crate::store::conformance::$name(store).await;
                // Whatever the test did, the audit trail it left verifies.
                $crate::store::conformance::trail_is_intact(&kept).await;
            }
        )*
    };
}
pub(crate) use conformance_tests;

const LEASE_MS: i64 = 30_000;

/// The node name the suite leases as (another node is `gw-2`).
pub(crate) const NODE: &str = "gw-1";

/// A planning case event (the seed picks the case) with the gateway id `gw-<id>`.
pub(crate) fn event(seed: u64, id: &str) -> Event {
    let mut event =
        adapters::sample::case_event(&mut fastrand::Rng::with_seed(seed), BureauId::Planning);
    event.message_id = MessageId::parse(&format!("gw-{id}")).unwrap();
    event
}

/// The next event of the same case as `event`.
pub(crate) fn next_in_case(event: &Event, id: &str) -> Event {
    let mut next = event.clone();
    next.message_id = MessageId::parse(&format!("gw-{id}")).unwrap();
    next.sequence += 1;
    next
}

/// A message from Planning with key `key`, received at `at`, carrying `events`.
pub(crate) fn message(key: &str, at: Millis, events: Vec<(Event, Vec<BureauId>)>) -> NewMessage {
    NewMessage {
        survey: None,
        credit: Vec::new(),
        credit_match: None,
        sender: BureauId::Planning,
        idempotency_key: IdempotencyKey::from_header(key.as_bytes()).unwrap(),
        content_type: "application/xml".to_owned(),
        body: format!("<body key=\"{key}\"/>").into_bytes(),
        sha256: Sha256Hex::parse(&"0".repeat(64)).unwrap(),
        received_at: at,
        events: events
            .into_iter()
            .map(|(event, subscribers)| NewEvent {
                source_message_id: MessageId::parse(&format!("src-{}", event.message_id.as_str()))
                    .unwrap(),
                event,
                routed_by: subscribers
                    .iter()
                    .map(|_| "test-route".to_owned())
                    .collect(),
                subscribers,
                for_flows: false,
            })
            .collect(),
    }
}

/// Ingests and expects it accepted.
pub(crate) async fn accept<S: Store>(store: &S, message: NewMessage) -> Receipt {
    match store.ingest(message).await.unwrap() {
        IngestOutcome::Accepted(receipt) => receipt,
        other => panic!("expected Accepted, got {other:?}"),
    }
}

/// The gateway message ids of `deliveries`, in order.
pub(crate) fn ids(deliveries: &[Delivery]) -> Vec<String> {
    deliveries
        .iter()
        .map(|d| d.event.message_id.as_str().to_owned())
        .collect()
}

/// Marks a leased delivery delivered; true when the lease was still held.
pub(crate) async fn record_delivered<S: Store>(store: &S, delivery: &Delivery, at: Millis) -> bool {
    store.mark_delivered(delivery, at).await.unwrap()
}

/// Records a failed attempt of a leased delivery; true when the lease was still held.
pub(crate) async fn record_failure<S: Store>(
    store: &S,
    delivery: &Delivery,
    attempt: Attempt,
    after: AfterFailure,
) -> bool {
    store.mark_failed(delivery, attempt, after).await.unwrap()
}

/// The queue stats of one subscriber.
pub(crate) async fn stat<S: Store>(store: &S, subscriber: BureauId) -> Option<QueueStat> {
    store
        .queue_stats()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.subscriber == subscriber)
}

/// The same key returns the first receipt and writes nothing, also when two ingests with one
/// key are in flight at once; another sender may use the same key.
pub(crate) async fn same_key_returns_the_first_receipt_and_writes_nothing<S: Store + Clone>(
    store: S,
) {
    store.ping().await.unwrap();
    let first = message(
        "key-1",
        1_000,
        vec![
            (event(1, "a"), vec![BureauId::Water, BureauId::Transport]),
            (event(2, "b"), vec![BureauId::Water, BureauId::Water]),
        ],
    );
    let receipt = accept(&store, first).await;
    assert_eq!(
        receipt,
        Receipt {
            message_ids: vec![
                MessageId::parse("gw-a").unwrap(),
                MessageId::parse("gw-b").unwrap()
            ],
            deliveries: 3,
            survey_id: None,
        }
    );

    // Same key, different content: the first receipt, nothing new.
    let again = message(
        "key-1",
        2_000,
        vec![(event(3, "c"), vec![BureauId::Greenery])],
    );
    assert_eq!(
        store.ingest(again).await.unwrap(),
        IngestOutcome::Duplicate(receipt.clone())
    );
    let stats = store.queue_stats().await.unwrap();
    assert_eq!(stats.iter().map(|s| s.pending).sum::<u64>(), 3);
    assert!(stats.iter().all(|s| s.subscriber != BureauId::Greenery));

    // Another sender may use the same key.
    let mut other_sender = message("key-1", 3_000, vec![(event(4, "d"), vec![])]);
    other_sender.sender = BureauId::Water;
    assert!(matches!(
        store.ingest(other_sender).await.unwrap(),
        IngestOutcome::Accepted(_)
    ));

    // The same key twice in flight at once (from two clones): one of each.
    let other = store.clone();
    let (x, y) = tokio::join!(
        store.ingest(message(
            "key-2",
            4_000,
            vec![(event(5, "e"), vec![BureauId::Water])]
        )),
        other.ingest(message(
            "key-2",
            4_000,
            vec![(event(6, "f"), vec![BureauId::Water])]
        )),
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    match (&x, &y) {
        (IngestOutcome::Accepted(a), IngestOutcome::Duplicate(d))
        | (IngestOutcome::Duplicate(d), IngestOutcome::Accepted(a)) => assert_eq!(a, d),
        _ => panic!("expected one Accepted and one Duplicate, got {x:?} and {y:?}"),
    }
    assert_eq!(stat(&store, BureauId::Water).await.unwrap().pending, 3);
}

/// A message with N events for M subscribers is N×M deliveries, each carrying its event exactly
/// as ingested, in message order per (subscriber, case).
pub(crate) async fn an_ingest_is_written_whole<S: Store + Clone>(store: S) {
    let subscribers = vec![BureauId::Water, BureauId::Transport, BureauId::Greenery];
    let events: Vec<Event> = (0..4u64)
        .map(|n| event(100 + n, &format!("w{n}")))
        .collect();
    let receipt = accept(
        &store,
        message(
            "whole",
            500,
            events
                .iter()
                .map(|e| (e.clone(), subscribers.clone()))
                .collect(),
        ),
    )
    .await;
    assert_eq!(receipt.deliveries, 12);
    let stats = store.queue_stats().await.unwrap();
    assert_eq!(stats.len(), 3);
    for s in &stats {
        assert_eq!((s.pending, s.oldest_pending), (4, Some(500)), "{s:?}");
    }

    // Every delivery carries its event unchanged (the feed shows them all, in order).
    for subscriber in subscribers {
        let fed = store.feed_fetch(subscriber, 10).await.unwrap();
        assert_eq!(
            fed.iter().map(|d| d.event.clone()).collect::<Vec<_>>(),
            events
        );
        assert!(fed.iter().all(|d| d.subscriber == subscriber));
        assert!(fed.iter().all(|d| d.created_at == 500 && d.attempts == 0));
        assert!(fed.windows(2).all(|w| w[0].id < w[1].id));
    }

    // A message with no events is accepted with an empty receipt and queues nothing.
    let empty = accept(&store, message("empty", 600, vec![])).await;
    assert_eq!(empty.deliveries, 0);
    assert!(empty.message_ids.is_empty());
    assert_eq!(
        store
            .queue_stats()
            .await
            .unwrap()
            .iter()
            .map(|s| s.pending)
            .sum::<u64>(),
        12
    );
}

/// A failing ingest (here: an event id already taken) leaves nothing behind and does not take
/// the ingests committed beside it down.
pub(crate) async fn a_failing_ingest_rolls_back_only_itself<S: Store + Clone>(store: S) {
    let other = store.clone();
    let (good, bad) = tokio::join!(
        store.ingest(message(
            "k1",
            1,
            vec![(event(1, "same"), vec![BureauId::Water])]
        )),
        other.ingest(message(
            "k2",
            2,
            vec![
                (event(3, "fine"), vec![BureauId::Water, BureauId::Transport]),
                (event(2, "same"), vec![BureauId::Water])
            ]
        )),
    );
    // Whichever commits first keeps "gw-same" (PostgreSQL's batchers overlap, so either may);
    // the other fails, and fails alone.
    let (error, failed_key, water, transport) = match (good, bad) {
        (Ok(IngestOutcome::Accepted(_)), Err(error)) => (error, "k2", 1, None),
        (Err(error), Ok(IngestOutcome::Accepted(_))) => (error, "k1", 2, Some(1)),
        other => panic!("exactly one of the two must fail: {other:?}"),
    };
    assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
    assert!(!error.is_retryable());
    // Nothing of the failed one remains (not even its first event); its key is free again.
    assert_eq!(stat(&store, BureauId::Water).await.unwrap().pending, water);
    assert_eq!(
        stat(&store, BureauId::Transport).await.map(|s| s.pending),
        transport
    );
    accept(
        &store,
        message(
            failed_key,
            3,
            vec![(event(2, "other"), vec![BureauId::Water])],
        ),
    )
    .await;
    assert_eq!(
        stat(&store, BureauId::Water).await.unwrap().pending,
        water + 1
    );
}

/// Only the oldest pending delivery of each (subscriber, case) is leased; leased heads block
/// their cases; limits and subscriber lists hold.
pub(crate) async fn only_the_head_of_each_case_is_leased<S: Store + Clone>(store: S) {
    let subs = || vec![BureauId::Water];
    let a1 = event(1, "a1");
    let a2 = next_in_case(&a1, "a2");
    let a3 = next_in_case(&a2, "a3");
    let b1 = event(2, "b1");
    assert_ne!(a1.case_id, b1.case_id);
    accept(&store, message("m1", 100, vec![(a1, subs()), (a2, subs())])).await;
    accept(&store, message("m2", 200, vec![(a3, subs()), (b1, subs())])).await;
    // Another subscriber's queue of the same case is independent.
    accept(
        &store,
        message("m3", 300, vec![(event(1, "t1"), vec![BureauId::Transport])]),
    )
    .await;

    let now = 1_000;
    let first = store
        .lease_due(NODE, subs(), now, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(ids(&first), ["gw-a1", "gw-b1"]);
    assert!(first.iter().all(|d| d.subscriber == BureauId::Water));
    assert!(first.iter().all(|d| d.attempts == 0 && d.lease != 0));
    assert_ne!(first[0].lease, first[1].lease);
    assert_eq!(first[0].created_at, 100);
    // Leased heads block their cases: nothing more now.
    assert!(
        store
            .lease_due(NODE, subs(), now, LEASE_MS, 10)
            .await
            .unwrap()
            .is_empty()
    );

    assert!(record_delivered(&store, &first[0], now).await);
    // Already delivered: a second completion is refused.
    assert!(!record_delivered(&store, &first[0], now).await);
    let second = store
        .lease_due(NODE, subs(), now, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(ids(&second), ["gw-a2"]);
    assert!(record_delivered(&store, &second[0], now).await);
    let third = store
        .lease_due(NODE, subs(), now, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(ids(&third), ["gw-a3"]);

    // The limit holds; other subscribers are not touched unless asked for.
    let all = vec![BureauId::Water, BureauId::Transport];
    let limited = store
        .lease_due(NODE, all.clone(), now, LEASE_MS, 0)
        .await
        .unwrap();
    assert!(limited.is_empty());
    let transport = store.lease_due(NODE, all, now, LEASE_MS, 10).await.unwrap();
    assert_eq!(ids(&transport), ["gw-t1"]);
    assert!(
        store
            .lease_due(NODE, vec![], now, LEASE_MS, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// An expired lease comes back under a new token; the old token can neither complete nor fail.
pub(crate) async fn expired_leases_come_back_with_a_new_token<S: Store + Clone>(store: S) {
    accept(
        &store,
        message("m", 0, vec![(event(1, "x"), vec![BureauId::Water])]),
    )
    .await;
    let now = 1_000;
    let leased = store
        .lease_due(NODE, vec![BureauId::Water], now, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(leased.len(), 1);
    let old = leased[0].clone();
    // Still leased just before expiry.
    let early = store
        .lease_due(
            NODE,
            vec![BureauId::Water],
            now + LEASE_MS - 1,
            LEASE_MS,
            10,
        )
        .await
        .unwrap();
    assert!(early.is_empty());

    let again = store
        .lease_due(
            NODE,
            vec![BureauId::Water],
            now + LEASE_MS + 1,
            LEASE_MS,
            10,
        )
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, old.id);
    assert_ne!(again[0].lease, old.lease);

    // The old holder can neither complete nor fail it.
    assert!(!record_delivered(&store, &old, now).await);
    let attempt = Attempt {
        at: now,
        error: "late".into(),
    };
    assert!(!record_failure(&store, &old, attempt, AfterFailure::DeadLetter).await);
    assert!(
        !store
            .mark_delivered(
                &Delivery {
                    lease: 0,
                    ..old.clone()
                },
                now
            )
            .await
            .unwrap()
    );
    assert!(
        !store
            .mark_delivered(
                &Delivery {
                    lease: u64::MAX,
                    ..old.clone()
                },
                now
            )
            .await
            .unwrap()
    );
    assert!(
        store
            .mark_delivered(&again[0], now + LEASE_MS + 2)
            .await
            .unwrap()
    );
    let water = stat(&store, BureauId::Water).await.unwrap();
    assert_eq!((water.pending, water.delivered, water.dead), (0, 1, 0));
    assert_eq!(water.failed_attempts, 0, "a refused failure writes nothing");
}

/// `RetryAt` reschedules (and still blocks the case); `DeadLetter` gives up with the history
/// and unblocks the case.
pub(crate) async fn failures_retry_later_then_dead_letter_without_blocking_the_case<
    S: Store + Clone,
>(
    store: S,
) {
    let water = || vec![BureauId::Water];
    let c1 = event(7, "c1");
    let c2 = next_in_case(&c1, "c2");
    accept(&store, message("m", 0, vec![(c1, water()), (c2, water())])).await;

    let first = store
        .lease_due(NODE, water(), 100, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(ids(&first), ["gw-c1"]);
    let retry_at = 5_000;
    let failed = Attempt {
        at: 100,
        error: "HTTP 503".into(),
    };
    assert!(
        record_failure(
            &store,
            &first[0],
            failed.clone(),
            AfterFailure::RetryAt(retry_at)
        )
        .await
    );
    // A repeated report with the same token is refused (nothing written twice).
    assert!(
        !record_failure(
            &store,
            &first[0],
            failed.clone(),
            AfterFailure::RetryAt(retry_at)
        )
        .await
    );
    // Not due before its retry time, and it still blocks c2.
    assert!(
        store
            .lease_due(NODE, water(), retry_at - 1, LEASE_MS, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let retried = store
        .lease_due(NODE, water(), retry_at, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(ids(&retried), ["gw-c1"]);
    assert_eq!(retried[0].attempts, 1);

    let gave_up = Attempt {
        at: retry_at,
        error: "connection refused".into(),
    };
    assert!(
        record_failure(
            &store,
            &retried[0],
            gave_up.clone(),
            AfterFailure::DeadLetter
        )
        .await
    );

    let dead = store.dead_letters(Some(BureauId::Water), 10).await.unwrap();
    assert_eq!(
        dead,
        vec![DeadLetter {
            id: first[0].id,
            subscriber: BureauId::Water,
            message_id: MessageId::parse("gw-c1").unwrap(),
            attempts: vec![failed, gave_up],
            dead_at: retry_at,
        }]
    );
    assert_eq!(store.dead_letters(None, 10).await.unwrap(), dead);
    assert!(
        store
            .dead_letters(Some(BureauId::Transport), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.dead_letters(None, 0).await.unwrap().is_empty());

    // A dead letter blocks nothing: the next event of the case is leasable.
    let next = store
        .lease_due(NODE, water(), retry_at, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(ids(&next), ["gw-c2"]);
    let stats = stat(&store, BureauId::Water).await.unwrap();
    assert_eq!((stats.pending, stats.dead, stats.delivered), (1, 1, 0));
    assert_eq!(stats.failed_attempts, 2);
}

/// Leases the (single) head for `subscriber` and dead-letters it.
async fn kill_head<S: Store>(store: &S, subscriber: BureauId, now: Millis) -> DeliveryId {
    let leased = store
        .lease_due(NODE, vec![subscriber], now, LEASE_MS, 1)
        .await
        .unwrap();
    let d = &leased[0];
    let attempt = Attempt {
        at: now,
        error: "HTTP 500".into(),
    };
    assert!(record_failure(store, d, attempt, AfterFailure::DeadLetter).await);
    d.id
}

/// Replay by subscriber and by ids: pending again, due at the replay time, attempts reset,
/// history kept.
pub(crate) async fn replay_by_subscriber_and_by_ids<S: Store + Clone>(store: S) {
    let both = || vec![BureauId::Water, BureauId::Transport];
    accept(
        &store,
        message(
            "m",
            0,
            vec![(event(1, "r1"), both()), (event(2, "r2"), both())],
        ),
    )
    .await;
    let mut water_dead = Vec::new();
    let mut transport_dead = Vec::new();
    for now in [10, 20] {
        water_dead.push(kill_head(&store, BureauId::Water, now).await);
        transport_dead.push(kill_head(&store, BureauId::Transport, now).await);
    }
    assert_eq!(store.dead_letters(None, 10).await.unwrap().len(), 4);

    // By subscriber: both of Water's, none of Transport's.
    let replayed = store
        .replay(
            ReplaySelector::Subscriber(BureauId::Water),
            "operator",
            1_000,
            100,
        )
        .await
        .unwrap();
    assert_eq!(replayed, 2);
    assert!(
        store
            .dead_letters(Some(BureauId::Water), 10)
            .await
            .unwrap()
            .is_empty()
    );
    let back = store
        .lease_due(NODE, vec![BureauId::Water], 1_000, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(back.iter().map(|d| d.id).collect::<Vec<_>>(), water_dead);
    assert!(back.iter().all(|d| d.attempts == 0));
    let transport_stats = stat(&store, BureauId::Transport).await.unwrap();
    assert_eq!(transport_stats.dead, 2);

    // By ids: only a dead one counts; unknown or live ids are ignored.
    let replayed = store
        .replay(
            ReplaySelector::Ids(vec![transport_dead[1], water_dead[0], 9_999]),
            "operator",
            2_000,
            100,
        )
        .await
        .unwrap();
    assert_eq!(replayed, 1);
    assert_eq!(
        store
            .replay(ReplaySelector::Ids(vec![]), "operator", 2_000, 100)
            .await
            .unwrap(),
        0
    );
    let remaining = store.dead_letters(None, 10).await.unwrap();
    assert_eq!(
        remaining.iter().map(|d| d.id).collect::<Vec<_>>(),
        [transport_dead[0]]
    );
    // Not due before the replay time.
    assert!(
        store
            .lease_due(NODE, vec![BureauId::Transport], 1_999, LEASE_MS, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let again = store
        .lease_due(NODE, vec![BureauId::Transport], 2_000, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|d| d.id).collect::<Vec<_>>(),
        [transport_dead[1]]
    );

    // History is kept: the replayed one fails again and shows both attempts.
    let attempt = Attempt {
        at: 2_001,
        error: "still down".into(),
    };
    assert!(record_failure(&store, &again[0], attempt, AfterFailure::DeadLetter).await);
    let dead = store
        .dead_letters(Some(BureauId::Transport), 10)
        .await
        .unwrap();
    let replayed_one = dead.iter().find(|d| d.id == transport_dead[1]).unwrap();
    assert_eq!(replayed_one.attempts.len(), 2);
    assert_eq!(replayed_one.dead_at, 2_001);
    // Oldest first.
    assert_eq!(
        dead.iter().map(|d| d.id).collect::<Vec<_>>(),
        [transport_dead[0], transport_dead[1]]
    );

    // Replay is bounded: a limit of one revives the oldest dead letter only.
    let replayed = store
        .replay(
            ReplaySelector::Subscriber(BureauId::Transport),
            "operator",
            3_000,
            1,
        )
        .await
        .unwrap();
    assert_eq!(replayed, 1);
    let left = store
        .dead_letters(Some(BureauId::Transport), 10)
        .await
        .unwrap();
    assert_eq!(
        left.iter().map(|d| d.id).collect::<Vec<_>>(),
        [transport_dead[1]]
    );
}

/// The feed returns pending items in queue order until acknowledged; an ack covers exactly its
/// subscriber's items up to the cursor.
pub(crate) async fn feed_returns_unacknowledged_items_until_acknowledged<S: Store + Clone>(
    store: S,
) {
    let greenery = || vec![BureauId::Greenery];
    for n in 0..5u64 {
        accept(
            &store,
            message(
                &format!("m{n}"),
                n as i64,
                vec![(event(n, &format!("f{n}")), greenery())],
            ),
        )
        .await;
    }
    let fetched = store.feed_fetch(BureauId::Greenery, 3).await.unwrap();
    assert_eq!(ids(&fetched), ["gw-f0", "gw-f1", "gw-f2"]);
    assert!(fetched.iter().all(|d| d.lease == 0));
    // Nothing acknowledged: the same items again.
    assert_eq!(
        store.feed_fetch(BureauId::Greenery, 3).await.unwrap(),
        fetched
    );
    assert!(
        store
            .feed_fetch(BureauId::Water, 3)
            .await
            .unwrap()
            .is_empty()
    );

    // Ack up to the second: exactly those two go; another subscriber's ack touches nothing.
    assert_eq!(
        store
            .feed_ack(BureauId::Water, fetched[1].id, 50)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .feed_ack(BureauId::Greenery, fetched[1].id, 50)
            .await
            .unwrap(),
        2
    );
    assert_eq!(
        store
            .feed_ack(BureauId::Greenery, fetched[1].id, 51)
            .await
            .unwrap(),
        0
    );
    let rest = store.feed_fetch(BureauId::Greenery, 10).await.unwrap();
    assert_eq!(ids(&rest), ["gw-f2", "gw-f3", "gw-f4"]);
    let stats = stat(&store, BureauId::Greenery).await.unwrap();
    assert_eq!((stats.pending, stats.delivered), (3, 2));
    assert_eq!(stats.oldest_pending, Some(2));
}

/// Cleanup deletes delivered rows older than the cut-off (with their history), up to the
/// limit; pending and dead rows are never cleaned up.
pub(crate) async fn cleanup_deletes_only_old_delivered_rows<S: Store + Clone>(store: S) {
    for i in 0..4 {
        let mut e = event(40 + i, &format!("clean-{i}"));
        e.case_id = BureauCaseId::parse(&format!("CLEAN-{i}")).unwrap();
        accept(
            &store,
            message(&format!("k{i}"), 100, vec![(e, vec![BureauId::Water])]),
        )
        .await;
    }
    let leased = store
        .lease_due(NODE, vec![BureauId::Water], 100, 1_000, 10)
        .await
        .unwrap();
    assert_eq!(leased.len(), 4);
    // One failed once then delivered at 150, one delivered at 200, one at 300, one dead, none
    // pending... then one more pending.
    let retry = Attempt {
        at: 100,
        error: "HTTP 502".into(),
    };
    assert!(record_failure(&store, &leased[0], retry, AfterFailure::RetryAt(100)).await);
    let again = store
        .lease_due(NODE, vec![BureauId::Water], 100, 1_000, 10)
        .await
        .unwrap();
    assert_eq!(again.len(), 1);
    assert!(record_delivered(&store, &again[0], 150).await);
    assert!(record_delivered(&store, &leased[1], 200).await);
    assert!(record_delivered(&store, &leased[2], 300).await);
    let dead = Attempt {
        at: 100,
        error: "HTTP 410".into(),
    };
    assert!(record_failure(&store, &leased[3], dead, AfterFailure::DeadLetter).await);
    accept(
        &store,
        message(
            "k-pending",
            100,
            vec![(
                next_in_case(&event(40, "unused"), "clean-p"),
                vec![BureauId::Water],
            )],
        ),
    )
    .await;

    assert_eq!(store.cleanup(250, 0).await.unwrap(), 0);
    assert_eq!(store.cleanup(250, 1).await.unwrap(), 1);
    assert_eq!(store.cleanup(250, 100).await.unwrap(), 1);
    assert_eq!(store.cleanup(250, 100).await.unwrap(), 0);
    let water = stat(&store, BureauId::Water).await.unwrap();
    assert_eq!((water.pending, water.delivered, water.dead), (1, 1, 1));
    // The retried-then-delivered one's history went with it; the dead letter's stays.
    assert_eq!(water.failed_attempts, 1);
    assert_eq!(store.cleanup(1_000, 100).await.unwrap(), 1);
    let water = stat(&store, BureauId::Water).await.unwrap();
    assert_eq!((water.pending, water.delivered, water.dead), (1, 0, 1));
    assert_eq!(store.dead_letters(None, 10).await.unwrap().len(), 1);
    assert_eq!(
        store.feed_fetch(BureauId::Water, 10).await.unwrap().len(),
        1
    );
}

/// Queue stats count per subscriber, ordered by subscriber.
pub(crate) async fn queue_stats_count_per_subscriber<S: Store + Clone>(store: S) {
    assert!(store.queue_stats().await.unwrap().is_empty());
    let both = || vec![BureauId::Water, BureauId::CivilDefense];
    accept(&store, message("m1", 500, vec![(event(1, "s1"), both())])).await;
    accept(&store, message("m2", 600, vec![(event(2, "s2"), both())])).await;
    accept(&store, message("m3", 700, vec![(event(3, "s3"), both())])).await;
    // Water: one delivered, one dead, one pending. Civil defense: all pending.
    let leased = store
        .lease_due(NODE, vec![BureauId::Water], 1_000, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(leased.len(), 3);
    assert!(record_delivered(&store, &leased[0], 1_000).await);
    let attempt = Attempt {
        at: 1_000,
        error: "bad".into(),
    };
    assert!(record_failure(&store, &leased[1], attempt, AfterFailure::DeadLetter).await);

    let stats = store.queue_stats().await.unwrap();
    assert_eq!(
        stats,
        vec![
            QueueStat {
                subscriber: BureauId::Water,
                pending: 1,
                dead: 1,
                delivered: 1,
                oldest_pending: Some(700),
                failed_attempts: 1,
            },
            QueueStat {
                subscriber: BureauId::CivilDefense,
                pending: 3,
                dead: 0,
                delivered: 0,
                oldest_pending: Some(500),
                failed_attempts: 0,
            },
        ]
    );
    // Fully drained: counts stay, no oldest pending.
    assert!(record_delivered(&store, &leased[2], 1_001).await);
    let water = stat(&store, BureauId::Water).await.unwrap();
    assert_eq!((water.pending, water.oldest_pending), (0, None));
}

/// Several workers (clones: for a shared store, separate connections) lease at once: no
/// delivery is handed out twice under an unexpired lease, no two of one (subscriber, case) are
/// out at once, and each case is delivered in order.
pub(crate) async fn concurrent_leases_never_overlap<S: Store + Clone>(store: S) {
    const CASES: u64 = 12;
    const PER_CASE: usize = 5;
    let subscribers = vec![BureauId::Water, BureauId::Transport];
    for case in 0..CASES {
        let mut current = event(1_000 + case, &format!("o{case}-0"));
        current.case_id = BureauCaseId::parse(&format!("ORDER-{case}")).unwrap();
        let mut events = vec![(current.clone(), subscribers.clone())];
        for n in 1..PER_CASE {
            current = next_in_case(&current, &format!("o{case}-{n}"));
            events.push((current.clone(), subscribers.clone()));
        }
        // Cases spread over several messages, interleaved.
        for (n, e) in events.into_iter().enumerate() {
            accept(&store, message(&format!("o{case}-{n}"), n as i64, vec![e])).await;
        }
    }
    let total = CASES as usize * PER_CASE * subscribers.len();

    // (subscriber, case) -> the sequences leased, in the order they were handed out; and the
    // (subscriber, case) pairs currently out.
    type Queue = (BureauId, String);
    let log: Arc<Mutex<HashMap<Queue, Vec<u64>>>> = Arc::default();
    let out: Arc<Mutex<HashSet<Queue>>> = Arc::default();
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (store, log, out, subscribers) = (
                store.clone(),
                Arc::clone(&log),
                Arc::clone(&out),
                subscribers.clone(),
            );
            tokio::spawn(async move {
                let mut delivered = 0;
                let mut idle = 0;
                while idle < 20 {
                    let leased = store
                        .lease_due(NODE, subscribers.clone(), 10_000, 600_000, 3)
                        .await
                        .unwrap();
                    if leased.is_empty() {
                        idle += 1;
                        tokio::task::yield_now().await;
                        continue;
                    }
                    idle = 0;
                    for d in &leased {
                        let key = (d.subscriber, d.event.case_id.as_str().to_owned());
                        assert!(
                            out.lock().unwrap().insert(key.clone()),
                            "two deliveries of {key:?} out at once"
                        );
                        log.lock()
                            .unwrap()
                            .entry(key)
                            .or_default()
                            .push(d.event.sequence);
                    }
                    for d in leased {
                        let key = (d.subscriber, d.event.case_id.as_str().to_owned());
                        out.lock().unwrap().remove(&key);
                        assert!(record_delivered(&store, &d, 10_001).await);
                        delivered += 1;
                    }
                }
                delivered
            })
        })
        .collect();
    let mut delivered = 0;
    for worker in workers {
        delivered += worker.await.unwrap();
    }
    assert_eq!(delivered, total, "every delivery exactly once");
    let log = std::mem::take(&mut *log.lock().unwrap());
    assert_eq!(log.len(), CASES as usize * subscribers.len());
    for (key, sequences) in log.iter() {
        assert_eq!(sequences.len(), PER_CASE, "{key:?}");
        assert!(
            sequences.windows(2).all(|w| w[0] < w[1]),
            "{key:?} out of order: {sequences:?}"
        );
    }
    let stats = store.queue_stats().await.unwrap();
    assert!(stats.iter().all(|s| s.pending == 0 && s.delivered > 0));
}

/// A survey result is committed with the message that notifies it; a second publication of
/// the same version conflicts; reads are recorded and the first read per bureau is told apart.
pub(crate) async fn surveys_are_stored_with_their_notices_and_reads_are_counted<
    S: Store + Clone,
>(
    store: S,
) {
    use crate::store::SurveyRecord;
    use schemas::{SurveyId, SurveyKind};

    let mut rng = fastrand::Rng::with_seed(21);
    let survey_event = adapters::sample::survey_event(&mut rng);
    let notice = survey_event.survey().unwrap().clone();
    let record = SurveyRecord {
        id: notice.survey_id.clone(),
        supersedes: notice.supersedes.clone(),
        publisher: BureauId::Planning,
        result: notice.result.clone(),
        published_at: 1_000,
    };
    let mut publish = message(
        "survey-1",
        1_000,
        vec![(survey_event.clone(), vec![BureauId::Greenery])],
    );
    publish.survey = Some(record.clone());
    accept(&store, publish).await;
    assert_eq!(
        store.survey(record.id.clone()).await.unwrap(),
        Some(record.clone())
    );
    let project = record.result.project.clone();
    assert_eq!(
        store
            .latest_survey(project.clone(), record.result.kind)
            .await
            .unwrap(),
        Some(record.clone())
    );
    let other_kind = SurveyKind::ALL
        .into_iter()
        .find(|k| *k != record.result.kind)
        .unwrap();
    assert_eq!(
        store.latest_survey(project, other_kind).await.unwrap(),
        None
    );
    assert_eq!(
        stat(&store, BureauId::Greenery).await.map(|s| s.pending),
        Some(1)
    );

    // The same version again (another key): a conflict, and nothing of it is written.
    let mut again = record.clone();
    again.id = SurveyId::parse("sv-00000000000000000000000000000001").unwrap();
    let mut event = survey_event.clone();
    event.message_id = MessageId::parse("gw-survey-again").unwrap();
    let mut duplicate = message("survey-2", 2_000, vec![(event, vec![BureauId::Greenery])]);
    duplicate.survey = Some(again.clone());
    assert!(matches!(
        store.ingest(duplicate).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.survey(again.id).await.unwrap(), None);
    assert_eq!(
        stat(&store, BureauId::Greenery).await.map(|s| s.pending),
        Some(1)
    );

    let id = record.id.clone();
    let file = ReadOf::File(Sha256Hex::parse(&"ab".repeat(32)).unwrap());
    assert!(
        store
            .record_survey_read(id.clone(), BureauId::Greenery, ReadOf::Metadata, 3_000)
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_survey_read(id.clone(), BureauId::Greenery, file.clone(), 3_001)
            .await
            .unwrap()
    );
    assert!(
        store
            .record_survey_read(id.clone(), BureauId::Water, ReadOf::Metadata, 3_002)
            .await
            .unwrap()
    );
    let reads = store.survey_reads(id.clone(), 100).await.unwrap();
    let who: Vec<(BureauId, &ReadOf)> = reads.iter().map(|r| (r.bureau, &r.what)).collect();
    assert_eq!(
        who,
        [
            (BureauId::Greenery, &ReadOf::Metadata),
            (BureauId::Greenery, &file),
            (BureauId::Water, &ReadOf::Metadata)
        ]
    );
    assert_eq!(file.to_string(), format!("file:{}", "ab".repeat(32)));
    // Listing is bounded: the oldest `limit` reads.
    let first_two = store.survey_reads(id, 2).await.unwrap();
    assert_eq!(first_two.len(), 2);
    assert_eq!(first_two[1].what, file);
}

/// A feed acknowledgement never covers a delivery the subscriber was not handed, even one
/// under the cursor.
pub(crate) async fn an_ack_covers_only_what_was_fetched<S: Store + Clone>(store: S) {
    accept(
        &store,
        message(
            "f-1",
            100,
            vec![(event(1, "f1"), vec![BureauId::CivilDefense])],
        ),
    )
    .await;
    let fetched = store.feed_fetch(BureauId::CivilDefense, 10).await.unwrap();
    assert_eq!(fetched.len(), 1);
    // Committed after the fetch.
    accept(
        &store,
        message(
            "f-2",
            200,
            vec![(event(2, "f2"), vec![BureauId::CivilDefense])],
        ),
    )
    .await;
    let everything = store.feed_fetch(BureauId::CivilDefense, 10).await.unwrap();
    let newest = everything.last().unwrap().id;
    // Unfetched items below the cursor stay pending: here the second fetch handed out both,
    // so make a third delivery that nobody fetched.
    accept(
        &store,
        message(
            "f-3",
            300,
            vec![(event(3, "f3"), vec![BureauId::CivilDefense])],
        ),
    )
    .await;
    let acknowledged = store
        .feed_ack(BureauId::CivilDefense, newest + 1_000, 400)
        .await
        .unwrap();
    assert_eq!(acknowledged, 2, "only the two fetched deliveries");
    let left = store.feed_fetch(BureauId::CivilDefense, 10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].event.message_id.as_str(), "gw-f3");
}

/// A node restarting after a crash takes back its own unexpired leases at once: they are due
/// now, as if expired, and leased again under new tokens (the crashed run's tokens are refused).
/// Another node's leases, expired leases and deliveries no longer pending are not touched; the
/// limit holds.
pub(crate) async fn a_restarted_node_takes_back_its_own_leases_at_once<S: Store + Clone>(store: S) {
    assert!(
        store.claim_node(NODE).await.unwrap(),
        "nobody else holds it"
    );
    let water = || vec![BureauId::Water];
    let a1 = event(1, "a1");
    let a2 = next_in_case(&a1, "a2");
    let events = vec![
        (a1, water()),
        (a2, water()),
        (event(2, "b1"), water()),
        (event(3, "c1"), water()),
        (event(4, "d1"), water()),
        (event(5, "e1"), water()),
    ];
    accept(&store, message("crash", 0, events)).await;
    let now = 10_000;
    // The run that crashed leased three heads and completed one of them.
    let mine = store
        .lease_due(NODE, water(), now, LEASE_MS, 3)
        .await
        .unwrap();
    assert_eq!(ids(&mine), ["gw-a1", "gw-b1", "gw-c1"]);
    assert!(record_delivered(&store, &mine[2], now).await);
    // Another node holds one; an earlier lease of this node has expired.
    let theirs = store
        .lease_due("gw-2", water(), now, LEASE_MS, 1)
        .await
        .unwrap();
    assert_eq!(ids(&theirs), ["gw-d1"]);
    let expired = store
        .lease_due(NODE, water(), now - 100, 50, 1)
        .await
        .unwrap();
    assert_eq!(ids(&expired), ["gw-e1"]);

    // Restarted: its two unexpired leases come back, within the limit.
    assert_eq!(store.release_leases(NODE, now, 0).await.unwrap(), 0);
    assert_eq!(store.release_leases(NODE, now, 1).await.unwrap(), 1);
    assert_eq!(store.release_leases(NODE, now, 10).await.unwrap(), 1);
    assert_eq!(store.release_leases(NODE, now, 10).await.unwrap(), 0);
    // Due at once, not after the lease: the released heads, and the expired one.
    let again = store
        .lease_due(NODE, water(), now, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(ids(&again), ["gw-a1", "gw-b1", "gw-e1"]);
    assert_ne!(again[0].lease, mine[0].lease);
    assert_ne!(again[1].lease, mine[1].lease);
    assert!(!record_delivered(&store, &mine[0], now).await, "old token");
    assert!(!record_delivered(&store, &mine[1], now).await, "old token");
    for d in &again {
        assert!(record_delivered(&store, d, now).await);
    }
    // The other node's lease held throughout; expired leases are nobody's to release.
    let next = store
        .lease_due(NODE, water(), now, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(ids(&next), ["gw-a2"]);
    assert_eq!(
        store
            .release_leases("gw-2", now + LEASE_MS, 10)
            .await
            .unwrap(),
        0
    );
    assert!(record_delivered(&store, &theirs[0], now).await);
    let stats = stat(&store, BureauId::Water).await.unwrap();
    assert_eq!((stats.pending, stats.delivered), (1, 5));
}

/// Group commit: 200 concurrent ingests all commit, in fewer transactions than ingests.
/// `commits` reads the backend's own counter of committed transactions.
pub(crate) async fn concurrent_ingests_share_commits<S: Store + Clone>(
    store: S,
    commits: impl Fn(&S) -> u64,
) {
    let before = commits(&store);
    let tasks: Vec<_> = (0..200u64)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let m = message(
                    &format!("key-{n}"),
                    10_000 + n as i64,
                    vec![(event(n, &format!("g{n}")), vec![BureauId::Water])],
                );
                store.ingest(m).await
            })
        })
        .collect();
    for task in tasks {
        assert!(matches!(
            task.await.unwrap().unwrap(),
            IngestOutcome::Accepted(_)
        ));
    }
    let committed = commits(&store) - before;
    assert!(
        (1..200).contains(&committed),
        "{committed} commits for 200 ingests"
    );
    let water = stat(&store, BureauId::Water).await.unwrap();
    assert_eq!(water.pending, 200);
    assert_eq!(water.oldest_pending, Some(10_000));
}

/// A pause holds push and feed deliveries of one subscriber (others flow); the first pause is
/// kept; after resume the held deliveries come in their queue order.
pub(crate) async fn a_paused_subscriber_keeps_its_deliveries_in_order_until_resumed<
    S: Store + Clone,
>(
    store: S,
) {
    let first = event(1, "p1");
    let second = next_in_case(&first, "p2");
    let both = || vec![BureauId::Water, BureauId::Transport];
    accept(
        &store,
        message("p", 0, vec![(first, both()), (second, both())]),
    )
    .await;
    let pause = Pause {
        subscriber: BureauId::Water,
        by: "alice".into(),
        at: 5,
    };
    assert!(store.pause(pause.clone()).await.unwrap());
    let again = Pause {
        by: "bob".into(),
        at: 6,
        ..pause.clone()
    };
    assert!(!store.pause(again).await.unwrap(), "already paused");
    assert_eq!(store.pauses().await.unwrap(), vec![pause]);

    let leased = store
        .lease_due(
            NODE,
            vec![BureauId::Water, BureauId::Transport],
            10,
            LEASE_MS,
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        leased.iter().map(|d| d.subscriber).collect::<Vec<_>>(),
        vec![BureauId::Transport],
        "only the unpaused subscriber's head is leased"
    );
    assert!(
        store
            .feed_fetch(BureauId::Water, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(stat(&store, BureauId::Water).await.unwrap().pending, 2);

    assert!(store.resume(BureauId::Water, "operator", 0).await.unwrap());
    assert!(
        !store.resume(BureauId::Water, "operator", 0).await.unwrap(),
        "not paused any more"
    );
    assert!(store.pauses().await.unwrap().is_empty());
    let leased = store
        .lease_due(NODE, vec![BureauId::Water], 20, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(ids(&leased), vec!["gw-p1"], "the case's head first");
    assert!(record_delivered(&store, &leased[0], 21).await);
    let leased = store
        .lease_due(NODE, vec![BureauId::Water], 22, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(ids(&leased), vec!["gw-p2"]);
}

/// Purge deletes dead letters (by ids or by subscriber), never pending or delivered ones; the
/// event stays in the record.
pub(crate) async fn purge_deletes_only_dead_letters_and_keeps_the_record<S: Store + Clone>(
    store: S,
) {
    let both = || vec![BureauId::Water, BureauId::Transport];
    accept(
        &store,
        message(
            "m",
            0,
            vec![(event(1, "u1"), both()), (event(2, "u2"), both())],
        ),
    )
    .await;
    let water = kill_head(&store, BureauId::Water, 10).await;
    let transport = kill_head(&store, BureauId::Transport, 10).await;
    let shown = store.dead_letter(water).await.unwrap().unwrap();
    assert_eq!(shown.subscriber, BureauId::Water);
    assert_eq!(shown.attempts.len(), 1);
    assert!(store.dead_letter(9_999).await.unwrap().is_none());

    let pending_water = store
        .lease_due(NODE, vec![BureauId::Water], 20, LEASE_MS, 1)
        .await
        .unwrap()[0]
        .id;
    let purged = store
        .purge(
            ReplaySelector::Ids(vec![water, pending_water, 9_999]),
            "operator",
            0,
            100,
        )
        .await
        .unwrap();
    assert_eq!(purged, 1, "only the dead letter");
    assert!(store.dead_letter(water).await.unwrap().is_none());
    assert_eq!(stat(&store, BureauId::Water).await.unwrap().pending, 1);

    let purged = store
        .purge(
            ReplaySelector::Subscriber(BureauId::Transport),
            "operator",
            0,
            100,
        )
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert!(store.dead_letter(transport).await.unwrap().is_none());
    let record = store
        .timeline(TimelineKey::Message(MessageId::parse("gw-u1").unwrap()), 10)
        .await
        .unwrap();
    assert_eq!(record.len(), 1, "the event stays");
    // The queue forgets a purged dead letter; the audit trail does not: the timeline still
    // tells it, dead, with its attempts.
    assert!(!record[0].deliveries.is_empty());
    assert!(
        record[0]
            .deliveries
            .iter()
            .all(|d| d.state == DeliveryState::Dead && !d.attempts.is_empty())
    );
}

/// A timeline by message id, by case id and by project code: the events in order, with their
/// message, their deliveries and the attempts of each.
pub(crate) async fn a_timeline_finds_a_message_a_case_and_a_project<S: Store + Clone>(store: S) {
    let first = event(7, "t1");
    let second = next_in_case(&first, "t2");
    let other = event(8, "t3");
    accept(
        &store,
        message(
            "t",
            100,
            vec![
                (first.clone(), vec![BureauId::Water, BureauId::Transport]),
                (second, vec![BureauId::Water]),
            ],
        ),
    )
    .await;
    accept(
        &store,
        message("u", 200, vec![(other.clone(), vec![BureauId::Greenery])]),
    )
    .await;
    let head = store
        .lease_due(NODE, vec![BureauId::Water], 300, LEASE_MS, 1)
        .await
        .unwrap();
    let failure = Attempt {
        at: 310,
        error: "HTTP 503".into(),
    };
    assert!(
        record_failure(
            &store,
            &head[0],
            failure.clone(),
            AfterFailure::RetryAt(400)
        )
        .await
    );

    let by_message = store
        .timeline(TimelineKey::Message(first.message_id.clone()), 10)
        .await
        .unwrap();
    assert_eq!(by_message.len(), 1);
    let shown = &by_message[0];
    assert_eq!(shown.event, first);
    assert_eq!(shown.sender, BureauId::Planning);
    assert_eq!(shown.received_at, 100);
    assert_eq!(shown.idempotency_key, "key:t", "in its stored form");
    let subscribers: Vec<_> = shown.deliveries.iter().map(|d| d.subscriber).collect();
    assert_eq!(subscribers, vec![BureauId::Water, BureauId::Transport]);
    assert!(
        shown
            .deliveries
            .iter()
            .all(|d| d.state == DeliveryState::Pending)
    );
    assert_eq!(shown.deliveries[0].attempts, vec![failure]);

    let by_case = store
        .timeline(TimelineKey::Case(first.case_id.clone()), 10)
        .await
        .unwrap();
    let case_ids: Vec<_> = by_case
        .iter()
        .map(|e| e.event.message_id.as_str().to_owned())
        .collect();
    assert_eq!(case_ids, vec!["gw-t1", "gw-t2"]);

    let project = other.project().expect("a case event has a project").clone();
    let by_project = store
        .timeline(TimelineKey::Project(project), 10)
        .await
        .unwrap();
    assert!(by_project.iter().any(|e| e.event == other));
    assert!(
        store
            .timeline(
                TimelineKey::Case(BureauCaseId::parse("NO-SUCH-CASE").unwrap()),
                10
            )
            .await
            .unwrap()
            .is_empty()
    );
    let limited = store
        .timeline(TimelineKey::Case(first.case_id.clone()), 1)
        .await
        .unwrap();
    assert_eq!(limited.len(), 1, "bounded by the limit");
    assert_eq!(
        limited[0].event.message_id.as_str(),
        "gw-t2",
        "the latest events are kept"
    );
}

/// Node reports: a minute reported again replaces its counts; every node's rows are read back;
/// a node's minutes older than `keep_since` go.
pub(crate) async fn node_reports_replace_their_minutes_and_expire<S: Store + Clone>(store: S) {
    let counts = |minute, received| MinuteCounts {
        bureau: BureauId::Water,
        minute,
        received,
        delivered: 2,
        failed: 1,
        backlog: 7,
    };
    let state = BureauState {
        bureau: BureauId::Water,
        last_in: Some(59_000),
        last_out: None,
        failing_since: Some(30_000),
        failing_count: 4,
        last_error: Some((58_000, "HTTP 503".into())),
        circuit: CircuitState::Open,
        certificate_not_after: Some(1_000_000),
    };
    let report = |node: &str, at, minutes| NodeReport {
        node: node.into(),
        at,
        minutes,
        bureaus: vec![state.clone()],
        keep_since: 0,
    };
    store
        .record_node_report(report(NODE, 60_000, vec![counts(0, 3), counts(60_000, 1)]))
        .await
        .unwrap();
    store
        .record_node_report(report(NODE, 61_000, vec![counts(60_000, 4)]))
        .await
        .unwrap();
    store
        .record_node_report(report("gw-2", 61_000, vec![counts(60_000, 5)]))
        .await
        .unwrap();
    let read = store.node_reports(0, 100).await.unwrap();
    let mut minutes: Vec<_> = read
        .minutes
        .iter()
        .map(|(node, c)| (node.clone(), c.minute, c.received))
        .collect();
    minutes.sort();
    assert_eq!(
        minutes,
        vec![
            (NODE.to_owned(), 0, 3),
            (NODE.to_owned(), 60_000, 4),
            ("gw-2".to_owned(), 60_000, 5),
        ]
    );
    assert_eq!(read.bureaus.len(), 2);
    assert!(read.bureaus.iter().all(|(_, _, s)| *s == state));

    let mut expiring = report(NODE, 62_000, vec![]);
    expiring.keep_since = 60_000;
    store.record_node_report(expiring).await.unwrap();
    let read = store.node_reports(0, 100).await.unwrap();
    assert!(!read.minutes.iter().any(|(n, c)| n == NODE && c.minute == 0));
    let recent = store.node_reports(61_500, 100).await.unwrap();
    assert!(recent.minutes.is_empty(), "since filters minutes");
    assert_eq!(recent.bureaus.len(), 1, "and states by report time");
    assert_eq!(
        store.node_reports(0, 1).await.unwrap().minutes.len(),
        1,
        "bounded"
    );
}

/// The first secret stored under a name is the one every caller gets.
pub(crate) async fn a_shared_secret_is_the_first_one_stored<S: Store + Clone>(store: S) {
    let first = store.shared_secret("csrf", "one".into()).await.unwrap();
    let second = store.shared_secret("csrf", "two".into()).await.unwrap();
    assert_eq!((first.as_str(), second.as_str()), ("one", "one"));
    assert_eq!(
        store.shared_secret("other", "three".into()).await.unwrap(),
        "three"
    );
}

/// Backlogs: pending and dead per subscriber asked for (zeros for one with nothing waiting),
/// delivered ones not counted.
pub(crate) async fn backlogs_count_what_waits_for_each_subscriber<S: Store + Clone>(store: S) {
    let both = || vec![BureauId::Water, BureauId::Transport];
    accept(
        &store,
        message(
            "b",
            100,
            vec![(event(1, "b1"), both()), (event(2, "b2"), both())],
        ),
    )
    .await;
    kill_head(&store, BureauId::Water, 200).await;
    let transport = store
        .lease_due(NODE, vec![BureauId::Transport], 300, LEASE_MS, 1)
        .await
        .unwrap();
    assert!(record_delivered(&store, &transport[0], 310).await);
    let backlogs = store
        .backlogs(vec![
            BureauId::Water,
            BureauId::Transport,
            BureauId::Greenery,
        ])
        .await
        .unwrap();
    let row = |b| *backlogs.iter().find(|x| x.subscriber == b).unwrap();
    assert_eq!(
        (row(BureauId::Water).pending, row(BureauId::Water).dead),
        (1, 1)
    );
    assert_eq!(row(BureauId::Water).oldest_pending, Some(100));
    assert_eq!(
        (
            row(BureauId::Transport).pending,
            row(BureauId::Transport).dead
        ),
        (1, 0)
    );
    let greenery = row(BureauId::Greenery);
    assert_eq!(
        (greenery.pending, greenery.dead, greenery.oldest_pending),
        (0, 0, None)
    );
}

/// Ingests in flight together share one commit; one of them that cannot be written (its event
/// reuses a committed event's gateway id) fails alone, with the error a lone ingest would get,
/// and every other one is committed — among them two with the same key, of which the second
/// gets the first's receipt as a duplicate.
pub(crate) async fn a_failing_message_in_a_group_fails_alone<S: Store + Clone>(store: S) {
    accept(
        &store,
        message("first", 1, vec![(event(1, "taken"), vec![BureauId::Water])]),
    )
    .await;
    let tasks: Vec<_> = (0..60u64)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                let (key, id) = match n {
                    30 => ("bad".to_owned(), "taken".to_owned()),
                    40 | 41 => ("twice".to_owned(), format!("twice-{n}")),
                    _ => (format!("group-{n}"), format!("group-{n}")),
                };
                let m = message(
                    &key,
                    100 + n as i64,
                    vec![(
                        event(n + 10, &id),
                        vec![BureauId::Water, BureauId::Transport],
                    )],
                );
                (n, store.ingest(m).await)
            })
        })
        .collect();
    let mut twice = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (30, outcome) => {
                let error = outcome.unwrap_err();
                assert!(matches!(error, StoreError::Corrupt { .. }), "{error:?}");
            }
            (40 | 41, outcome) => twice.push(outcome.unwrap()),
            (n, outcome) => assert!(
                matches!(outcome, Ok(IngestOutcome::Accepted(_))),
                "{n}: {outcome:?}"
            ),
        }
    }
    let (accepted, duplicate): (Vec<_>, Vec<_>) = twice
        .into_iter()
        .partition(|o| matches!(o, IngestOutcome::Accepted(_)));
    let ([IngestOutcome::Accepted(first)], [IngestOutcome::Duplicate(again)]) =
        (accepted.as_slice(), duplicate.as_slice())
    else {
        panic!("one of the same key accepted, the other a duplicate: {accepted:?} {duplicate:?}");
    };
    assert_eq!(first, again);
    // The first message, 58 of the group (one of the two with the same key), not the bad one.
    assert_eq!(stat(&store, BureauId::Water).await.unwrap().pending, 1 + 58);
    assert_eq!(stat(&store, BureauId::Transport).await.unwrap().pending, 58);
}

/// One call records many outcomes at once — delivered, retry later, dead letter — each only
/// while its lease is held; the rest of the batch is recorded when one lease was lost.
pub(crate) async fn outcomes_are_recorded_together<S: Store + Clone>(store: S) {
    for n in 0..4u64 {
        accept(
            &store,
            message(
                &format!("o{n}"),
                10 + n as i64,
                vec![(event(n + 1, &format!("o{n}")), vec![BureauId::Water])],
            ),
        )
        .await;
    }
    let leased = store
        .lease_due(NODE, vec![BureauId::Water], 100, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(leased.len(), 4, "four cases, four heads");
    let failed = |at| Attempt {
        at,
        error: "HTTP 503 Service Unavailable".to_owned(),
    };
    let held = store
        .record_outcomes(vec![
            Outcome {
                id: leased[0].id,
                lease: leased[0].lease,
                subscriber: leased[0].subscriber,
                message_id: leased[0].event.message_id.clone(),
                settled: Settled::Delivered { at: 200 },
            },
            Outcome {
                id: leased[1].id,
                lease: leased[1].lease,
                subscriber: leased[1].subscriber,
                message_id: leased[1].event.message_id.clone(),
                settled: Settled::Failed {
                    attempt: failed(200),
                    after: AfterFailure::RetryAt(5_000),
                },
            },
            Outcome {
                id: leased[2].id,
                lease: leased[2].lease,
                subscriber: leased[2].subscriber,
                message_id: leased[2].event.message_id.clone(),
                settled: Settled::Failed {
                    attempt: failed(201),
                    after: AfterFailure::DeadLetter,
                },
            },
            Outcome {
                id: leased[3].id,
                lease: leased[3].lease ^ 1,
                subscriber: leased[3].subscriber,
                message_id: leased[3].event.message_id.clone(),
                settled: Settled::Delivered { at: 200 },
            },
        ])
        .await
        .unwrap();
    assert_eq!(held, vec![true, true, true, false]);
    assert_eq!(
        store.record_outcomes(Vec::new()).await.unwrap(),
        Vec::<bool>::new()
    );

    let dead = store.dead_letters(Some(BureauId::Water), 10).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].id, leased[2].id);
    assert_eq!(dead[0].attempts, vec![failed(201)]);
    let water = stat(&store, BureauId::Water).await.unwrap();
    assert_eq!((water.delivered, water.dead, water.pending), (1, 1, 2));
    // The retry is due at its time, with its attempt counted; the one whose lease was
    // mismatched is still leased, untouched.
    let early = store
        .lease_due(NODE, vec![BureauId::Water], 4_999, LEASE_MS, 10)
        .await
        .unwrap();
    assert!(early.is_empty(), "{early:?}");
    let retried = store
        .lease_due(NODE, vec![BureauId::Water], 5_000, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(ids(&retried), vec!["gw-o1"]);
    assert_eq!(retried[0].attempts, 1);
    let after_expiry = store
        .lease_due(NODE, vec![BureauId::Water], 100 + LEASE_MS, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(ids(&after_expiry), vec!["gw-o3"]);
}

/// The audit trail of `store` verifies, link by link (the signed checkpoints are the audit
/// module's, above the store; the conformance suite has none).
pub(crate) async fn trail_is_intact<S: Store>(store: &S) {
    for chain in store.audit_chains().await.unwrap() {
        let mut prev = chain.start.clone();
        loop {
            let page = store
                .audit_entries(&chain.chain, prev.seq, 1_000)
                .await
                .unwrap();
            for row in &page {
                if let Err(broken) = super::audit::check_entry(&chain.chain, &prev, row) {
                    panic!(
                        "the trail is broken: chain {} entry {}: {broken}",
                        chain.chain,
                        prev.seq + 1
                    );
                }
                prev = super::audit::Link {
                    seq: row.seq,
                    hash: row.hash.clone(),
                };
            }
            if page.len() < 1_000 {
                break;
            }
        }
        assert_eq!(
            prev, chain.head,
            "chain {} ends where its head says",
            chain.chain
        );
    }
}

/// How many entries the trail holds, all chains.
async fn trail_len<S: Store>(store: &S) -> i64 {
    store
        .audit_chains()
        .await
        .unwrap()
        .iter()
        .map(|c| c.head.seq - c.start.seq)
        .sum()
}

/// Every committed change appends its entries, once: an ingest (the message, then each event's
/// route), not its resend; each outcome; a pause that pauses and a resume that resumes; a
/// survey read. The entries name what they record.
pub(crate) async fn every_change_is_in_the_trail_once<S: Store + Clone>(store: S) {
    let both = || vec![BureauId::Water, BureauId::Transport];
    let sent = message(
        "t",
        100,
        vec![(event(1, "a1"), both()), (event(2, "a2"), both())],
    );
    let body_sha = sent.sha256.as_str().to_owned();
    accept(&store, sent.clone()).await;
    assert_eq!(trail_len(&store).await, 3, "the message and its two routes");
    assert!(matches!(
        store.ingest(sent).await.unwrap(),
        IngestOutcome::Duplicate(_)
    ));
    assert_eq!(trail_len(&store).await, 3, "a resend writes nothing");

    let planning = store
        .audit_of_bureau(BureauId::Planning, 0, 1_000, None, 100)
        .await
        .unwrap();
    let ingest = planning.iter().find(|r| r.kind == "ingest").unwrap();
    assert!(ingest.content.contains(&body_sha), "{}", ingest.content);
    assert!(ingest.content.contains("gw-a1") && ingest.content.contains("gw-a2"));

    let leased = store
        .lease_due(NODE, vec![BureauId::Water], 200, LEASE_MS, 10)
        .await
        .unwrap();
    assert!(record_delivered(&store, &leased[0], 210).await);
    assert!(
        record_failure(
            &store,
            &leased[1],
            Attempt {
                at: 220,
                error: "HTTP 503".into()
            },
            AfterFailure::RetryAt(5_000)
        )
        .await
    );
    assert_eq!(trail_len(&store).await, 5, "one entry per outcome");
    let about_a1 = store
        .audit_of_message(&MessageId::parse("gw-a1").unwrap(), 100)
        .await
        .unwrap();
    let kinds: Vec<&str> = about_a1.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, ["route", "attempt"], "{about_a1:?}");
    assert!(about_a1[1].content.contains(r#""outcome":"delivered""#));
    assert_eq!(about_a1[1].bureau.as_deref(), Some("water"));

    let pause = Pause {
        subscriber: BureauId::Transport,
        by: "alice".into(),
        at: 300,
    };
    assert!(store.pause(pause.clone()).await.unwrap());
    assert!(!store.pause(pause).await.unwrap());
    assert!(store.resume(BureauId::Transport, "bob", 310).await.unwrap());
    assert!(!store.resume(BureauId::Transport, "bob", 320).await.unwrap());
    let transport = store
        .audit_of_bureau(BureauId::Transport, 300, 400, None, 100)
        .await
        .unwrap();
    let actions: Vec<(&str, bool)> = transport
        .iter()
        .map(|r| (r.kind.as_str(), r.content.contains("alice")))
        .collect();
    assert_eq!(
        actions,
        [("pause", true), ("resume", false)],
        "{transport:?}"
    );
    assert!(transport[1].content.contains("bob"));
    assert_eq!(trail_len(&store).await, 7, "only the changes that happened");
}

/// The retention cleanup deletes delivered rows; the trail keeps their story, and the timeline
/// tells it from there.
pub(crate) async fn the_trail_tells_deliveries_the_cleanup_deleted<S: Store + Clone>(store: S) {
    accept(
        &store,
        message("c", 100, vec![(event(3, "c1"), vec![BureauId::Water])]),
    )
    .await;
    let leased = store
        .lease_due(NODE, vec![BureauId::Water], 200, LEASE_MS, 10)
        .await
        .unwrap();
    assert!(
        record_failure(
            &store,
            &leased[0],
            Attempt {
                at: 210,
                error: "HTTP 500".into()
            },
            AfterFailure::RetryAt(220)
        )
        .await
    );
    let again = store
        .lease_due(NODE, vec![BureauId::Water], 230, LEASE_MS, 10)
        .await
        .unwrap();
    assert!(record_delivered(&store, &again[0], 240).await);
    assert_eq!(store.cleanup(1_000, 100).await.unwrap(), 1);
    let told = store
        .timeline(TimelineKey::Message(MessageId::parse("gw-c1").unwrap()), 10)
        .await
        .unwrap();
    let delivery = &told[0].deliveries[0];
    assert_eq!(delivery.subscriber, BureauId::Water);
    assert_eq!(delivery.state, DeliveryState::Delivered);
    assert_eq!(delivery.delivered_at, Some(240));
    assert_eq!(delivery.created_at, 100);
    assert_eq!(delivery.id, leased[0].id);
    assert_eq!(delivery.attempts.len(), 1);
    assert_eq!(delivery.attempts[0].error, "HTTP 500");
}

/// A joint case as the flows would store it: `adapters`' generated notice, its clocks empty.
fn joint_case(seed: u64, revision: u64, at: Millis) -> super::joint::JointCase {
    let mut notice = adapters::sample::joint_notice(&mut fastrand::Rng::with_seed(seed));
    notice.status = schemas::JointStatus::Open;
    super::joint::JointCase {
        clocks: notice.branches.iter().map(|_| Default::default()).collect(),
        notice,
        clock: Default::default(),
        window_sequence: 1,
        supply_later: None,
        closed_at: None,
        updated_at: at,
        revision,
    }
}

/// The flows' inbox holds exactly the events ingested for them, oldest first; a step takes its
/// event out, writes its joint cases over the revisions they were read at and ingests its
/// notices, all or nothing; a second step over the same event or a stale revision conflicts and
/// writes nothing.
pub(crate) async fn flow_steps_are_committed_whole_and_once<S: Store>(store: S) {
    let t0: Millis = 1_700_000_000_000;
    let mut wanted = message(
        "flows-1",
        t0,
        vec![
            (event(901, "f1"), vec![BureauId::Water]),
            (event(902, "f2"), vec![]),
            (event(903, "f3"), vec![BureauId::Water]),
        ],
    );
    wanted.events[0].for_flows = true;
    wanted.events[2].for_flows = true;
    accept(&store, wanted).await;
    let inbox = store.flow_inbox(10).await.unwrap();
    let seen: Vec<&str> = inbox.iter().map(|e| e.event.message_id.as_str()).collect();
    assert_eq!(seen, ["gw-f1", "gw-f3"]);
    assert!(inbox[0].id < inbox[1].id);
    assert_eq!(store.flow_inbox(1).await.unwrap().len(), 1);

    // A step: the first event out, a joint case opened, its notice to two bureaus.
    let case = joint_case(7, 1, t0);
    let id = case.id().clone();
    let mut notice = message(
        "flow-notice-1",
        t0 + 1,
        vec![(event(904, "n1"), vec![BureauId::Water, BureauId::Greenery])],
    );
    notice.idempotency_key = IdempotencyKey::for_flow_notice("jc/v1");
    store
        .commit_flow_step(super::FlowStep {
            event: Some(inbox[0].id),
            cases: vec![case.clone()],
            clocks: vec![],
            notices: vec![notice],
        })
        .await
        .unwrap();
    let left = store.flow_inbox(10).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].event.message_id.as_str(), "gw-f3");
    assert_eq!(store.joint_case(&id).await.unwrap(), Some(case.clone()));
    let leased = store
        .lease_due(NODE, vec![BureauId::Greenery], t0 + 2, LEASE_MS, 10)
        .await
        .unwrap();
    assert_eq!(ids(&leased), ["gw-n1"]);

    // The same event again, or the same case opened again: nothing is written.
    let mut again = message(
        "flow-notice-2",
        t0 + 3,
        vec![(event(905, "n2"), vec![BureauId::Water])],
    );
    again.idempotency_key = IdempotencyKey::for_flow_notice("jc/v1-again");
    let conflict = store
        .commit_flow_step(super::FlowStep {
            event: Some(inbox[0].id),
            cases: vec![],
            clocks: vec![],
            notices: vec![again],
        })
        .await;
    assert!(
        matches!(conflict, Err(StoreError::Conflict(_))),
        "{conflict:?}"
    );
    let reopened = store
        .commit_flow_step(super::FlowStep {
            event: Some(left[0].id),
            cases: vec![case.clone()],
            clocks: vec![],
            notices: vec![],
        })
        .await;
    assert!(
        matches!(reopened, Err(StoreError::Conflict(_))),
        "{reopened:?}"
    );
    // ... and the inbox event of the failed step is still there.
    assert_eq!(store.flow_inbox(10).await.unwrap().len(), 1);

    // A change over the stored revision is written; one over a stale revision is not.
    let mut changed = case.clone();
    changed.revision = 2;
    changed.notice.version += 1;
    changed.notice.status = schemas::JointStatus::Approved;
    store
        .commit_flow_step(super::FlowStep {
            event: Some(left[0].id),
            cases: vec![changed.clone()],
            clocks: vec![],
            notices: vec![],
        })
        .await
        .unwrap();
    let stale = store
        .commit_flow_step(super::FlowStep {
            event: None,
            cases: vec![changed.clone()],
            clocks: vec![],
            notices: vec![],
        })
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert!(store.flow_inbox(10).await.unwrap().is_empty());
    assert_eq!(store.joint_case(&id).await.unwrap(), Some(changed.clone()));

    // Lookups: by project, and the open ones page by page (the approved one is not open).
    let others: Vec<_> = (10..13).map(|seed| joint_case(seed, 1, t0)).collect();
    store
        .commit_flow_step(super::FlowStep {
            event: None,
            cases: others.clone(),
            clocks: vec![],
            notices: vec![],
        })
        .await
        .unwrap();
    let of_project = store
        .joint_cases_of_project(&changed.notice.project.code, 10)
        .await
        .unwrap();
    assert_eq!(of_project, vec![changed.clone()]);
    let mut open = Vec::new();
    let mut after = None;
    loop {
        let page = store.open_joint_cases(after.as_ref(), 2).await.unwrap();
        after = page.last().map(|c| c.id().clone());
        let done = page.len() < 2;
        open.extend(page);
        if done {
            break;
        }
    }
    let mut expected: Vec<_> = others.iter().map(|c| c.id().clone()).collect();
    expected.sort();
    let got: Vec<_> = open.iter().map(|c| c.id().clone()).collect();
    assert_eq!(got, expected);
}

/// A case clock as the flows would store it: of a generated case event of `bureau`.
fn case_clock(seed: u64, bureau: BureauId, revision: u64, at: Millis) -> super::joint::CaseClock {
    let event = adapters::sample::case_event(&mut fastrand::Rng::with_seed(seed), bureau);
    let case = event.case().cloned().unwrap();
    super::joint::CaseClock {
        bureau,
        case_id: event.case_id.clone(),
        item: case.item,
        project: case.project.code,
        status: case.status,
        clock: super::joint::Clock {
            limit: 6,
            ..Default::default()
        },
        last_sequence: event.sequence,
        joint_case_id: None,
        updated_at: at,
        revision,
    }
}

/// Case clocks are written in a flow step like joint cases: a new one once, a change only over
/// the revision it was read at (and not at all when the step's notices fail); they are found by
/// project, and the open ones page by (bureau, case) until a decided or taken-in one drops out.
pub(crate) async fn case_clocks_are_written_over_their_revision<S: Store>(store: S) {
    let t0 = 1_000;
    let first = case_clock(21, BureauId::Water, 1, t0);
    store
        .commit_flow_step(super::FlowStep {
            event: None,
            cases: vec![],
            clocks: vec![first.clone()],
            notices: vec![],
        })
        .await
        .unwrap();
    let again = store
        .commit_flow_step(super::FlowStep {
            event: None,
            cases: vec![],
            clocks: vec![first.clone()],
            notices: vec![],
        })
        .await;
    assert!(matches!(again, Err(StoreError::Conflict(_))), "{again:?}");
    assert_eq!(
        store
            .case_clocks_of_project(&first.project, 10)
            .await
            .unwrap(),
        vec![first.clone()]
    );

    let mut started = first.clone();
    started.revision = 2;
    started.clock.started_on = Some(schemas::ShanghaiDate::new(
        chrono::NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
    ));
    store
        .commit_flow_step(super::FlowStep {
            event: None,
            cases: vec![],
            clocks: vec![started.clone()],
            notices: vec![],
        })
        .await
        .unwrap();
    let stale = store
        .commit_flow_step(super::FlowStep {
            event: None,
            cases: vec![],
            clocks: vec![started.clone()],
            notices: vec![],
        })
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert_eq!(
        store
            .case_clock(first.bureau, &first.case_id)
            .await
            .unwrap(),
        Some(started.clone())
    );
    assert_eq!(
        store
            .case_clock(BureauId::Greenery, &first.case_id)
            .await
            .unwrap(),
        None,
        "a case id is the bureau's own"
    );

    // A step whose later part conflicts writes none of its clocks.
    let mut whole = started.clone();
    whole.revision = 3;
    whole.clock.notices_sent = 1;
    let taken = store
        .commit_flow_step(super::FlowStep {
            event: None,
            cases: vec![],
            clocks: vec![whole.clone(), first.clone()],
            notices: vec![],
        })
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert_eq!(
        store
            .case_clocks_of_project(&first.project, 10)
            .await
            .unwrap(),
        vec![started.clone()]
    );

    // Several steps in one transaction: all or none.
    let fresh = case_clock(40, BureauId::Planning, 1, t0);
    let batch = store
        .commit_flow_steps(vec![
            super::FlowStep {
                event: None,
                cases: vec![],
                clocks: vec![fresh.clone()],
                notices: vec![],
            },
            super::FlowStep {
                event: None,
                cases: vec![],
                clocks: vec![started.clone()], // stale
                notices: vec![],
            },
        ])
        .await;
    assert!(matches!(batch, Err(StoreError::Conflict(_))), "{batch:?}");
    assert_eq!(
        store
            .case_clock(fresh.bureau, &fresh.case_id)
            .await
            .unwrap(),
        None,
        "the first step of a batch that conflicts is not written"
    );

    // The open ones, page by page; a decided one and a taken-in one are not open.
    let mut others: Vec<_> = [
        BureauId::TrafficPolice,
        BureauId::Greenery,
        BureauId::Transport,
    ]
    .into_iter()
    .enumerate()
    .map(|(i, bureau)| case_clock(30 + i as u64, bureau, 1, t0))
    .collect();
    others[1].clock.stopped_on = started.clock.started_on;
    others[2].joint_case_id =
        Some(adapters::sample::joint_notice(&mut fastrand::Rng::with_seed(5)).joint_case_id);
    store
        .commit_flow_step(super::FlowStep {
            event: None,
            cases: vec![],
            clocks: others.clone(),
            notices: vec![],
        })
        .await
        .unwrap();
    let mut open = Vec::new();
    let mut after = None;
    loop {
        let page = store.open_case_clocks(after.clone(), 1).await.unwrap();
        after = page.last().map(|c| (c.bureau, c.case_id.clone()));
        let done = page.is_empty();
        open.extend(page);
        if done {
            break;
        }
    }
    let mut expected = vec![
        (started.bureau, started.case_id.clone()),
        (others[0].bureau, others[0].case_id.clone()),
    ];
    expected.sort_by(|a, b| (a.0.as_str(), a.1.as_str()).cmp(&(b.0.as_str(), b.1.as_str())));
    let got: Vec<_> = open.iter().map(|c| (c.bureau, c.case_id.clone())).collect();
    assert_eq!(got, expected);
}

/// A credit match is recorded with its notice, once per (entry, case) however often the notice
/// is made; read by case, and the latest first.
pub(crate) async fn credit_matches_are_recorded_once_with_their_notice<S: Store + Clone>(store: S) {
    let t0: Millis = 1_700_000_000_000;
    let receivers = vec![BureauId::Water, BureauId::Housing];
    let notice = |seed: u64, at: Millis| {
        let event = adapters::sample::credit_match_event(&mut fastrand::Rng::with_seed(seed));
        let found = event.credit_match().cloned().expect("a match notice");
        let record = CreditMatchRecord {
            bureau: event.source,
            case_id: event.case_id.clone(),
            found,
            notice: event.message_id.clone(),
            receivers: receivers.clone(),
            matched_at: at,
        };
        let mut message = NewMessage::notice(
            event.source,
            &format!("credit/conformance/{seed}"),
            event,
            receivers.clone(),
            "credit list dishonest",
            at,
        )
        .expect("a notice");
        message.credit_match = Some(record.clone());
        (message, record)
    };
    let (first, record) = notice(1, t0);
    let receipt = accept(&store, first.clone()).await;
    assert_eq!(
        receipt.deliveries, 2,
        "the notice is queued for the bureaus told"
    );
    // Made again (a later event of the case, another node): the first stays, nothing is added.
    let mut again = first;
    if let Some(found) = again.credit_match.as_mut() {
        found.matched_at = t0 + 500;
    }
    assert!(matches!(
        store.ingest(again).await.expect("ingest"),
        IngestOutcome::Duplicate(_)
    ));
    let (second, later) = notice(2, t0 + 1_000);
    accept(&store, second).await;

    assert_eq!(
        store.recent_credit_matches(10).await.expect("matches"),
        vec![later.clone(), record.clone()]
    );
    assert_eq!(
        store.recent_credit_matches(1).await.expect("matches"),
        vec![later]
    );
    assert_eq!(
        store
            .credit_matches_of_case(record.bureau, record.case_id.clone(), 10)
            .await
            .expect("matches of the case"),
        vec![record.clone()]
    );
    let other = BureauCaseId::parse("GH2099000000").expect("a case id");
    assert!(
        store
            .credit_matches_of_case(record.bureau, other, 10)
            .await
            .expect("matches of another case")
            .is_empty()
    );
}
