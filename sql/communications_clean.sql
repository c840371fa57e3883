-- Contact events, one per event_id, as of the logical date.
-- DATA_CONTRACT.md, Duplicates: key event_id, the first copy wins (earliest
-- file, then earliest line). Event dates are UTC dates.
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
FROM (
    SELECT
        c.*,
        ROW_NUMBER() OVER (PARTITION BY event_id ORDER BY _file, _line) AS copy_rank
    FROM communications c
) ranked
WHERE copy_rank = 1
  AND CAST(event_ts AS DATE) <= DATE '{date}'
