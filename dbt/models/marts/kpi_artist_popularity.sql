-- Per artist (all time): plays, distinct listeners, skips, skip rate, and the popularity rank
-- (1 = most plays; ties broken by listeners, then artist_id).
with activity as (

    select * from {{ ref('fct_user_activity') }}

),

artists as (

    select
        artist_id,
        max(artist_name) as artist_name,
        count_if(action = 'play') as plays,
        count(distinct case when action = 'play' then user_id end) as listeners,
        count_if(action = 'skip') as skips,
        count(distinct song_id) as songs_played
    from activity
    group by artist_id

)

select
    artist_id,
    artist_name,
    plays,
    listeners,
    skips,
    {{ safe_divide('skips', 'plays') }} as skip_rate,
    songs_played,
    row_number() over (order by plays desc, listeners desc, artist_id) as popularity_rank
from artists
