-- The golden record: one profile per customer_key (DATA_CONTRACT.md, "Golden record").
--
-- For each attribute: the most recently updated non-empty value over the customer's
-- current profile rows (one per source record, see profiles_current.sql); ties go to
-- the job's `source_priority` (comma-separated, first wins; systems not listed come
-- last), then to the smaller source id so the result never depends on plan order.
-- An empty field never clears a value: empty values are NULL and sort last.
-- Email and phone count only when they are identifiers of this customer (in the
-- identity map: valid, normalised, not over max_records_per_identifier), so junk or
-- a till's placeholder address never wins.
-- Consent: email_opt_in / sms_opt_in are the golden values (NULL: never stated, which
-- the contract treats as not consented); *_opt_in_updated_at is the updated_at of the
-- profile row that gave them, which the permission rules compare events against.
-- Speed: every attribute shares one ordering (IGNORE NULLS skips the empty values),
-- numbered once by `pick`; the rows arrive sorted by customer and pick, so each
-- customer's first values are taken as they stream past instead of comparing
-- every row's ordering once per attribute in a hash table of all customers.
WITH profile_rows AS (
    SELECT
        m.customer_key,
        p.source_system,
        p.source_customer_id,
        p.updated_at,
        COALESCE(
            CAST(array_position(string_to_array(replace('{source_priority}', ' ', ''), ','), p.source_system) AS BIGINT),
            2147483647
        ) AS priority,
        em.id_value AS email,
        ph.id_value AS phone,
        NULLIF(p.first_name, '') AS first_name,
        NULLIF(p.last_name, '') AS last_name,
        p.birth_date,
        NULLIF(p.city, '') AS city,
        NULLIF(p.postal_code, '') AS postal_code,
        NULLIF(p.country_code, '') AS country_code,
        NULLIF(p.account_type, '') AS account_type,
        p.signup_ts,
        p.email_opt_in,
        p.sms_opt_in
    FROM profiles_current p
    JOIN identity_map m
        ON m.id_type = 'source' AND m.id_value = p.source_system || ':' || p.source_customer_id
    LEFT JOIN identity_map em
        ON em.id_type = 'email' AND em.id_value = normalize_email(p.email)
        AND em.customer_key = m.customer_key
    LEFT JOIN identity_map ph
        ON ph.id_type = 'phone' AND ph.id_value = normalize_phone(p.phone, p.country_code)
        AND ph.customer_key = m.customer_key
),
-- The tie-break order as one number per row: 1 = the customer's most recent row.
ranked AS (
    SELECT
        *,
        ROW_NUMBER() OVER (
            PARTITION BY customer_key
            ORDER BY updated_at DESC, priority, source_system, source_customer_id
        ) AS pick
    FROM profile_rows
)
SELECT
    customer_key,
    first_value(email IGNORE NULLS ORDER BY pick) AS email,
    first_value(phone IGNORE NULLS ORDER BY pick) AS phone,
    first_value(first_name IGNORE NULLS ORDER BY pick) AS first_name,
    first_value(last_name IGNORE NULLS ORDER BY pick) AS last_name,
    first_value(birth_date IGNORE NULLS ORDER BY pick) AS birth_date,
    first_value(city IGNORE NULLS ORDER BY pick) AS city,
    first_value(postal_code IGNORE NULLS ORDER BY pick) AS postal_code,
    first_value(country_code IGNORE NULLS ORDER BY pick) AS country_code,
    first_value(account_type IGNORE NULLS ORDER BY pick) AS account_type,
    first_value(signup_ts IGNORE NULLS ORDER BY pick) AS signup_ts,
    first_value(email_opt_in IGNORE NULLS ORDER BY pick) AS email_opt_in,
    first_value(CASE WHEN email_opt_in IS NOT NULL THEN updated_at END IGNORE NULLS ORDER BY pick) AS email_opt_in_updated_at,
    first_value(sms_opt_in IGNORE NULLS ORDER BY pick) AS sms_opt_in,
    first_value(CASE WHEN sms_opt_in IS NOT NULL THEN updated_at END IGNORE NULLS ORDER BY pick) AS sms_opt_in_updated_at,
    MAX(updated_at) AS profile_updated_at,
    COUNT(*) AS profile_records
FROM ranked
GROUP BY customer_key
