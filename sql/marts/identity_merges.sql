-- Customer keys retired today because their customer merged into another one
-- (src/steps/identity/keys.rs, rule 3): merged_key -> surviving_key, merged_on = the
-- logical date. A customer_key found in an older snapshot and not today is in here
-- unless its identifiers are gone altogether.
-- A merge naming an erased customer's key is left out (DATA_CONTRACT.md, Erasure).
-- NOT EXISTS rather than NOT IN, as identity_map.sql: a NULL key among the erased
-- customers would make NOT IN leave out every merge.
SELECT m.merged_key, m.surviving_key, m.merged_on
FROM identity_graph_merges m
WHERE NOT EXISTS (SELECT 1 FROM erased_customers e WHERE e.customer_key = m.surviving_key)
  AND NOT EXISTS (SELECT 1 FROM erased_customers e WHERE e.customer_key = m.merged_key)
