-- Every delivery of every event: one row per bronze row, typed and renamed.
with source as (

    select * from {{ source('bronze', 'spotify_events') }}

),

renamed as (

    select
        -- ids
        event_id,
        session_id,
        user_id,
        song_id,
        artist_id,
        playlist_id,

        -- what happened
        event_type,
        cast(event_ts as timestamp) as event_at,  -- UTC wall clock
        cast(event_ts as date) as event_date,
        cast(duration_ms as bigint) as duration_ms,
        cast(position_ms as bigint) as position_ms,

        -- song
        song_name,
        artist_name,
        album as album_name,
        genre,
        cast(release_date as date) as release_date,

        -- listener
        device_type,
        upper(country) as country_code,
        city,
        timezone,
        subscription,

        -- lineage
        cast(schema_version as integer) as schema_version,
        extra_fields,
        kafka_topic,
        cast(kafka_partition as integer) as kafka_partition,
        cast(kafka_offset as bigint) as kafka_offset,
        source_file,
        {{ file_stem('source_file') }} as batch_id

    from source

)

select * from renamed
