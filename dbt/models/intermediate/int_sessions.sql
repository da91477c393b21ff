-- Listening sessions: the client's session_id groups a user's events from the first play to the
-- last event; duration is first event to last event. Device and place are the first event's.
{{ config(materialized='table') }}

with events as (

    select * from {{ ref('stg_spotify__events') }}

),

sessions as (

    select
        session_id,
        user_id,
        min(event_at) as started_at,
        max(event_at) as ended_at,
        count(*) as events,
        count_if(event_type = 'play') as plays,
        count_if(event_type = 'skip') as skips,
        count_if(event_type = 'complete') as completes,
        count(distinct song_id) as distinct_songs,
        min_by(device_type, event_at) as device_type,
        min_by(country_code, event_at) as country_code,
        min_by(timezone, event_at) as timezone
    from events
    group by session_id, user_id

),

final as (

    select
        session_id,
        user_id,
        cast(started_at as date) as session_date,
        started_at,
        ended_at,
        {{ seconds_between('started_at', 'ended_at') }} as session_duration_s,
        events,
        plays,
        skips,
        completes,
        distinct_songs,
        device_type,
        country_code,
        timezone
    from sessions

)

select * from final
