-- One hundred rows in one multi-row statement and one commit: the multi-row insert ceiling.
INSERT INTO rows (payload) SELECT repeat('x', 1000) FROM generate_series(1, 100);
