-- Per UTC date: daily active users, plays, plays per user, sessions started and their average
-- duration, skips and skip rate.
with activity as (

    select * from {{ ref('fct_user_activity') }}

),

sessions as (

    select * from {{ ref('fct_listening_sessions') }}

),

events_by_day as (

    select
        date,
        count(distinct user_id) as daily_active_users,
        count_if(action = 'play') as plays,
        count_if(action = 'skip') as skips,
        count(*) as events
    from activity
    group by date

),

sessions_by_day as (

    select
        session_date as date,
        count(*) as sessions,
        avg(session_duration_s) as avg_session_duration_s
    from sessions
    group by session_date

)

select
    events_by_day.date,
    events_by_day.daily_active_users,
    events_by_day.plays,
    {{ safe_divide('events_by_day.plays', 'events_by_day.daily_active_users') }} as plays_per_user,
    coalesce(sessions_by_day.sessions, 0) as sessions,
    sessions_by_day.avg_session_duration_s,
    events_by_day.skips,
    {{ safe_divide('events_by_day.skips', 'events_by_day.plays') }} as skip_rate,
    events_by_day.events
from events_by_day
left join sessions_by_day on events_by_day.date = sessions_by_day.date
