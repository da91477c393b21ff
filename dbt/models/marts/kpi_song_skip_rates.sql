-- Per song (all time): plays, skips, skip rate (skips / plays), distinct listeners (users who
-- played it).
with activity as (

    select * from {{ ref('fct_user_activity') }}

),

songs as (

    select
        song_id,
        max(song_name) as song_name,
        max(artist_id) as artist_id,
        max(artist_name) as artist_name,
        max(genre) as genre,
        count_if(action = 'play') as plays,
        count_if(action = 'skip') as skips,
        count_if(action = 'complete') as completes,
        count(distinct case when action = 'play' then user_id end) as listeners
    from activity
    group by song_id

)

select
    song_id,
    song_name,
    artist_id,
    artist_name,
    genre,
    plays,
    skips,
    {{ safe_divide('skips', 'plays') }} as skip_rate,
    listeners,
    completes
from songs
