-- One row per listening session, with its region.
with sessions as (

    select * from {{ ref('int_sessions') }}

),

regions as (

    select * from {{ ref('country_regions') }}

)

select
    sessions.session_id,
    sessions.user_id,
    sessions.session_date,
    sessions.started_at,
    sessions.ended_at,
    sessions.session_duration_s,
    sessions.events,
    sessions.plays,
    sessions.skips,
    sessions.completes,
    sessions.distinct_songs,
    sessions.device_type,
    sessions.country_code,
    coalesce(regions.region, 'Other') as region,
    sessions.timezone
from sessions
left join regions on sessions.country_code = regions.country_code
