-- Rejected records counted by the layer that rejected them and the reason.
with rejected as (

    select * from {{ ref('int_events_rejected') }}

)

select
    rejected_by,
    reason,
    count(*) as rejected_records
from rejected
group by rejected_by, reason
