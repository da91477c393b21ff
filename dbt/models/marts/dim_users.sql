-- One row per user, current version: the open row of the users snapshot (SCD2).
with snapshot as (

    select * from {{ ref('snap_users') }}

)

select
    user_id,
    country_code,
    region,
    city,
    timezone,
    utc_offset_minutes,
    primary_device,
    subscription,
    subscription_since,
    dbt_valid_from as version_valid_from
from snapshot
where dbt_valid_to is null
