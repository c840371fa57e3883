-- The current profile row of every source record, as of the logical date.
--
-- DATA_CONTRACT.md, Duplicates: identical re-sent rows collapse; per
-- (source_system, source_customer_id) the row with the newest updated_at is
-- current, ties go to the later file (files sort by dt, then name, which is the
-- order of `_file`), and within one file to the later line.
-- Rows updated after the logical date are not yet known on that date.
SELECT *
FROM (
    SELECT
        p.*,
        ROW_NUMBER() OVER (
            PARTITION BY source_system, source_customer_id
            ORDER BY updated_at DESC, _file DESC, _line DESC
        ) AS version_rank
    FROM profiles p
    WHERE CAST(updated_at AS DATE) <= DATE '{date}'
) ranked
WHERE version_rank = 1
