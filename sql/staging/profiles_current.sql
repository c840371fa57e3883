-- The current profile row of every source record, as of the logical date.
--
-- DATA_CONTRACT.md, Duplicates: identical re-sent rows collapse; per
-- (source_system, source_customer_id) the row with the newest updated_at is
-- current, ties go to the later file (files sort by dt, then name, which is the
-- order of `_file`), and within one file to the later line. Rows updated after
-- the logical date are not yet known on that date, so they compete with
-- nothing: profiles_deduped holds the winners among the rest and each of them
-- (src/job/dedup.rs), and the date filter leaves the winners.
SELECT *
FROM profiles_deduped
WHERE CAST(updated_at AS DATE) <= DATE '{date}'
