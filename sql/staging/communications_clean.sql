-- Contact events, one per event_id, as of the logical date.
-- DATA_CONTRACT.md, Duplicates: key event_id, the first copy wins (earliest
-- file, then earliest line); communications_deduped holds the winners
-- (src/job/dedup.rs). Event dates are UTC dates.
SELECT
    event_id,
    source_system,
    source_customer_id,
    email,
    channel,
    direction,
    campaign_id,
    event_type,
    event_ts,
    CAST(event_ts AS DATE) AS event_date,
    cost
FROM communications_deduped
WHERE CAST(event_ts AS DATE) <= DATE '{date}'
