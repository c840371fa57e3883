-- The customer_360 job (jobs/customer_360.yaml) hand-written for DuckDB: the comparison
-- pipeline of the scale benchmark (issue 12). benchmarks/duckdb_pipeline.py runs it and
-- fills in {raw}, {out}, {date}, {max_records} and {suppressions} (a glob, or an empty
-- CSV when the optional extract is absent). Rules: DATA_CONTRACT.md. Simplified on
-- purpose: one-hop identity, no stable keys, no CLV / value / permission / segments.
SET TimeZone = 'UTC';  -- dates derived from timestamps are UTC dates

-- Text is trimmed, empty is NULL; the checks are the contract's reject rules.
CREATE MACRO txt(x) AS nullif(trim(x), '');
CREATE MACRO bad_ts(x) AS x IS NOT NULL AND NOT (try_cast(x AS TIMESTAMPTZ) IS NOT NULL
    AND regexp_full_match(x, '\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})'));
CREATE MACRO bad_int(x) AS x IS NOT NULL AND NOT regexp_full_match(x, '[+-]?\d{1,9}');
CREATE MACRO bad_dec(x) AS x IS NOT NULL AND NOT regexp_full_match(x, '[+-]?\d{1,10}(\.\d{1,2})?');
CREATE MACRO bad_bool(x) AS x IS NOT NULL AND x NOT IN ('true', 'false');
CREATE MACRO utc_date(x) AS CAST(try_cast(x AS TIMESTAMPTZ) AS DATE);
CREATE MACRO norm_email(x) AS CASE
    WHEN regexp_full_match(lower(trim(x)), '[a-z0-9._%+-]+@([a-z0-9-]+\.)+[a-z]{2,}') THEN lower(trim(x)) END;
-- Phone: digits made E.164 with the profile's country (national trunk 0 dropped); a
-- plausible length is all that is checked (c360 asks libphonenumber whether it is valid).
CREATE MACRO e164_digits(p, d, cc) AS CASE
    WHEN trim(p) LIKE '+%' THEN d
    WHEN d LIKE '00%' THEN d[3:]
    WHEN upper(cc) IN ('US', 'CA') THEN CASE WHEN length(d) = 10 THEN '1' || d ELSE d END
    WHEN d LIKE '0%' THEN CASE upper(cc) WHEN 'GB' THEN '44' WHEN 'IE' THEN '353' WHEN 'FR' THEN '33'
        WHEN 'DE' THEN '49' WHEN 'SE' THEN '46' WHEN 'NL' THEN '31' WHEN 'ES' THEN '34' END || d[2:] END;
CREATE MACRO norm_phone(p, cc) AS '+' || nullif(regexp_extract(
    e164_digits(p, regexp_replace(p, '\D', '', 'g'), cc), '^[1-9]\d{9,14}$'), '');
-- CSV: the contract's dialect, every column as text, header names; rows the reader
-- cannot split go to the table named `errors` (counted as wrong_column_count).
CREATE MACRO raw_csv(files, errors) AS TABLE
    SELECT * FROM read_csv(files, header = true, all_varchar = true, delim = ',', quote = '"', escape = '"',
        strict_mode = false, store_rejects = true, rejects_table = errors, rejects_scan = errors || '_scans',
        hive_partitioning = true, filename = true);

-- 1. Read and validate: each row gets the first reject reason that applies, or NULL.
-- A record is a source id (`crm:C000123`), or for guest orders / events without an id
-- the normalised email; seen_on is the row's UTC date.
CREATE TABLE fx AS
SELECT upper(txt(currency)) AS currency, CAST(txt(rate_to_reporting) AS DECIMAL(18, 8)) AS rate
FROM read_csv('{raw}/reference/fx_rates.csv', header = true, all_varchar = true)
QUALIFY row_number() OVER (PARTITION BY upper(txt(currency))) = 1;  -- one row per currency expected

