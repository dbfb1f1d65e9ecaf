-- One row, one commit: the single-row commit ceiling (synchronous_commit on).
INSERT INTO rows (payload) VALUES (repeat('x', 1000));
