-- Plays, skips, skip rate and listeners per song per UTC day.
with activity as (

    select * from {{ ref('fct_user_activity') }}

),

song_days as (

    select
        date as event_date,
        song_id,
        max(song_name) as song_name,
        max(artist_id) as artist_id,
        max(artist_name) as artist_name,
        count_if(action = 'play') as plays,
        count_if(action = 'skip') as skips,
        count(distinct user_id) as listeners
    from activity
    group by date, song_id

)

select
    *,
    {{ safe_divide('skips', 'plays') }} as skip_rate
from song_days
