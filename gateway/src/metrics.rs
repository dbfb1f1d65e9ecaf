//! Metric names, defined once with their help text, and the Prometheus recorder.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// Messages received, by `bureau` and `outcome` (accepted, duplicate, invalid, malformed,
/// forbidden, too_large, unsupported, unavailable).
pub const MESSAGES_RECEIVED: &str = "gateway_messages_received_total";
/// Delivery attempts, by `subscriber` and `outcome` (delivered, retry, dead_letter).
pub const DELIVERIES: &str = "gateway_deliveries_total";
/// Pending deliveries per `subscriber`.
pub const QUEUE_DEPTH: &str = "gateway_queue_depth";
/// Age in seconds of the oldest pending delivery per `subscriber`.
pub const QUEUE_OLDEST_SECONDS: &str = "gateway_queue_oldest_pending_seconds";
/// Dead letters per `subscriber`.
pub const DEAD_LETTERS: &str = "gateway_dead_letters";
/// Circuit state per `subscriber`: 0 closed, 1 half-open, 2 open.
pub const CIRCUIT_STATE: &str = "gateway_circuit_state";
/// Seconds from receiving a message to answering it, by `bureau`.
pub const INGEST_SECONDS: &str = "gateway_ingest_duration_seconds";
/// Seconds one push (a delivery, or a batch of them) took, by `subscriber`.
pub const DELIVERY_SECONDS: &str = "gateway_delivery_duration_seconds";

/// TLS handshakes the listener refused, by `reason`: `revoked` (a certificate on the exchange
/// CA's CRL), `certificate` (another unacceptable certificate), `timeout`, `protocol`.
pub const TLS_HANDSHAKES_REFUSED: &str = "gateway_tls_handshakes_refused_total";

/// Request-body bytes reserved now in the in-flight body budget (`limits.max_in_flight_body_bytes`).
pub const REQUEST_BODY_BYTES_RESERVED: &str = "gateway_request_body_bytes_reserved";

/// 1 while an operator has paused delivery to a `subscriber`, else 0 (exchange-wide, from the
/// store).
pub const DELIVERY_PAUSED: &str = "gateway_delivery_paused";
/// Unix time of the last message this node accepted from a `bureau`.
pub const LAST_MESSAGE_RECEIVED: &str = "gateway_last_message_received_timestamp_seconds";
/// Seconds until the certificate a `bureau` last presented to this node expires.
pub const CLIENT_CERTIFICATE_EXPIRY: &str = "gateway_client_certificate_expiry_seconds";
/// Seconds until this node's own certificate expires.
pub const NODE_CERTIFICATE_EXPIRY: &str = "gateway_node_certificate_expiry_seconds";
/// Store calls that failed, by `kind`: unavailable, corrupt, closed, conflict.
pub const STORE_ERRORS: &str = "gateway_store_errors_total";
/// Audit checkpoints this node tried to sign, by `outcome`: written, failed.
pub const AUDIT_CHECKPOINTS: &str = "gateway_audit_checkpoints_total";
/// Joint-case and deadline notices the one-stop flows queued.
pub const FLOW_NOTICES: &str = "gateway_flow_notices_total";
/// Branch cases of open joint cases with a running clock, by `bureau` and `state`: open,
/// due_soon, overdue.
pub const CLOCKS: &str = "gateway_clocks";
/// 1 while the working-day calendar lacks next year's State Council notice (from 1 November).
pub const CALENDAR_NEXT_YEAR_MISSING: &str = "gateway_calendar_next_year_missing";

/// Histogram buckets (seconds) of the two latencies: from 1 ms to a minute, so that p99 is
/// aggregated across nodes from the buckets (a summary's quantiles cannot be).
const LATENCY_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0,
];

/// Credit-list entry versions published, by `list` and `change` (`listed`, `removed`).
pub const CREDIT_ENTRIES: &str = "gateway_credit_entries_total";
/// Case events accepted whose applicant is on an active credit list, by `bureau` (the case's)
/// and `list`.
pub const CREDIT_WARNINGS: &str = "gateway_credit_warnings_total";
/// Credit matches committed with their notice (once per case and entry), by `bureau` (the
/// case's) and `list`.
pub const CREDIT_MATCHES: &str = "gateway_credit_matches_total";

/// Survey results published (each shared once with every entitled bureau), by `kind`.
pub const SURVEYS_SHARED: &str = "gateway_survey_results_shared_total";
/// Survey notices queued for entitled bureaus, by `kind`.
pub const SURVEY_NOTICES: &str = "gateway_survey_notices_total";
/// First reads of a result by a bureau other than the publisher, by `bureau`: each is a survey
/// job that bureau did not have to commission.
pub const SURVEY_REUSES: &str = "gateway_survey_reuses_total";

