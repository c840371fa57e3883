-- The rows identity links are made of, reduced over every cached day and carried
-- from run to run (`incremental:` in the job; README "Nightly loads"): each night
-- folds in only the new days. identity_links.sql turns them into links as of
-- the logical date.
--
-- DATA_CONTRACT.md, Identifiers: a profile row links its source id, email and
-- phone; a transaction or event links its source id and email. Every accepted
-- row counts (older profile versions too: an address someone used is still
-- theirs), not only the current one.
--
-- One row per record and raw identifier text, with the earliest date it was
-- seen on (seen_on): every order line and event of a record repeats its
-- identifiers, and the versions of a profile mostly repeat the same email and
-- phone text, so this cuts tens of millions of rows to a few million, and the
-- normalisers (normalize_phone is the costly one) run once per distinct text
-- per record, once, when the row is first seen.
--
-- What makes it incremental (docs/job-file.md, `incremental`):
-- * no logical date in it: a row dated after the logical date is kept here with
--   its date and left out by identity_links.sql (the earliest date of a group is
--   after the logical date exactly when all its rows are);
-- * MIN(seen_on) merges across days; every other column is a group key, so the
--   reduction of two sets of days merged on them equals the reduction of all;
-- * the raw identifier columns (source_system, source_customer_id, email,
--   phone) are group keys, so an erased person's rows are exactly the rows whose
--   identifiers carry an erased one (docs/rules.md "Erasure").
--
-- record_kind says what the record is: `profile` (a source record's version),
-- `order` or `event` (guest_id is the transaction_id or event_id when the row
-- has no source id).
SELECT
    'profile' AS record_kind,
    source_system,
    source_customer_id,
    CAST(NULL AS VARCHAR) AS guest_id,
    email,
    phone,
    country_code,
    normalize_email(email) AS email_id,
    normalize_phone(phone, country_code) AS phone_id,
    seen_on
FROM (
    SELECT
        source_system,
        source_customer_id,
        email,
        phone,
        country_code,
        MIN(CAST(updated_at AS DATE)) AS seen_on
    FROM profiles
    GROUP BY source_system, source_customer_id, email, phone, country_code
) p
UNION ALL
SELECT
    'order',
    source_system,
    source_customer_id,
    guest_order,
    email,
    CAST(NULL AS VARCHAR),
    CAST(NULL AS VARCHAR),
    normalize_email(email),
    CAST(NULL AS VARCHAR),
    seen_on
FROM (
    SELECT
        source_system,
        source_customer_id,
        CASE WHEN source_customer_id IS NULL THEN transaction_id END AS guest_order,
        email,
        MIN(CAST(order_ts AS DATE)) AS seen_on
    FROM transactions
    GROUP BY 1, 2, 3, 4
) t
UNION ALL
SELECT
    'event',
    source_system,
    source_customer_id,
    guest_event,
    email,
    CAST(NULL AS VARCHAR),
    CAST(NULL AS VARCHAR),
    normalize_email(email),
    CAST(NULL AS VARCHAR),
    seen_on
FROM (
    SELECT
        source_system,
        source_customer_id,
        CASE WHEN source_system IS NULL OR source_customer_id IS NULL THEN event_id END AS guest_event,
        email,
        MIN(CAST(event_ts AS DATE)) AS seen_on
    FROM communications
    GROUP BY 1, 2, 3, 4
) e
