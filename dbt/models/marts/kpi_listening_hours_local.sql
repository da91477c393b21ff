-- Per IANA time zone and local hour of day (0-23, the listener's wall clock with the zone's
-- daylight-saving rules): plays and distinct active users.
with activity as (

    select * from {{ ref('fct_user_activity') }}

)

select
    timezone,
    local_hour,
    count_if(action = 'play') as plays,
    count(distinct user_id) as active_users,
    count(*) as events
from activity
group by timezone, local_hour
