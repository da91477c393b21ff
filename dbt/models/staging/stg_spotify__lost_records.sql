-- Kafka records that retention deleted before a drain read them (skipped with allow_data_loss,
-- recorded in the drain's Delta commit), one row per lake version and partition.
with source as (

    select * from {{ source_or_empty('bronze', '_lost_records', {
        'table_name': 'varchar', 'lake_version': 'bigint', 'kafka_partition': 'integer',
        'from_offset': 'bigint', 'to_offset': 'bigint', 'records': 'bigint', 'loaded_at': 'timestamp'}) }}

),

renamed as (

    select
        cast(lake_version as bigint) as lake_version,
        cast(kafka_partition as integer) as kafka_partition,
        cast(from_offset as bigint) as from_offset,
        cast(to_offset as bigint) as to_offset,
        cast(records as bigint) as lost_records,
        cast(loaded_at as timestamp) as loaded_at
    from source

)

select * from renamed
