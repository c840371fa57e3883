-- The contact events' activity, reduced per record, email text and channel over
-- every cached day and carried from run to run (`incremental:` in the job;
-- README "Nightly loads"): each night folds in only the new days' events.
-- customer_events.sql attributes these rows to customers as of the logical
-- date, and channel_activity.sql sums them (it states what each count means).
--
-- What makes it incremental (docs/job-file.md, `incremental`):
-- * it reads the deduplicated events (communications_deduped: the first copy
--   of an event_id wins, so a copy in a later day never displaces a carried
--   one), so each event is counted once, in the day of its winning copy;
-- * every count and the cost merge by sum, every latest time by max; every
--   other column is a group key;
-- * no logical date in it. An event counts as of its UTC date, and an event
--   can be dated after the day its file arrived (the `dt=` of its raw file,
--   DATA_CONTRACT.md "Reading"), so such an event's rows keep their date in
--   dated_after_arrival (NULL for every other event, whose date is at most
--   its day's and so at most any logical date that reads the day); the
--   readers leave out the rows dated after the logical date;
-- * the raw identifier columns (source_system, source_customer_id, email) are
--   group keys, so an erased person's rows are exactly the rows whose
--   identifiers carry an erased one (docs/rules.md "Erasure").
--
-- email_id (the normalised email, which attributes an event without a source
-- id) depends on email alone, so it adds no group and is normalised once.
-- A *contact* (docs/rules.md "Engagement, permission and relationship
-- stage"): an outbound `sent` or `service_contact`, or any inbound event;
-- recent_contacts.sql counts the recent ones by the same rule.
SELECT
    source_system,
    source_customer_id,
    email,
    normalize_email(email) AS email_id,
    channel,
    CASE WHEN event_date > arrived_on THEN event_date END AS dated_after_arrival,
    COUNT(*) FILTER (WHERE event_type = 'sent') AS sent,
    COUNT(*) FILTER (WHERE event_type = 'delivered') AS delivered,
    COUNT(*) FILTER (WHERE event_type = 'opened') AS opened,
    COUNT(*) FILTER (WHERE event_type = 'clicked') AS clicked,
    COUNT(*) FILTER (WHERE event_type = 'bounced') AS bounced,
    COUNT(*) FILTER (WHERE event_type = 'unsubscribed') AS unsubscribed,
    COUNT(*) FILTER (WHERE event_type = 'complained') AS complained,
    COUNT(*) FILTER (WHERE event_type = 'replied') AS replied,
    COUNT(*) FILTER (WHERE event_type = 'service_contact') AS service_contacts,
    COUNT(*) FILTER (WHERE event_type = 'review') AS reviews,
    COUNT(*) FILTER (WHERE event_type = 'referral') AS referrals,
    MAX(event_ts) FILTER (WHERE event_type IN ('opened', 'clicked', 'replied')) AS last_engagement_ts,
    MAX(event_ts) FILTER (
        WHERE (direction = 'outbound' AND event_type IN ('sent', 'service_contact'))
            OR direction = 'inbound'
    ) AS last_contact_ts,
    MAX(event_ts) FILTER (WHERE event_type IN ('unsubscribed', 'complained')) AS last_opt_out_ts,
    -- Contacts, by the rule above: customer_events.sql counts those of the rows
    -- dated after arrival among the recent ones (recent_contacts.sql the rest).
    COUNT(*) FILTER (
        WHERE (direction = 'outbound' AND event_type IN ('sent', 'service_contact'))
            OR direction = 'inbound'
    ) AS contacts,
    SUM(cost) AS cost
FROM (
    SELECT
        source_system,
        source_customer_id,
        email,
        channel,
        direction,
        event_type,
        event_ts,
        CAST(event_ts AS DATE) AS event_date,
        -- The partition day of the raw file (`<extract>/dt=YYYY-MM-DD/<file>`).
        CAST(substr(_file, strpos(_file, 'dt=') + 3, 10) AS DATE) AS arrived_on,
        cost
    FROM communications_deduped
) e
GROUP BY 1, 2, 3, 4, 5, 6