CREATE TABLE profiles AS
SELECT *, CASE
        WHEN source_system IS NULL OR source_customer_id IS NULL OR updated_at IS NULL THEN 'missing_required'
        WHEN bad_ts(updated_at) OR bad_ts(signup_ts) THEN 'bad_timestamp'
        WHEN birth_date IS NOT NULL AND (NOT regexp_full_match(birth_date, '\d{4}-\d{2}-\d{2}')
            OR try_cast(birth_date AS DATE) IS NULL) THEN 'bad_date'
        WHEN bad_bool(email_opt_in) OR bad_bool(sms_opt_in) THEN 'bad_bool'
        WHEN account_type NOT IN ('consumer', 'business') THEN 'bad_enum' END AS reason,
    source_system || ':' || source_customer_id AS record_id, norm_email(email) AS email_id,
    norm_phone(phone, country_code) AS phone_id, try_cast(updated_at AS TIMESTAMPTZ) AS updated_ts,
    utc_date(updated_at) AS seen_on
FROM (SELECT filename AS _file, txt(COLUMNS(* EXCLUDE (filename, dt)))
      FROM raw_csv('{raw}/profiles/*/*.csv*', 'profile_errors') WHERE dt <= DATE '{date}');

CREATE TABLE transactions AS
SELECT t.*, CASE
        WHEN transaction_id IS NULL OR line_no IS NULL OR source_system IS NULL OR order_ts IS NULL
            OR quantity IS NULL OR unit_price IS NULL OR t.currency IS NULL OR status IS NULL THEN 'missing_required'
        WHEN bad_ts(order_ts) THEN 'bad_timestamp'
        WHEN bad_int(line_no) OR bad_int(quantity) OR bad_dec(unit_price) OR bad_dec(discount) OR bad_dec(unit_cost)
            THEN 'bad_number'
        WHEN CAST(quantity AS INTEGER) <= 0 THEN 'negative_quantity'
        WHEN CAST(unit_price AS DECIMAL(12, 2)) < 0 OR CAST(discount AS DECIMAL(12, 2)) < 0 THEN 'negative_amount'
        WHEN fx.rate IS NULL THEN 'unknown_currency'
        WHEN status NOT IN ('completed', 'returned', 'cancelled')
            OR channel NOT IN ('online', 'store', 'phone', 'marketplace') THEN 'bad_enum'
        WHEN source_customer_id IS NULL AND email IS NULL THEN 'no_customer_identifier' END AS reason,
    fx.rate, CASE WHEN source_customer_id IS NULL THEN 'email' ELSE 'source' END AS record_type,
    coalesce(source_system || ':' || source_customer_id, norm_email(email)) AS record_id,
    norm_email(email) AS email_id, utc_date(order_ts) AS seen_on
FROM (SELECT filename AS _file, txt(COLUMNS(* EXCLUDE (filename, dt, currency))), upper(txt(currency)) AS currency
      FROM raw_csv('{raw}/transactions/*/*.csv*', 'transaction_errors') WHERE dt <= DATE '{date}') t
LEFT JOIN fx ON fx.currency = t.currency;

-- NDJSON is read as one text column per line, so that broken lines can be counted.
CREATE TABLE communications AS
SELECT *, CASE
        WHEN j IS NULL THEN 'broken_json'
        WHEN event_id IS NULL OR channel IS NULL OR direction IS NULL OR event_type IS NULL OR event_ts IS NULL
            THEN 'missing_required'
        WHEN bad_ts(event_ts) THEN 'bad_timestamp'
        WHEN bad_dec(cost) THEN 'bad_number'
        WHEN channel NOT IN ('email', 'sms', 'push', 'phone', 'chat', 'social', 'direct_mail')
            OR direction NOT IN ('outbound', 'inbound')
            OR event_type NOT IN ('sent', 'delivered', 'opened', 'clicked', 'bounced', 'unsubscribed',
                'complained', 'replied', 'service_contact', 'review', 'referral') THEN 'bad_enum' END AS reason,
    CASE WHEN source_system IS NULL OR source_customer_id IS NULL THEN 'email' ELSE 'source' END AS record_type,
    coalesce(source_system || ':' || source_customer_id, norm_email(email)) AS record_id,
    norm_email(email) AS email_id, try_cast(event_ts AS TIMESTAMPTZ) AS ts, utc_date(event_ts) AS seen_on
