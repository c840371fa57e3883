-- Customers erased by this run (DATA_CONTRACT.md, Erasure): every customer_key of
-- the full identity graph that an applicable request's identifier resolves to. The
-- whole customer goes, with every record linked to the requested identifier.
-- A request that resolves to nobody erases nobody (and is no error).
SELECT DISTINCT g.customer_key
FROM erasure_requests r
JOIN identity_graph g ON g.id_type = r.id_type AND g.id_value = r.id_value
