-- Per new-release song of the catalog released by the as-of date: plays in the last 7 days and in
-- the 7 days before, and a trending score, the smoothed growth
--     trending_score = (plays_last_7d - plays_prev_7d) / (plays_prev_7d + trending_prior_plays)
-- (trending_prior_plays, default 10, keeps a song going from 0 to 2 plays from outranking one
-- going from 100 to 300). as_of: var('as_of'), default the latest event in fct_user_activity;
-- last 7 days = (as_of - 7d, as_of], previous = (as_of - 14d, as_of - 7d].
with activity as (

    select * from {{ ref('fct_user_activity') }}

),

songs as (

    select * from {{ ref('dim_songs') }}

),

as_of as (

    select {{ as_of_timestamp(ref('fct_user_activity'), 'event_at') }} as as_of_at

),

new_releases as (

    select songs.*
    from songs
    cross join as_of
    where songs.is_new_release
      and songs.release_date <= cast(as_of.as_of_at as date)

),

plays as (

    select
        activity.song_id,
        count_if(activity.event_at > {{ add_days('as_of.as_of_at', -7) }}
                  and activity.event_at <= as_of.as_of_at) as plays_last_7d,
        count_if(activity.event_at > {{ add_days('as_of.as_of_at', -14) }}
                  and activity.event_at <= {{ add_days('as_of.as_of_at', -7) }}) as plays_prev_7d
    from activity
    cross join as_of
    where activity.action = 'play'
    group by activity.song_id

),

scored as (

    select
        new_releases.song_id,
        new_releases.song_name,
        new_releases.artist_id,
        new_releases.artist_name,
        new_releases.release_date,
        coalesce(plays.plays_last_7d, 0) as plays_last_7d,
        coalesce(plays.plays_prev_7d, 0) as plays_prev_7d,
        as_of.as_of_at
    from new_releases
    cross join as_of
    left join plays on new_releases.song_id = plays.song_id

),

final as (

    select
        song_id,
        song_name,
        artist_id,
        artist_name,
        release_date,
        plays_last_7d,
        plays_prev_7d,
        cast(plays_last_7d - plays_prev_7d as double)
            / (plays_prev_7d + {{ var('trending_prior_plays') }}) as trending_score,
        as_of_at
    from scored

)

select
    *,
    row_number() over (order by trending_score desc, plays_last_7d desc, song_id) as trending_rank
from final
