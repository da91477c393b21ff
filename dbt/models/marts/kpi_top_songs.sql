-- The 100 most-played songs (all time), ranked by plays (ties: song_id).
with songs as (

    select * from {{ ref('kpi_song_skip_rates') }}
    where plays > 0

),

ranked as (

    select
        row_number() over (order by plays desc, song_id) as play_rank,
        song_id,
        song_name,
        artist_id,
        artist_name,
        plays,
        skips,
        skip_rate,
        listeners
    from songs

)

select * from ranked
where play_rank <= 100
