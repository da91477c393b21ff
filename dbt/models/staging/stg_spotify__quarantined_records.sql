-- Records the drain quarantined (they broke the event contract), one row per Kafka record.
with source as (

    select * from {{ source_or_empty('bronze', 'spotify_events_quarantine', {
        'kafka_topic': 'varchar', 'kafka_partition': 'integer', 'kafka_offset': 'bigint',
        'kafka_ts': 'timestamp', 'reason': 'varchar', 'detail': 'varchar', 'payload': 'varchar',
        'payload_base64': 'varchar', 'source_file': 'varchar'}) }}

),

renamed as (

    select
        kafka_topic,
        cast(kafka_partition as integer) as kafka_partition,
        cast(kafka_offset as bigint) as kafka_offset,
        cast(kafka_ts as timestamp) as kafka_at,
        reason,
        detail,
        payload,
        payload_base64,
        source_file,
        {{ file_stem('source_file') }} as batch_id
    from source

)

select * from renamed