FROM (SELECT _file, j, txt(COLUMNS(* EXCLUDE (_file, j)))  -- unknown fields are ignored
      FROM (SELECT _file, j, unnest(from_json(j, '{"event_id": "VARCHAR", "source_system": "VARCHAR",
                "source_customer_id": "VARCHAR", "email": "VARCHAR", "channel": "VARCHAR", "direction": "VARCHAR",
                "event_type": "VARCHAR", "event_ts": "VARCHAR", "cost": "VARCHAR"}'))
            FROM (SELECT filename AS _file, CASE WHEN json_valid(line) AND ltrim(line) LIKE '{%' THEN line END AS j
                  FROM read_csv('{raw}/communications/*/*.ndjson*', columns = {'line': 'VARCHAR'}, header = false,
                      auto_detect = false, delim = E'\x1f', quote = '', escape = '', strict_mode = false,
                      hive_partitioning = true, filename = true)
                  WHERE dt <= DATE '{date}')));

CREATE TABLE suppressions AS
SELECT norm_email(email) AS email_id, txt(source_system) || ':' || txt(source_customer_id) AS source_id
FROM read_csv('{suppressions}', header = true, all_varchar = true, hive_partitioning = false)
WHERE utc_date(txt(requested_at)) <= DATE '{date}';

CREATE TABLE rejects AS
SELECT 'profiles' AS extract, 'wrong_column_count' AS reason, count(DISTINCT (file_id, line)) AS rows
FROM profile_errors HAVING count(*) > 0
UNION ALL SELECT 'transactions', 'wrong_column_count', count(DISTINCT (file_id, line)) FROM transaction_errors
HAVING count(*) > 0
UNION ALL SELECT 'profiles', reason, count(*) FROM profiles WHERE reason IS NOT NULL GROUP BY reason
UNION ALL SELECT 'transactions', reason, count(*) FROM transactions WHERE reason IS NOT NULL GROUP BY reason
UNION ALL SELECT 'communications', reason, count(*) FROM communications WHERE reason IS NOT NULL GROUP BY reason;

-- 2. Dedupe and convert. Order lines: the latest file wins per (transaction_id, line_no,
-- status); amount = (quantity * unit_price - discount) * rate, negative for returns.
CREATE TABLE order_lines AS
SELECT transaction_id, record_type, record_id, seen_on AS order_date, status,
    CASE status WHEN 'returned' THEN -1 ELSE 1 END * rate * (CAST(quantity AS INTEGER)
        * CAST(unit_price AS DECIMAL(12, 2)) - coalesce(CAST(discount AS DECIMAL(12, 2)), 0)) AS amount
FROM transactions
WHERE reason IS NULL AND status <> 'cancelled' AND seen_on <= DATE '{date}'
QUALIFY row_number() OVER (PARTITION BY transaction_id, line_no, status ORDER BY _file DESC) = 1;

-- Events: the first copy of an event_id wins.
CREATE TABLE events AS
SELECT record_type, record_id, channel, direction, event_type, ts, seen_on, CAST(cost AS DECIMAL(18, 2)) AS cost
FROM communications
WHERE reason IS NULL AND seen_on <= DATE '{date}'
QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY _file) = 1;

-- 3. Identity. Every accepted row up to the date links its record to its identifiers
-- (profiles: source id, email, phone; orders and events: source id, email). An email or
-- phone on more than {max_records} source records (a till's placeholder) links nothing.
CREATE TABLE links AS
SELECT record_id, is_source, id_type, id_value, min(seen_on) AS seen_on
FROM (SELECT record_id, true AS is_source, unnest(['source', 'email', 'phone']) AS id_type,
          unnest([record_id, email_id, phone_id]) AS id_value, seen_on
      FROM profiles WHERE reason IS NULL AND seen_on <= DATE '{date}'
      UNION ALL
      SELECT record_id, record_type = 'source', unnest([record_type, 'email']), unnest([record_id, email_id]), seen_on
      FROM transactions WHERE reason IS NULL AND seen_on <= DATE '{date}'
      UNION ALL
      SELECT record_id, record_type = 'source', unnest([record_type, 'email']), unnest([record_id, email_id]), seen_on
      FROM communications WHERE reason IS NULL AND seen_on <= DATE '{date}')
WHERE record_id IS NOT NULL AND id_value IS NOT NULL
GROUP BY ALL;
DELETE FROM links WHERE (id_type, id_value) IN (
    SELECT (id_type, id_value) FROM links WHERE is_source AND id_type <> 'source'
    GROUP BY id_type, id_value HAVING count(*) > {max_records});

-- ONE hop: a record's key is the smallest record sharing an identifier with it (source
-- records before guest emails). Chains a - b - c are not followed to a fixpoint.
CREATE TABLE record_keys AS
SELECT a.record_id, min(CASE WHEN b.is_source THEN '0' ELSE '1' END || b.record_id) AS key_sort
FROM links a JOIN links b USING (id_type, id_value)
GROUP BY a.record_id;

