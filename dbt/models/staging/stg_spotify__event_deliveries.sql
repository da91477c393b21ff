-- Every delivery of every event, typed and renamed, with the load that brought it, its rank among
-- the deliveries of its event_id (1 = the first, by load order) and its silver rejection reason.
with source as (

    select * from {{ source('bronze', 'spotify_events') }}

),

loads as (

    select * from {{ ref('stg_spotify__loads') }}

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

),

with_loads as (

    select
        renamed.*,
        loads.loaded_at
    from renamed
    left join loads on renamed.batch_id = loads.batch_id

),

ranked as (

    -- Kafka is at-least-once upstream: the first delivery (by load, then Kafka position) wins.
    select
        *,
        row_number() over (
            partition by event_id
            order by loaded_at, kafka_topic, kafka_partition, kafka_offset
        ) as delivery_number
    from with_loads

),

validated as (

    select
        *,
        {{ event_rejection_reason() }} as rejection_reason
    from ranked

)

select * from validated
