-- Customer keys retired today because their customer merged into another one
-- (src/steps/identity/keys.rs, rule 3): merged_key -> surviving_key, merged_on = the
-- logical date. A customer_key found in an older snapshot and not today is in here
-- unless its identifiers are gone altogether.
-- A merge naming an erased customer's key is left out (DATA_CONTRACT.md, Erasure).
SELECT merged_key, surviving_key, merged_on
FROM identity_graph_merges
WHERE surviving_key NOT IN (SELECT customer_key FROM erased_customers)
  AND merged_key NOT IN (SELECT customer_key FROM erased_customers)