/// The process's Prometheus recorder (installed once; every gateway in the process shares it).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets(&LATENCY_BUCKETS)
                .expect("the latency buckets are not empty");
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Fails only when another recorder is installed; the handle then renders ours, empty.
            if let Err(error) = metrics::set_global_recorder(recorder) {
                tracing::warn!(
                    message = "another metrics recorder is installed; /metrics stays empty",
                    %error
                );
            }
            describe();
            handle
        })
        .clone()
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        MESSAGES_RECEIVED,
        "Messages received, by bureau and outcome."
    );
    describe_counter!(DELIVERIES, "Delivery attempts, by subscriber and outcome.");
    describe_gauge!(QUEUE_DEPTH, "Pending deliveries per subscriber.");
    describe_gauge!(
        QUEUE_OLDEST_SECONDS,
        Unit::Seconds,
        "Age of the oldest pending delivery per subscriber."
    );
    describe_gauge!(DEAD_LETTERS, "Dead letters per subscriber.");
    describe_gauge!(
        CIRCUIT_STATE,
        "Circuit state per subscriber: 0 closed, 1 half-open, 2 open."
    );
    describe_histogram!(
        INGEST_SECONDS,
        Unit::Seconds,
        "Time from receiving a message to answering it."
    );
    describe_histogram!(
        DELIVERY_SECONDS,
        Unit::Seconds,
        "Time one push took (a single delivery, or a batch to a subscriber that takes them)."
    );
    describe_counter!(
        TLS_HANDSHAKES_REFUSED,
        "TLS handshakes refused, by reason: revoked (certificate on the CRL), certificate (other unacceptable certificate), timeout, protocol."
    );
    describe_gauge!(
        REQUEST_BODY_BYTES_RESERVED,
        Unit::Bytes,
        "Request-body bytes reserved now in the in-flight body budget (limits.max_in_flight_body_bytes)."
    );
    describe_gauge!(
        DELIVERY_PAUSED,
        "1 while an operator has paused delivery to the subscriber (exchange-wide), else 0."
    );
    describe_gauge!(
        LAST_MESSAGE_RECEIVED,
        Unit::Seconds,
        "Unix time of the last message this node accepted from the bureau."
    );
    describe_gauge!(
        CLIENT_CERTIFICATE_EXPIRY,
        Unit::Seconds,
        "Seconds until the certificate the bureau last presented to this node expires."
    );
    describe_gauge!(
        NODE_CERTIFICATE_EXPIRY,
        Unit::Seconds,
        "Seconds until this node's own certificate expires."
    );
    describe_counter!(
        STORE_ERRORS,
        "Store calls that failed, by kind: unavailable, corrupt, closed, conflict."
    );
    describe_counter!(
        AUDIT_CHECKPOINTS,
        "Audit checkpoints this node tried to sign, by outcome: written, failed."
    );
    describe_counter!(
        FLOW_NOTICES,
        "Joint-case and deadline notices the one-stop flows queued for delivery."
    );
    describe_gauge!(
        CLOCKS,
        "Branch cases of open joint cases with a running clock, by bureau and state: open, due_soon, overdue."
    );
    describe_gauge!(
        CALENDAR_NEXT_YEAR_MISSING,
        "1 while the working-day calendar lacks next year's State Council notice (from 1 November), else 0."
    );
    describe_counter!(
        CREDIT_ENTRIES,
        "Credit-list entry versions published, by list and change (listed, removed)."
    );
    describe_counter!(
        CREDIT_WARNINGS,
        "Case events accepted from a listed applicant, by the case's bureau and the list."
    );
    describe_counter!(
        CREDIT_MATCHES,
        "Credit match notices made (once per case and entry), by the case's bureau and the list."
    );
    describe_counter!(
        SURVEYS_SHARED,
        "Survey results published, each shared once with every entitled bureau, by kind."
    );
    describe_counter!(
        SURVEY_NOTICES,
        "Survey notices queued for entitled bureaus, by kind."
    );
    describe_counter!(
        SURVEY_REUSES,
        "First reads of a survey result by a bureau other than its publisher (survey jobs saved), by bureau."
    );
}

/// Every metric this module names, for the test that each has help text.
#[doc(hidden)] // public for the test that the Grafana dashboard names only these
pub const ALL: [&str; 25] = [
    MESSAGES_RECEIVED,
    DELIVERIES,
    QUEUE_DEPTH,
    QUEUE_OLDEST_SECONDS,
    DEAD_LETTERS,
    CIRCUIT_STATE,
    INGEST_SECONDS,
    DELIVERY_SECONDS,
    TLS_HANDSHAKES_REFUSED,
    REQUEST_BODY_BYTES_RESERVED,
    CREDIT_ENTRIES,
    CREDIT_WARNINGS,
    CREDIT_MATCHES,
    SURVEYS_SHARED,
    SURVEY_NOTICES,
    SURVEY_REUSES,
    DELIVERY_PAUSED,
    LAST_MESSAGE_RECEIVED,
    CLIENT_CERTIFICATE_EXPIRY,
    NODE_CERTIFICATE_EXPIRY,
    STORE_ERRORS,
    AUDIT_CHECKPOINTS,
    FLOW_NOTICES,
    CLOCKS,
    CALENDAR_NEXT_YEAR_MISSING,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_help_text() {
        let handle = handle();
        // A sample of each, so that the exporter renders them.
        for name in ALL {
            metrics::counter!(name).increment(0);
        }
        let rendered = handle.render();
        for name in ALL {
            assert!(
                rendered.contains(&format!("# HELP {name} ")),
                "{name} has no help text in:\n{rendered}"
            );
        }
    }
}
