-- kpi_rejected_events counts exactly the quarantined records and the validation failures.
with counted as (
    select rejected_by, sum(rejected_records) as n from {{ ref('kpi_rejected_events') }} group by rejected_by
),
expected as (
    select 'drain' as rejected_by, count(*) as n from {{ ref('stg_spotify__quarantined_records') }}
    union all
    select 'silver_validation', count(*) from {{ ref('int_event_deliveries__ranked_validated') }}
    where delivery_number = 1 and rejection_reason is not null
)
select expected.rejected_by, expected.n as expected, coalesce(counted.n, 0) as counted
from expected
left join counted on expected.rejected_by = counted.rejected_by
where expected.n <> coalesce(counted.n, 0)