-- One row per identifier; an identifier whose records got different keys takes the smallest.
CREATE TABLE identity_map AS
SELECT l.id_type, l.id_value, substr(min(k.key_sort), 2) AS customer_key, min(l.seen_on) AS first_seen
FROM links l JOIN record_keys k USING (record_id)
GROUP BY l.id_type, l.id_value;

-- Erasure: requests dated up to the run remove the whole customer they resolve to.
DELETE FROM identity_map WHERE customer_key IN (
    SELECT m.customer_key FROM identity_map m JOIN suppressions s
        ON (m.id_type = 'source' AND m.id_value = s.source_id) OR (m.id_type = 'email' AND m.id_value = s.email_id));

-- 4. Per customer. Golden profile: the newest non-empty value over the current profile
-- rows (latest updated_at per source record); email/phone only if they are its identifiers.
CREATE TABLE golden AS
WITH current_profiles AS (
    SELECT * FROM profiles WHERE reason IS NULL AND seen_on <= DATE '{date}'
    QUALIFY row_number() OVER (PARTITION BY record_id ORDER BY updated_ts DESC, _file DESC) = 1
)
SELECT m.customer_key, arg_max(e.id_value, p.updated_ts) AS email, arg_max(ph.id_value, p.updated_ts) AS phone,
    arg_max(p.first_name, p.updated_ts) AS first_name, arg_max(p.last_name, p.updated_ts) AS last_name,
    arg_max(p.city, p.updated_ts) AS city, arg_max(upper(p.country_code), p.updated_ts) AS country_code,
    arg_max(p.account_type, p.updated_ts) AS account_type,
    arg_max(p.email_opt_in = 'true', p.updated_ts) AS email_opt_in,
    arg_max(p.sms_opt_in = 'true', p.updated_ts) AS sms_opt_in, max(p.updated_ts) AS profile_updated_at
FROM current_profiles p
JOIN identity_map m ON m.id_type = 'source' AND m.id_value = p.record_id
LEFT JOIN identity_map e ON e.id_type = 'email' AND e.id_value = p.email_id AND e.customer_key = m.customer_key
LEFT JOIN identity_map ph ON ph.id_type = 'phone' AND ph.id_value = p.phone_id AND ph.customer_key = m.customer_key
GROUP BY m.customer_key;

-- Orders (a guest order belongs to the customer of its email): frequency = orders with a
-- completed line, monetary = completed - returned, rounded to cents at the end.
CREATE TABLE measures AS
WITH lines AS (
    SELECT m.customer_key, l.* FROM order_lines l
    JOIN identity_map m ON m.id_type = l.record_type AND m.id_value = l.record_id
), orders AS (
    SELECT customer_key, count(*) FILTER (WHERE has_completed) AS frequency,
        count(*) FILTER (WHERE has_completed AND net > 0) AS frequency_net, round(sum(net), 2) AS monetary
    FROM (SELECT customer_key, transaction_id, sum(amount) AS net, bool_or(status = 'completed') AS has_completed
          FROM lines GROUP BY ALL)
    GROUP BY customer_key
), purchases AS (
    SELECT customer_key, min(order_date) AS first_purchase_date, max(order_date) AS last_purchase_date,
        count(DISTINCT order_date) AS purchase_days
    FROM lines WHERE status = 'completed' GROUP BY ALL
)
SELECT * FROM orders LEFT JOIN purchases USING (customer_key);

