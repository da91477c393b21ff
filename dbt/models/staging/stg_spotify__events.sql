with source as (

    select * from {{ source('bronze', 'spotify_events') }}

),

renamed as (

    select
        event_id,
        event_type,
        event_ts as event_at,
        cast(event_ts as date) as event_date,
        user_id,
        session_id,
        song_id,
        song_name,
        artist_id,
        artist_name,
        album as album_name,
        genre,
        release_date,
        duration_ms,
        position_ms,
        device_type,
        country as country_code,
        city,
        timezone,
        subscription,
        playlist_id,
        kafka_partition,
        kafka_offset,
        source_file
    from source

),

deduplicated as (

    -- Kafka delivers at least once: keep the first delivery of each event.
    select *
    from renamed
    qualify row_number() over (partition by event_id order by kafka_partition, kafka_offset) = 1

)

select * from deduplicated
