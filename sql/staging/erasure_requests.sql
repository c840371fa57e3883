-- The identifiers named by the erasure requests that apply to this run
-- (DATA_CONTRACT.md, Erasure): a suppression row applies to runs whose logical date
-- is on or after the UTC date of its requested_at, and matches by
-- (source_system, source_customer_id) or by normalised email.
--
-- One row per (id_type, id_value), in the identity map's form (`crm:C000123`, the
-- normalised email). A requested email that is not a valid identifier can match
-- nothing and is left out. Rejects are filtered with these alone when a run fails
-- before its steps finish (src/erasure/), so this view reads the source only.
WITH applicable AS (
    SELECT email, source_system, source_customer_id
    FROM suppressions
    WHERE CAST(requested_at AS DATE) <= DATE '{date}'
)
SELECT DISTINCT id_type, id_value
FROM (
    SELECT 'source' AS id_type, source_system || ':' || source_customer_id AS id_value
    FROM applicable
    WHERE source_system IS NOT NULL AND source_customer_id IS NOT NULL
    UNION ALL
    SELECT 'email', normalize_email(email)
    FROM applicable
    WHERE normalize_email(email) IS NOT NULL
) requested