-- RFM quintiles over purchasing customers, 5 = best (most recent, frequent, monetary).
CREATE TABLE rfm AS
SELECT customer_key, ntile(5) OVER (ORDER BY last_purchase_date) AS r_score,
    ntile(5) OVER (ORDER BY frequency) AS f_score, ntile(5) OVER (ORDER BY monetary) AS m_score
FROM measures WHERE frequency > 0;

CREATE TABLE engagement AS
SELECT m.customer_key,
    count(*) FILTER (WHERE channel = 'email' AND event_type = 'sent') AS email_sent,
    count(*) FILTER (WHERE channel = 'email' AND event_type = 'opened') AS email_opened,
    count(*) FILTER (WHERE channel = 'email' AND event_type = 'clicked') AS email_clicked,
    count(*) FILTER (WHERE channel = 'email' AND event_type = 'bounced') AS email_bounced,
    count(*) FILTER (WHERE event_type = 'unsubscribed') AS unsubscribed,
    count(*) FILTER (WHERE channel = 'sms' AND event_type = 'sent') AS sms_sent,
    count(*) FILTER (WHERE event_type IN ('opened', 'clicked', 'replied')) AS engagements,
    count(*) FILTER (WHERE event_type IN ('review', 'referral')) AS reviews_referrals,
    count(*) FILTER (WHERE (direction = 'inbound' OR event_type IN ('sent', 'service_contact'))
        AND DATE '{date}' - seen_on <= 30) AS contacts_last_30d,
    max(ts) FILTER (WHERE event_type IN ('opened', 'clicked', 'replied')) AS last_engagement_ts,
    coalesce(sum(cost), 0) AS contact_cost
FROM events e JOIN identity_map m ON m.id_type = e.record_type AND m.id_value = e.record_id
GROUP BY m.customer_key;

-- 5. Outputs: one row per customer_key of the identity map; Hive-partitioned zstd Parquet.
COPY (
    SELECT c.customer_key, g.* EXCLUDE (customer_key), c.source_records, c.first_seen,
        coalesce(ms.frequency, 0) AS frequency, coalesce(ms.frequency_net, 0) AS frequency_net,
        coalesce(ms.monetary, 0) AS monetary, ms.first_purchase_date, ms.last_purchase_date,
        coalesce(ms.purchase_days, 0) AS purchase_days, DATE '{date}' - ms.last_purchase_date AS recency_days,
        r.r_score, r.f_score, r.m_score,
        coalesce(e.email_sent, 0) AS email_sent, coalesce(e.email_opened, 0) AS email_opened,
        coalesce(e.email_clicked, 0) AS email_clicked, coalesce(e.email_bounced, 0) AS email_bounced,
        coalesce(e.unsubscribed, 0) AS unsubscribed, coalesce(e.sms_sent, 0) AS sms_sent,
        coalesce(e.engagements, 0) AS engagements, coalesce(e.reviews_referrals, 0) AS reviews_referrals,
        coalesce(e.contacts_last_30d, 0) AS contacts_last_30d, e.last_engagement_ts,
        coalesce(e.contact_cost, 0) AS contact_cost, DATE '{date}' AS snapshot_date
    FROM (SELECT customer_key, count(*) FILTER (WHERE id_type = 'source') AS source_records,
              min(first_seen) AS first_seen
          FROM identity_map GROUP BY customer_key) c
    LEFT JOIN golden g USING (customer_key)
    LEFT JOIN measures ms USING (customer_key)
    LEFT JOIN rfm r USING (customer_key)
    LEFT JOIN engagement e USING (customer_key)
    ORDER BY c.customer_key
) TO '{out}/customer_360' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (snapshot_date), OVERWRITE_OR_IGNORE);

COPY (SELECT *, DATE '{date}' AS snapshot_date FROM identity_map ORDER BY id_type, id_value)
TO '{out}/identity_map' (FORMAT parquet, COMPRESSION zstd, PARTITION_BY (snapshot_date), OVERWRITE_OR_IGNORE);
