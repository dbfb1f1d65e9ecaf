//! The SQLite schema, as migrations.

/// The schema, one step per version: step `i` takes `user_version` from `i` to `i + 1`.
/// Never edit a released step; append a new one. The PostgreSQL store has the same tables,
/// columns and indexes in its own dialect; a test compares the two.
pub(crate) const MIGRATIONS: &[&str] = &[
    // 1: messages, events, deliveries and their attempt history.
    "CREATE TABLE messages (
        id              INTEGER PRIMARY KEY,
        sender          TEXT    NOT NULL,
        idempotency_key TEXT    NOT NULL,
        content_type    TEXT    NOT NULL,
        body            BLOB    NOT NULL,
        sha256          TEXT    NOT NULL,
        received_at     INTEGER NOT NULL,
        receipt         TEXT    NOT NULL,
        UNIQUE (sender, idempotency_key)
    );
    CREATE TABLE events (
        id                 INTEGER PRIMARY KEY,
        message_id         INTEGER NOT NULL REFERENCES messages (id),
        gateway_message_id TEXT    NOT NULL UNIQUE,
        source_message_id  TEXT    NOT NULL,
        source             TEXT    NOT NULL,
        case_key           TEXT    NOT NULL,
        event              TEXT    NOT NULL
    );
    CREATE INDEX events_message ON events (message_id);
    CREATE TABLE deliveries (
        id           INTEGER PRIMARY KEY,
        event_id     INTEGER NOT NULL REFERENCES events (id),
        subscriber   TEXT    NOT NULL,
        case_key     TEXT    NOT NULL,
        state        TEXT    NOT NULL CHECK (state IN ('pending', 'delivered', 'dead')),
        attempts     INTEGER NOT NULL DEFAULT 0,
        due_at       INTEGER NOT NULL,
        lease_until  INTEGER NULL,
        lease        INTEGER NOT NULL DEFAULT 0,
        created_at   INTEGER NOT NULL,
        delivered_at INTEGER NULL,
        dead_at      INTEGER NULL
    );
    CREATE INDEX deliveries_case_queue ON deliveries (subscriber, case_key, id)
        WHERE state = 'pending';
    CREATE INDEX deliveries_due ON deliveries (subscriber, due_at, id) WHERE state = 'pending';
    CREATE INDEX deliveries_feed ON deliveries (subscriber, id) WHERE state = 'pending';
    CREATE INDEX deliveries_dead ON deliveries (dead_at, id) WHERE state = 'dead';
    CREATE INDEX deliveries_stats ON deliveries (subscriber, state, created_at);
    CREATE INDEX deliveries_event ON deliveries (event_id);
    CREATE TABLE delivery_attempts (
        id          INTEGER PRIMARY KEY,
        delivery_id INTEGER NOT NULL REFERENCES deliveries (id),
        at          INTEGER NOT NULL,
        error       TEXT    NOT NULL
    );
    CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, id);",
    // 2: retention cleanup finds old delivered rows without scanning the table.
    "CREATE INDEX deliveries_delivered ON deliveries (delivered_at, id) WHERE state = 'delivered';",
    // 3: multi-survey-in-one: published survey results and who read them.
    "CREATE TABLE surveys (
        id           TEXT    PRIMARY KEY,
        message_id   INTEGER NOT NULL REFERENCES messages (id),
        project      TEXT    NOT NULL,
        kind         TEXT    NOT NULL,
        version      INTEGER NOT NULL,
        supersedes   TEXT    NULL,
        publisher    TEXT    NOT NULL,
        result       TEXT    NOT NULL,
        published_at INTEGER NOT NULL,
        UNIQUE (project, kind, version)
    );
    CREATE TABLE survey_reads (
        id        INTEGER PRIMARY KEY,
        survey_id TEXT    NOT NULL REFERENCES surveys (id),
        bureau    TEXT    NOT NULL,
        what      TEXT    NOT NULL,
        at        INTEGER NOT NULL
    );
    CREATE INDEX survey_reads_survey ON survey_reads (survey_id, bureau, id);",
    // 4: a pull subscriber acknowledges only what it was handed (see the PostgreSQL store,
    // where concurrent nodes can commit a lower id after a fetch).
    "ALTER TABLE deliveries ADD COLUMN fetched INTEGER NOT NULL DEFAULT 0;",
    // 5: the node that took a delivery's current (or last) lease (see the PostgreSQL store).
    "ALTER TABLE deliveries ADD COLUMN leased_by TEXT NULL;",
    // 6: the operator surface: pauses, every node's minute counts and per-bureau state (so every
    // node shows the same exchange-wide picture), the events of a project (filled in for the
    // events stored before), shared secrets.
    "CREATE TABLE paused_subscribers (
        subscriber TEXT    PRIMARY KEY,
        paused_by  TEXT    NOT NULL,
        paused_at  INTEGER NOT NULL
    );
    CREATE TABLE ops_minutes (
        node      TEXT    NOT NULL,
        bureau    TEXT    NOT NULL,
        minute    INTEGER NOT NULL,
        received  INTEGER NOT NULL,
        delivered INTEGER NOT NULL,
        failed    INTEGER NOT NULL,
        backlog   INTEGER NOT NULL,
        PRIMARY KEY (node, bureau, minute)
    );
    CREATE INDEX ops_minutes_minute ON ops_minutes (minute);
    CREATE TABLE ops_bureaus (
        node            TEXT    NOT NULL,
        bureau          TEXT    NOT NULL,
        reported_at     INTEGER NOT NULL,
        last_in         INTEGER NULL,
        last_out        INTEGER NULL,
        failing_since   INTEGER NULL,
        failing_count   INTEGER NOT NULL,
        last_error_at   INTEGER NULL,
        last_error      TEXT    NULL,
        circuit         TEXT    NOT NULL,
        cert_not_after  INTEGER NULL,
        PRIMARY KEY (node, bureau)
    );
    CREATE TABLE shared_secrets (
        name  TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    ALTER TABLE events ADD COLUMN project TEXT NULL;
    CREATE INDEX events_project ON events (project, id);
    CREATE INDEX events_case ON events (case_key, id);
    UPDATE events SET project = COALESCE(
        json_extract(event, '$.payload.case.project.code'),
        json_extract(event, '$.payload.survey.result.project'));",
    // 7: the queue's hot path, leaner: `deliveries_stats` indexed every delivery by its state, so
    // every state change (leased deliveries turn delivered by the thousands a second) wrote one
    // more index entry, for a query the operator surface runs every few seconds; the backlog
    // counts read the partial indexes of pending and dead deliveries instead.
    "DROP INDEX deliveries_stats;",
    // 8: queue heads. A pending delivery is flagged `head` when nothing older of its (subscriber,
    // case) is pending — at ingest, or when the one before it is delivered or dead-lettered — and
    // `deliveries_due` holds only heads: leasing reads O(batch) rows at any backlog, never the
    // deliveries queued behind a head that waits for its retry.
    "ALTER TABLE deliveries ADD COLUMN head INTEGER NOT NULL DEFAULT 0;
    UPDATE deliveries AS d SET head = 1
    WHERE d.state = 'pending' AND NOT EXISTS (
        SELECT 1 FROM deliveries o
        WHERE o.subscriber = d.subscriber AND o.case_key = d.case_key
          AND o.state = 'pending' AND o.id < d.id);
    DROP INDEX deliveries_due;
    CREATE INDEX deliveries_due ON deliveries (subscriber, due_at, id)
        WHERE state = 'pending' AND head;",
    // 9: the audit trail (see `store::audit`): hash-chained entries, written in the transaction
    // of the change each records; the anchors pruned chains start from; signed checkpoints of
    // every chain's head. Never touched by the retention cleanup.
    "CREATE TABLE audit_log (
        chain          TEXT   NOT NULL,
        seq            INTEGER NOT NULL,
        at             INTEGER NOT NULL,
        kind           TEXT   NOT NULL,
        bureau         TEXT   NULL,
        message_id     TEXT   NULL,
        content        TEXT   NOT NULL,
        content_sha256 TEXT   NOT NULL,
        prev_hash      TEXT   NOT NULL,
        hash           TEXT   NOT NULL,
        PRIMARY KEY (chain, seq)
    ) WITHOUT ROWID;
    CREATE INDEX audit_log_message ON audit_log (message_id) WHERE message_id IS NOT NULL;
    CREATE INDEX audit_log_bureau ON audit_log (bureau, at) WHERE bureau IS NOT NULL;
    CREATE TABLE audit_anchors (
        chain     TEXT   PRIMARY KEY,
        seq       INTEGER NOT NULL,
        hash      TEXT   NOT NULL,
        pruned_at INTEGER NOT NULL
    );
    CREATE TABLE audit_checkpoints (
        id          INTEGER PRIMARY KEY,
        node        TEXT   NOT NULL,
        at          INTEGER NOT NULL,
        body        TEXT   NOT NULL,
        signature   TEXT   NOT NULL,
        certificate TEXT   NOT NULL
    );",
    // 10: one-stop flows (see `gateway::flows`): the inbox of committed events the flows have
    // yet to look at (a flag on the event, set in the ingest transaction, cleared in the step
    // that applies it), and the joint cases, each one JSON document beside the columns it is
    // looked up by.
    "ALTER TABLE events ADD COLUMN flow_pending INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX events_flow_inbox ON events (id) WHERE flow_pending;
    CREATE TABLE joint_cases (
        id             TEXT    PRIMARY KEY,
        flow           TEXT    NOT NULL,
        project        TEXT    NOT NULL,
        window_bureau  TEXT    NOT NULL,
        window_case_id TEXT    NOT NULL,
        status         TEXT    NOT NULL,
        due_on         TEXT    NOT NULL,
        revision       INTEGER NOT NULL,
        updated_at     INTEGER NOT NULL,
        state          TEXT    NOT NULL
    );
    CREATE INDEX joint_cases_project ON joint_cases (project, id);
    CREATE INDEX joint_cases_open ON joint_cases (id) WHERE status = 'open';",
    // 11: the monthly bulletin: the messages by time received (the month's events), and each
    // closed month's bulletin, frozen the first time it is asked for.
    "CREATE INDEX messages_received ON messages (received_at);
    CREATE TABLE monthly_reports (
        month      TEXT    PRIMARY KEY,
        created_at INTEGER NOT NULL,
        body       TEXT    NOT NULL
    );",
    // 12: the clocks of the cases outside joint cases (`clocks.every_case`), one JSON document
    // per (bureau, case) beside the columns they are looked up by: the open ones of a project
    // (a joint case opening takes in its branches filed before it) and all open ones (ticked).
    "CREATE TABLE case_clocks (
        bureau     TEXT    NOT NULL,
        case_id    TEXT    NOT NULL,
        project    TEXT    NOT NULL,
        is_open    INTEGER NOT NULL,
        revision   INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        state      TEXT    NOT NULL,
        PRIMARY KEY (bureau, case_id)
    );
    CREATE INDEX case_clocks_project ON case_clocks (project, bureau, case_id) WHERE is_open;
    CREATE INDEX case_clocks_open ON case_clocks (bureau, case_id) WHERE is_open;",
    // 13: shared credit lists: every version of every entry, looked up by its subject's credit
    // code (matching, `GET /v1/credit/{code}`) and by time (the operators' recent listings).
    "CREATE TABLE credit_entries (
        publisher   TEXT    NOT NULL,
        entry_id    TEXT    NOT NULL,
        version     INTEGER NOT NULL,
        credit_code TEXT    NOT NULL,
        list        TEXT    NOT NULL,
        message_id  INTEGER NOT NULL REFERENCES messages (id),
        listed_at   INTEGER NOT NULL,
        entry       TEXT    NOT NULL,
        PRIMARY KEY (publisher, entry_id, version)
    );
    CREATE INDEX credit_entries_code ON credit_entries (credit_code);
    CREATE INDEX credit_entries_listed ON credit_entries (listed_at);",
    // 14: credit matches, written with their notice once per (entry, case): the flows look up
    // a case's before sending another notice; operators see the latest.
    "CREATE TABLE credit_matches (
        publisher  TEXT   NOT NULL,
        entry_id   TEXT   NOT NULL,
        bureau     TEXT   NOT NULL,
        case_id    TEXT   NOT NULL,
        message_id INTEGER NOT NULL REFERENCES messages (id),
        matched_at INTEGER NOT NULL,
        record     TEXT   NOT NULL,
        PRIMARY KEY (publisher, entry_id, bureau, case_id)
    );
    CREATE INDEX credit_matches_case ON credit_matches (bureau, case_id);
    CREATE INDEX credit_matches_at ON credit_matches (matched_at);",
];
