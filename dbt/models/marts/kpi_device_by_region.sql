-- Per region and device type: distinct users, plays, and the device's share of the region's plays.
with activity as (

    select * from {{ ref('fct_user_activity') }}

),

devices as (

    select
        region,
        device_type,
        count(distinct user_id) as users,
        count_if(action = 'play') as plays
    from activity
    group by region, device_type

)

select
    region,
    device_type,
    users,
    plays,
    {{ safe_divide('plays', 'sum(plays) over (partition by region)') }} as share_of_region_plays
from devices
