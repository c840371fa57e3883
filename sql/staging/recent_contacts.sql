-- Contacts dated within `fatigue_days` of the logical date (days since <=
-- fatigue_days, the one "within N days" convention of the job) and not after
-- the day their file arrived, per record, email text and channel: the recent
-- contacts customer_events.sql adds to the carried activity rows, which count
-- the contacts dated after their arrival (channel_activity_rows.sql).
--
-- Such a contact is in a file that arrived within `fatigue_days` of the date
-- (its day is at least its date), so the job reads this step over those days
-- only (`window_days: "{fatigue_days}"`, docs/job-file.md): a few weeks of
-- events instead of every day. The filters below leave out every event of an
-- older day, so reading every day gives the same rows.
--
-- A *contact* (docs/rules.md "Engagement, permission and relationship stage"):
-- an outbound `sent` or `service_contact`, or any inbound event; events are
-- the deduplicated ones (the first copy of an event_id wins) and their dates
-- are UTC dates.
SELECT
    source_system,
    source_customer_id,
    email,
    channel,
    COUNT(*) AS recent_contacts
FROM (
    SELECT
        source_system,
        source_customer_id,
        email,
        channel,
        direction,
        event_type,
        CAST(event_ts AS DATE) AS event_date,
        -- The partition day of the raw file (`<extract>/dt=YYYY-MM-DD/<file>`).
        CAST(substr(_file, strpos(_file, 'dt=') + 3, 10) AS DATE) AS arrived_on
    FROM communications_deduped
) e
WHERE ((direction = 'outbound' AND event_type IN ('sent', 'service_contact'))
        OR direction = 'inbound')
    AND event_date <= arrived_on
    AND event_date <= DATE '{date}'
    AND CAST(DATE '{date}' - event_date AS INT) <= {fatigue_days}
GROUP BY source_system, source_customer_id, email, channel
