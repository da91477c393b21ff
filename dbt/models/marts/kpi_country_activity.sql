-- Per country: distinct active users, plays, sessions and their average duration.
with activity as (

    select * from {{ ref('fct_user_activity') }}

),

sessions as (

    select * from {{ ref('fct_listening_sessions') }}

),

events_by_country as (

    select
        country_code,
        max(region) as region,
        count(distinct user_id) as active_users,
        count_if(action = 'play') as plays,
        count(*) as events
    from activity
    group by country_code

),

sessions_by_country as (

    select
        country_code,
        count(*) as sessions,
        avg(session_duration_s) as avg_session_duration_s
    from sessions
    group by country_code

)

select
    events_by_country.country_code,
    events_by_country.region,
    events_by_country.active_users,
    events_by_country.plays,
    coalesce(sessions_by_country.sessions, 0) as sessions,
    sessions_by_country.avg_session_duration_s,
    events_by_country.events
from events_by_country
left join sessions_by_country on events_by_country.country_code = sessions_by_country.country_code
