with events as (

    select * from {{ ref('stg_spotify__events') }}

),

song_days as (

    select
        event_date,
        song_id,
        max(song_name) as song_name,
        max(artist_id) as artist_id,
        max(artist_name) as artist_name,
        sum(case when event_type = 'play' then 1 else 0 end) as plays,
        sum(case when event_type = 'skip' then 1 else 0 end) as skips,
        count(distinct user_id) as listeners
    from events
    group by event_date, song_id

)

select
    *,
    case when plays > 0 then cast(skips as double) / plays end as skip_rate
from song_days
