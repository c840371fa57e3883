-- Identity links: which record carries which identifier, as of the logical date.
-- Input of the `stitch_identities` step (src/steps/identity/), from the reduced
-- rows of identity_link_rows.sql (which says what counts as a link and why).
--
-- record_type/record_id name the record: `source` + `crm:C000123` for anything with a
-- source id (the record *is* that identifier), `order` + transaction_id for a guest
-- order, `event` + event_id for an event without source id. id_type/id_value is a
-- valid identifier (normalised email, E.164 phone) or NULL: a record
-- with no identifier is kept so the step can count it as unattributed.
-- seen_on is the UTC date of the row (updated_at, order_ts, event_ts); the step keeps
-- the earliest as the identifier's first_seen. Rows dated after the logical date
-- are not known yet.
--
-- Each reduced row yields one link per identifier it carries and no more (a
-- profile row: its email and its phone), and already creates its record's node
-- with its date, so a source id's link to itself is implied (an email or phone
-- that is no identifier leaves a row with a NULL id, which the step counts only
-- as the record). Rows repeat across records' texts; the step keeps each
-- distinct link once and the earliest seen_on per identifier.
--
-- The carried rows are read once: a CTE named twice would be planned twice (DataFusion
-- inlines CTEs), each time merging the carried rows with the new days.
SELECT
    record_type,
    record_id,
    CASE WHEN id_value IS NOT NULL THEN id_type END AS id_type,
    id_value,
    seen_on
FROM (
    SELECT
        record_type,
        record_id,
        id_type,
        CASE WHEN id_type = 'email' THEN email_id ELSE phone_id END AS id_value,
        seen_on
    FROM (
        SELECT
            CASE WHEN source_id IS NOT NULL THEN 'source' ELSE record_kind END AS record_type,
            COALESCE(source_id, guest_id) AS record_id,
            unnest(
                CASE WHEN record_kind = 'profile'
                THEN make_array('email', 'phone') ELSE make_array('email') END
            ) AS id_type,
            email_id,
            phone_id,
            seen_on
        FROM (
            SELECT
                -- A guest order has no source_customer_id; an event without source
                -- id may lack either part.
                CASE
                    WHEN source_system IS NOT NULL AND source_customer_id IS NOT NULL
                    THEN source_system || ':' || source_customer_id
                END AS source_id,
                record_kind,
                guest_id,
                email_id,
                phone_id,
                seen_on
            FROM identity_link_rows
            WHERE seen_on <= DATE '{date}'
        ) known
    ) links
) typed
