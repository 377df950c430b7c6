"""RFMLT features of one bank's canonical CSV tables computed by DuckDB, the
reference the participant's data plane is measured against
(bench/data-plane.sh). Prints wall time and checksums that must match
`fedseg-participant features`. `features_sql` is also the per-customer
reference of bench/privacy-utility.sh.

Usage: python3 bench/rfmlt_duckdb.py DIR AS_OF [THREADS]
"""
import sys
import time

import duckdb


def features_sql(directory, as_of):
    """One row per consenting customer: customer_id, r, f, m, l, t, converted."""
    return f"""
WITH
c AS (SELECT * FROM read_csv('{directory}/customers.csv', header = true,
        columns = {{'customer_id': 'VARCHAR', 'consent_marketing': 'BOOLEAN',
                   'converted': 'INTEGER', 'since': 'DATE'}})),
t AS (SELECT customer_id, CAST(ts AS DATE) AS d, amount
      FROM read_csv('{directory}/transactions.csv', header = true,
        columns = {{'customer_id': 'VARCHAR', 'ts': 'VARCHAR', 'amount': 'DOUBLE'}})
      WHERE CAST(ts AS DATE) <= DATE '{as_of}'),
i AS (SELECT customer_id, CAST(ts AS DATE) AS d, lower(kind) AS kind
      FROM read_csv('{directory}/interactions.csv', header = true,
        columns = {{'customer_id': 'VARCHAR', 'ts': 'VARCHAR', 'kind': 'VARCHAR'}})
      WHERE CAST(ts AS DATE) <= DATE '{as_of}'),
consenting AS (SELECT * FROM c WHERE consent_marketing),
ta AS (SELECT customer_id, count(*) AS f, sum(amount) AS m, min(d) AS first, max(d) AS last
       FROM t GROUP BY customer_id),
ia AS (SELECT customer_id, count(*) AS t FROM i GROUP BY customer_id),
site AS (SELECT least(
           (SELECT min(d) FROM t SEMI JOIN consenting USING (customer_id)),
           (SELECT min(d) FROM i SEMI JOIN consenting USING (customer_id))) AS start)
SELECT k.customer_id,
       CASE WHEN ta.last IS NOT NULL THEN date_diff('day', ta.last, DATE '{as_of}')
            ELSE date_diff('day', least(coalesce(k.since, site.start), DATE '{as_of}'), DATE '{as_of}')
       END AS r,
       coalesce(ta.f, 0) AS f, coalesce(ta.m, 0) AS m,
       CASE WHEN ta.f >= 2 THEN date_diff('day', ta.first, ta.last) ELSE 0 END AS l,
       coalesce(ia.t, 0) AS t, k.converted
FROM consenting k CROSS JOIN site
LEFT JOIN ta USING (customer_id) LEFT JOIN ia USING (customer_id)
"""


if __name__ == "__main__":
    directory, as_of = sys.argv[1], sys.argv[2]
    threads = int(sys.argv[3]) if len(sys.argv) > 3 else 2
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    query = (f"WITH features AS ({features_sql(directory, as_of)}) "
             "SELECT count(*), sum(r), sum(f), round(sum(m), 2), sum(l), sum(t) FROM features")
    started = time.perf_counter()
    row = con.execute(query).fetchone()
    elapsed = time.perf_counter() - started
    print(f"duckdb {duckdb.__version__}, {threads} threads: {elapsed:.2f} s")
    print("customers, sum R, sum F, sum M, sum L, sum T:", row)
