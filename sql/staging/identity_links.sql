-- Identity links: which record carries which identifier, as of the logical date.
-- Input of the `stitch_identities` step (src/steps/identity/).
--
-- DATA_CONTRACT.md, Identifiers: a profile row links its source id, email and phone;
-- a transaction or event links its source id and email. Every accepted row counts
-- (older profile versions too: an address someone used is still theirs), not only
-- the current one; rows dated after the logical date are not known yet.
--
-- record_type/record_id name the record: `source` + `crm:C000123` for anything with a
-- source id (the record *is* that identifier), `order` + transaction_id for a guest
-- order, `event` + event_id for an event without source id. id_type/id_value is a
-- valid identifier (normalised email, E.164 phone) or NULL: a record
-- with no identifier is kept so the step can count it as unattributed.
-- seen_on is the UTC date of the row (updated_at, order_ts, event_ts); the step keeps
-- the earliest as the identifier's first_seen.
--
-- Rows repeat (every order line and event of a record links its identifiers
-- again): transactions and events are first reduced to one row per (source id or
-- guest record, raw email) with the earliest date, a compact aggregation (about one
-- group per customer and address) that cuts tens of millions of rows to a few
-- million before the normalisers and the step's interning see them. The step
-- still keeps each distinct link once and the earliest seen_on per identifier.
--
-- Each reduced row yields one link per identifier it carries and no more: every
-- reference to a CTE re-runs its aggregation (DataFusion inlines CTEs), and a row
-- already creates its record's node with its date, so a source id's link to
-- itself is implied (an email or phone that is no identifier leaves a row with a
-- NULL id, which the step counts only as the record).
--
-- Speed: the versions of a profile mostly repeat the same email and phone text, so
-- profile rows are first reduced to one row per (source id, email, phone, country)
-- with the earliest date; the normalisers (normalize_phone is the costly one) then
-- run once per distinct text per record rather than once per version. The
-- earliest seen_on is the same either way.
WITH profile_rows AS (
    SELECT
        source_system || ':' || source_customer_id AS source_id,
        email,
        phone,
        country_code,
        MIN(CAST(updated_at AS DATE)) AS seen_on
    FROM profiles
    WHERE CAST(updated_at AS DATE) <= DATE '{date}'
    GROUP BY source_system || ':' || source_customer_id, email, phone, country_code
),
transaction_rows AS (
    SELECT
        CASE WHEN source_customer_id IS NOT NULL THEN source_system || ':' || source_customer_id END AS source_id,
        guest_order AS transaction_id,
        email,
        seen_on
    FROM (
        SELECT
            source_system,
            source_customer_id,
            CASE WHEN source_customer_id IS NULL THEN transaction_id END AS guest_order,
            email,
            MIN(CAST(order_ts AS DATE)) AS seen_on
        FROM transactions
        WHERE CAST(order_ts AS DATE) <= DATE '{date}'
        GROUP BY 1, 2, 3, 4
    ) t
),
event_rows AS (
    SELECT
        CASE
            WHEN source_system IS NOT NULL AND source_customer_id IS NOT NULL
            THEN source_system || ':' || source_customer_id
        END AS source_id,
        guest_event AS event_id,
        email,
        seen_on
    FROM (
        SELECT
            source_system,
            source_customer_id,
            CASE WHEN source_system IS NULL OR source_customer_id IS NULL THEN event_id END AS guest_event,
            email,
            MIN(CAST(event_ts AS DATE)) AS seen_on
        FROM communications
        WHERE CAST(event_ts AS DATE) <= DATE '{date}'
        GROUP BY 1, 2, 3, 4
    ) e
),
links AS (
    SELECT 'source' AS record_type, source_id AS record_id, 'email' AS id_type, normalize_email(email) AS id_value, seen_on
    FROM profile_rows
    UNION ALL
    SELECT 'source', source_id, 'phone', normalize_phone(phone, country_code), seen_on
    FROM profile_rows
    UNION ALL
    SELECT
        CASE WHEN source_id IS NOT NULL THEN 'source' ELSE 'order' END,
        COALESCE(source_id, transaction_id),
        'email',
        normalize_email(email),
        seen_on
    FROM transaction_rows
    UNION ALL
    SELECT
        CASE WHEN source_id IS NOT NULL THEN 'source' ELSE 'event' END,
        COALESCE(source_id, event_id),
        'email',
        normalize_email(email),
        seen_on
    FROM event_rows
)
SELECT
    record_type,
    record_id,
    CASE WHEN id_value IS NOT NULL THEN id_type END AS id_type,
    id_value,
    seen_on
FROM links
