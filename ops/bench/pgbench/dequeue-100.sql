-- Take the oldest 100 queued rows no other client holds, and mark them taken: the SKIP LOCKED
-- dequeue ceiling.
WITH taken AS (
    SELECT id FROM queue WHERE state = 0 ORDER BY id LIMIT 100 FOR UPDATE SKIP LOCKED
)
UPDATE queue q SET state = 1 FROM taken WHERE q.id = taken.id;
