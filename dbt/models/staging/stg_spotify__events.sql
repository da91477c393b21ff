-- Silver listening events: one row per event_id (its first delivery), valid by every silver rule.
with deliveries as (

    select * from {{ ref('int_event_deliveries__ranked_validated') }}

),

deduplicated as (

    select * from deliveries
    where delivery_number = 1

),

validated as (

    select * from deduplicated
    where rejection_reason is null

)

select
    event_id,
    event_type,
    event_at,
    event_date,
    user_id,
    session_id,
    song_id,
    song_name,
    artist_id,
    artist_name,
    album_name,
    genre,
    release_date,
    duration_ms,
    position_ms,
    device_type,
    country_code,
    city,
    timezone,
    subscription,
    playlist_id,
    schema_version,
    extra_fields,
    kafka_topic,
    kafka_partition,
    kafka_offset,
    source_file,
    batch_id,
    loaded_at
from validated
