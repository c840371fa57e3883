-- Contact activity attributed to customers (customer_key from the identity map),
-- as of the logical date: channel_activity.sql sums it per customer and channel.
-- Two kinds of rows, attributed alike:
-- * the carried activity rows (channel_activity_rows.sql: counts, latest times
--   and cost per record, email and channel), less those dated after the logical
--   date; their recent_contacts are the contacts of the rows dated after the day
--   their file arrived and within `fatigue_days` of the logical date (days since
--   <= fatigue_days, the one "within N days" convention of the job);
-- * the other recent contacts (recent_contacts.sql: dated within `fatigue_days`
--   and not after their file's day, so found in the last `fatigue_days` days of
--   events alone), in recent_contacts, the row's only measure: that count moves
--   with the date, so it comes from the events each run.
--
-- Attribution mirrors identity_links.sql: a row with a source id
-- (source_system and source_customer_id) belongs to that record's customer, one
-- without to the customer of its email. A row whose email is not an identifier
-- (invalid, or a placeholder over max_records_per_identifier) belongs to
-- nobody and counts in no customer's figures.
WITH activity AS (
    SELECT
        source_system, source_customer_id, email_id, channel,
        sent, delivered, opened, clicked, bounced, unsubscribed, complained,
        replied, service_contacts, reviews, referrals,
        last_engagement_ts, last_contact_ts, last_opt_out_ts, cost,
        CASE
            WHEN CAST(DATE '{date}' - dated_after_arrival AS INT) <= {fatigue_days}
                THEN contacts
            ELSE 0
        END AS recent_contacts
    FROM channel_activity_rows
    WHERE dated_after_arrival IS NULL OR dated_after_arrival <= DATE '{date}'
    UNION ALL
    SELECT
        source_system, source_customer_id, normalize_email(email), channel,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        NULL, NULL, NULL, NULL,
        recent_contacts
    FROM recent_contacts
)
SELECT a.*, COALESCE(s.customer_key, m.customer_key) AS customer_key
FROM activity a
LEFT JOIN identity_map s
    ON s.id_type = 'source'
    AND s.id_value = a.source_system || ':' || a.source_customer_id
LEFT JOIN identity_map m
    ON m.id_type = 'email'
    AND (a.source_system IS NULL OR a.source_customer_id IS NULL)
    AND m.id_value = a.email_id
WHERE COALESCE(s.customer_key, m.customer_key) IS NOT NULL
